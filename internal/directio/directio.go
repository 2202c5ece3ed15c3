// Package directio creates files written around the page cache (O_DIRECT)
// where the operating system and file system allow it.
//
// A restore writes a GiB at a time that nobody reads back soon. Through the
// page cache that costs a kernel copy of every byte into memory the kernel
// must first find (on the benchmark machine, up to three times the disk's
// own writing time when it had to find fresh memory), and it leaves dirty
// pages that a database writer's fsync may have to wait for. Writing around
// the cache costs neither; the caller still fsyncs for durability (the
// disk's own cache and the file's metadata).
//
// Direct writes need their buffer, offset and length aligned to Align. What
// is not aligned (a short tail) must go through the page cache, for example
// through a second descriptor opened without O_DIRECT.
package directio

import (
	"os"
	"unsafe"
)

// Align is the alignment of buffers, offsets and lengths that direct
// writes need: the usual file system block size, a multiple of every
// disk's logical block size.
const Align = 4096

// Create creates path, which must not exist, with permission perm, for
// writing, directly where the file system allows it; direct reports which.
func Create(path string, perm os.FileMode) (f *os.File, direct bool, err error) {
	return create(path, perm)
}

// OpenWriter opens path, which exists, for writing, directly where the
// file system allows it; direct reports which. A caller that created the
// file some other way (os.CreateTemp) writes what is aligned through it
// and the rest through its own descriptor.
func OpenWriter(path string) (f *os.File, direct bool, err error) {
	return openWriter(path)
}

// Refused reports whether err is a direct write's refusal (of its
// alignment, or of direct writing at all) after which the same bytes can
// still be written through the page cache.
func Refused(err error) bool { return refused(err) }

// Aligned reports whether b can be written directly: its address and
// length are multiples of Align.
func Aligned(b []byte) bool {
	return len(b) > 0 && len(b)%Align == 0 && uintptr(unsafe.Pointer(&b[0]))%Align == 0
}

// Buffer returns a buffer of n bytes and capacity c (c >= n) whose address
// is a multiple of Align.
func Buffer(n, c int) []byte {
	b := make([]byte, c+Align)
	skip := (Align - int(uintptr(unsafe.Pointer(&b[0]))%Align)) % Align
	return b[skip : skip+n : skip+c]
}
