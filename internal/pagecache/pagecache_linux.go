package pagecache

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func of(path string) (Stat, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stat{}, err
	}
	defer f.Close()
	var rng struct{ off, len uint64 } // zero length: the whole file
	var cs struct{ cache, dirty, writeback, evicted, recentlyEvicted uint64 }
	_, _, errno := unix.Syscall6(unix.SYS_CACHESTAT, f.Fd(), uintptr(unsafe.Pointer(&rng)), uintptr(unsafe.Pointer(&cs)), 0, 0, 0)
	if errno != 0 {
		if errors.Is(errno, unix.ENOSYS) {
			return Stat{}, ErrUnsupported
		}
		return Stat{}, errno
	}
	return Stat{Cached: cs.cache, Dirty: cs.dirty}, nil
}
