package snapshot

import (
	"fmt"
	"os"
	"sync"

	"github.com/snapdeck/snapdeck/internal/directio"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

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

// directWrites is how many writes around the page cache are in flight at
// once. One at a time, a 1 MiB write waits for the disk to finish the one
// before: on the benchmark machine a restore then spent most of its time
// waiting on its own writes (a block profile showed the readers idle,
// waiting for room); two keep the disk's queue from running dry.
const directWrites = 2

// imageWriter writes a materialised image to a new file. When asked to, and
// where the file system allows it, it writes around the page cache
// (O_DIRECT), straight from the buffers the store read into, directWrites
// writes in flight: a restore then costs no kernel copy into the cache,
// which on the benchmark machine took more CPU than checking every page's
// hash (and up to three times as long as the disk's own writing when the
// cache had to find fresh memory), and it leaves the cache to the
// console's databases rather than filling it with a file nobody reads yet.
// Bytes that cannot go that way (a tail shorter than the alignment, a
// buffer off the alignment, a file system that refuses) go through the
// page cache, with writeback started behind them every writebackBytes so
// that the disk works while later pages are still being read.
type imageWriter struct {
	path string
	f    *os.File // O_DIRECT when jobs is not nil
	done int64    // bytes handed to write so far

	jobs chan directJob // to the direct writers; nil when not direct
	wg   sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	err    error      // the first failed write's
	cached *os.File   // f, or a second descriptor without O_DIRECT
	kicked int64      // end of the last range handed to writeback
}

type directJob struct {
	p   snapstore.Pages
	off int64
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
	if err := durable.Preallocate(f, size); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("reserve %d bytes for %s: %w", size, path, err)
	}
	w := &imageWriter{path: path, f: f}
	if !direct {
		w.cached = f
		return w, nil
	}
	w.jobs = make(chan directJob)
	for range directWrites {
		w.wg.Add(1)
		go w.writeDirect()
	}
	return w, nil
}

// write appends p's pages to the file and releases p once they are
// written, which may be after write returns. Errors of writes in flight
// are reported by a later write or by finish.
func (w *imageWriter) write(p snapstore.Pages) error {
	off := w.done
	w.done += int64(len(p.Data))
	if err := w.failed(); err != nil {
		p.Release()
		return err
	}
	if w.jobs != nil && directio.Aligned(p.Data) {
		w.jobs <- directJob{p: p, off: off}
		return nil
	}
	defer p.Release()
	return w.keep(w.writeCached(p.Data, off))
}

// writeDirect is one of the direct writers.
func (w *imageWriter) writeDirect() {
	defer w.wg.Done()
	for j := range w.jobs {
		if w.failed() == nil {
			n, err := w.f.WriteAt(j.p.Data, j.off)
			if err != nil && directio.Refused(err) {
				// Refused after all: the rest of this run goes through
				// the page cache.
				err = w.writeCached(j.p.Data[n:], j.off+int64(n))
			}
			w.keep(err)
		}
		j.p.Release()
	}
}

// keep records err as the writer's error if it is the first, and returns
// it.
func (w *imageWriter) keep(err error) error {
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	return err
}

func (w *imageWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// writeCached writes b at off through the page cache.
func (w *imageWriter) writeCached(b []byte, off int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
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
		durable.StartWriteback(w.cached, w.kicked, off-w.kicked)
		w.kicked = off
	}
	return nil
}

// finish waits for the writes in flight, fsyncs the file (which covers
// what either descriptor wrote) and closes it.
func (w *imageWriter) finish() error {
	err := w.stop()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.close(); err == nil {
		err = cerr
	}
	return err
}

// stop waits for the writes in flight and returns the first error.
func (w *imageWriter) stop() error {
	if w.jobs != nil {
		close(w.jobs)
		w.wg.Wait()
		w.jobs = nil
	}
	return w.failed()
}

// close closes the file without making it durable, as on error, when the
// caller removes it. It waits for the writes in flight first.
func (w *imageWriter) close() error {
	w.stop()
	var err error
	if w.cached != nil && w.cached != w.f {
		err = w.cached.Close()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
