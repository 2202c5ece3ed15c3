package snapshot

import (
	"fmt"
	"os"

	"github.com/snapdeck/snapdeck/internal/directio"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// readBatch is the size of the batches snapstore.ReadImage hands over, and
// of imageWriter's staging buffer.
const readBatch = 1 << 20

// writebackBytes is how much imageWriter writes through the page cache
// before it asks the kernel to start writing it out, and writeBytes the
// size of those writes: measured on the benchmark machine, restoring 1 GiB
// with 128 KiB writes took about half as long as with 1 MiB writes (dd
// shows the same: 512 KiB and larger writes cost 2-3 times the kernel time
// of 256 KiB and smaller ones).
const (
	writebackBytes = 8 << 20
	writeBytes     = 128 << 10
)

// imageWriter writes a materialised image to a new file. When asked to, and
// where the file system allows it, it writes around the page cache
// (O_DIRECT), straight
// from the batches the store read into: a restore then costs no kernel
// copy into the cache, which on the benchmark machine took more CPU than
// checking every page's hash (and up to three times as long as the disk's
// own writing when the cache had to find fresh memory), and it leaves the
// cache to the console's databases rather than filling it with a file
// nobody reads yet. The writes are synchronous, but the store reads and
// checks the next batches meanwhile. Bytes that cannot go that way (a tail
// shorter than the alignment, a file system that refuses) go through the
// page cache, with writeback started behind them every writebackBytes so
// that the disk works while later pages are still being read.
type imageWriter struct {
	path   string
	f      *os.File // O_DIRECT when direct
	direct bool
	stage  []byte   // aligned, for a batch that is not
	cached *os.File // f, or a second descriptor without O_DIRECT
	kicked int64    // end of the last range handed to writeback
	done   int64    // bytes written so far
}

// createImageFile creates path, which must not exist, for an image of size
// bytes, and reserves the space so that a disk without room fails before
// anything is written. With around, it writes around the page cache where
// the file system allows.
func createImageFile(path string, size int64, around bool) (*imageWriter, error) {
	var f *os.File
	var direct bool
	var err error
	if around {
		f, direct, err = directio.Create(path, snapdeck.FileMode)
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, snapdeck.FileMode)
	}
	if err != nil {
		return nil, err
	}
	if err := preallocate(f, size); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("reserve %d bytes for %s: %w", size, path, err)
	}
	w := &imageWriter{path: path, f: f, direct: direct}
	if !direct {
		w.cached = f
	}
	return w, nil
}

// write appends b to the file.
func (w *imageWriter) write(b []byte) error {
	off := w.done
	if w.direct && len(b)%directio.Align == 0 {
		n, err := w.writeDirect(b, off)
		w.done += int64(n)
		if err == nil || !directio.Refused(err) {
			return err
		}
		w.direct = false // refused once, refused for good
		b, off = b[n:], off+int64(n)
	}
	if err := w.writeCached(b, off); err != nil {
		return err
	}
	w.done += int64(len(b))
	return nil
}

// writeDirect writes b at off around the page cache, through the staging
// buffer if b's address is not aligned, and returns how many bytes of b it
// wrote.
func (w *imageWriter) writeDirect(b []byte, off int64) (int, error) {
	written := 0
	for written < len(b) {
		chunk := b[written:]
		if !directio.Aligned(chunk) {
			if w.stage == nil {
				w.stage = directio.Buffer(readBatch, readBatch)
			}
			chunk = w.stage[:copy(w.stage, chunk)]
		}
		n, err := w.f.WriteAt(chunk, off+int64(written))
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// writeCached writes b at off through the page cache.
func (w *imageWriter) writeCached(b []byte, off int64) error {
	if w.cached == nil {
		f, err := os.OpenFile(w.path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		w.cached = f
		w.kicked = off
	}
	for len(b) > 0 {
		n, err := w.cached.WriteAt(b[:min(len(b), writeBytes)], off)
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	if off-w.kicked >= writebackBytes {
		startWriteback(w.cached, w.kicked, off-w.kicked)
		w.kicked = off
	}
	return nil
}

// finish fsyncs the file, which covers what either descriptor wrote, and
// closes it.
func (w *imageWriter) finish() error {
	err := w.f.Sync()
	if cerr := w.close(); err == nil {
		err = cerr
	}
	return err
}

// close closes the file without making it durable, as on error, when the
// caller removes it.
func (w *imageWriter) close() error {
	var err error
	if w.cached != nil && w.cached != w.f {
		err = w.cached.Close()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
