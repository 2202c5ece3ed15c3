package database

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snapdeck/snapdeck/internal/directio"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// preparation is an export being written. It is the io.Writer the .dump is
// written through: it hands what is written to the downloads that follow
// it straight from memory, and writes it to the cache's file around the
// page cache where it can, in the background.
//
// The cached copy gives way to the downloads: it is written behind, from
// a bounded queue, by writers of its own, and the export never waits for
// it. When the queue is full (the disk is slower than the export), the
// copy is abandoned: what is queued is dropped, nothing more is written,
// and the file is not installed; the downloads in progress go on from
// memory, and the next download prepares the export again. A download
// that fell behind what the preparation keeps in memory reads what of the
// file was written; past that, it ends with errFellBehind. On the
// benchmark machine (2 cores, a disk taking 0.5-0.6 GB/s of direct
// writes, 1.15 GB/s through the page cache at 0.9 CPU-seconds per GiB),
// the copy's writes through the page cache on the export's own goroutine,
// when both direct writers were busy, took 0.6-1.0 s of a 2.3-3.0 s
// export of 1 GiB: they waited for the direct writes in flight, which
// hold the file's inode lock while they extend it, and took CPU from the
// compression.
//
// The downloads used to follow the file itself. That wrote every byte
// through the page cache and read it back from there: on the benchmark
// machine the writes alone cost 0.4-1.7 CPU-seconds per GiB, depending on
// how hard the kernel had to look for memory, against about 0.12 written
// directly, and the downloads waited on them.
type preparation struct {
	cache *exportCache
	name  string // the file's name in the cache once installed
	jobID string // the job preparing it; set before anyone else can follow

	file    *os.File        // being written through the page cache: the tail, and the fsync
	direct  *os.File        // the same file written around the page cache; nil where it cannot be
	queue   chan *prepChunk // the chunks the writers have yet to write
	wg      sync.WaitGroup
	closed  bool          // queue is closed
	stopped chan struct{} // closed once the writers have ended

	pending []byte // written by Write, not yet handed over; the writer's own

	mu     sync.Mutex
	grew   *sync.Cond
	path   string               // where the file is now: its temporary name, then name in the cache
	recent map[int64]*prepChunk // by offset / prepWriteSize
	free   [][]byte             // buffers of chunks nobody holds, for Write
	// written is how much the downloads may read: handed over by Write.
	written int64
	// onDisk is how much of the file, from its start, is written; a
	// download that fell out of recent reads the file up to there.
	onDisk int64
	landed map[int64]int64 // offset -> length of writes done past onDisk
	// abandoned says the cached copy was given up: it fell more than
	// copyBehind behind the export, or a write to it failed (copyErr).
	abandoned bool
	copyErr   error
	kept      bool // the file is installed in the cache
	// readers are the downloads reading recent; the preparation waits
	// for the one furthest ahead before it drops a chunk.
	readers map[*followReader]struct{}
	done    bool  // the export is written whole, or the writing failed
	err     error // io.EOF when whole
	// ended is closed when the job has ended: the file is installed in
	// the cache, or the preparation failed.
	ended chan struct{}
}

// followReader is where one download that follows the preparation has
// read to.
type followReader struct {
	off     int64
	dropped bool       // it stalled: the preparation no longer waits for it
	holding *prepChunk // what it was handed last, and may still be writing out
}

// prepChunk is a MiB of the export, handed over. Its buffer is used again
// once nobody holds it: not recent, not waiting for the file, not being
// written out by a download. Fresh buffers cost more than the copy into
// them (zeroing, and the kernel finding the memory): 0.6 CPU-seconds per
// GiB on the benchmark machine.
type prepChunk struct {
	b    []byte
	off  int64
	refs int // guarded by the preparation's mu
}

// prepWriteSize is how much the preparation hands over at once: to the
// downloads and to the file. zstd hands over its output a block at a
// time; written to the file as it came, that cost 0.56 CPU-seconds per
// 256 MiB of system time on the benchmark machine.
const prepWriteSize = 1 << 20

// followWindow is how many of the last chunks written the preparation
// keeps in memory for the downloads that follow it (16 MiB). Before it
// drops one, it waits for the download furthest ahead to have read it,
// as long as that one makes progress: without the wait, a download
// that fell behind read the file back from the disk (written around the
// page cache), which cost more than the download itself.
var followWindow int64 = 16

// followStall is how long the preparation waits for the downloads to read
// a MiB before it goes on without them; they then read the file. A client
// that stops reading, or reads a trickle, does not hold up the export.
var followStall = 2 * time.Second

// prepWriters is how many writes to the file are in flight at once. One
// at a time, a direct write waits for the disk to finish the one before
// (see snapshot's directWrites); two keep the disk's queue from running
// dry. Four were no faster on the benchmark machine (s7-export).
var prepWriters = 2

// copyBehind is how many chunks (MiB) the cached copy may fall behind the
// export before it is abandoned: the memory an export may hold for it,
// beyond the followWindow the downloads read. On the benchmark machine
// (direct writes at 0.5-0.6 GB/s), BenchmarkExportPreparation kept the
// copy of 2 of 4 exports of 256 MiB handed over at 170-250 MB/s; an
// export at the pace issue 14 asks for (0.7 GB/s and more) loses that
// lead after 200-300 MiB. A larger export is prepared again by its next
// download rather than make every export's first download wait for the
// disk.
var copyBehind = 64

// newPreparation starts writing the export that will be name in cache
// into f, a new empty file.
func newPreparation(f *os.File, cache *exportCache, name string) *preparation {
	p := &preparation{cache: cache, name: name, file: f, path: f.Name(), ended: make(chan struct{}),
		recent: map[int64]*prepChunk{}, landed: map[int64]int64{}, readers: map[*followReader]struct{}{},
		queue: make(chan *prepChunk, copyBehind)}
	p.grew = sync.NewCond(&p.mu)
	if d, direct, err := directio.OpenWriter(f.Name()); err == nil && direct {
		p.direct = d
	} else if err == nil {
		d.Close()
	}
	for range prepWriters {
		p.wg.Add(1)
		go p.writeOut()
	}
	return p
}

// Write hands b over to the downloads and the cached copy,
// prepWriteSize at a time. It never fails: the copy gives way.
func (p *preparation) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.pending == nil {
			p.pending = p.buffer()
		}
		k := min(len(b), cap(p.pending)-len(p.pending))
		p.pending = append(p.pending, b[:k]...)
		b = b[k:]
		if len(p.pending) == cap(p.pending) {
			p.flush()
		}
	}
	return n, nil
}

// flush hands what Write holds back to the downloads, wakes them, and
// queues it for the file, unless the copy was abandoned. A chunk is never
// changed once handed over: the downloads write it out as it is.
func (p *preparation) flush() {
	if len(p.pending) == 0 {
		return
	}
	p.mu.Lock()
	c := &prepChunk{b: p.pending, off: p.written, refs: 1} // recent's
	p.pending = nil
	p.recent[c.off/prepWriteSize] = c
	if old := c.off/prepWriteSize - followWindow; old >= 0 {
		p.waitReaders((old + 1) * prepWriteSize)
		p.unref(p.recent[old])
		delete(p.recent, old)
	}
	p.written += int64(len(c.b))
	if !p.abandoned {
		c.refs++ // the queue's
		select {
		case p.queue <- c:
		default:
			// The writers are copyBehind behind: the copy gives way.
			c.refs--
			p.abandonLocked(nil)
		}
	}
	p.mu.Unlock()
	p.grew.Broadcast()
}

// abandonLocked gives the cached copy up, because of err or, for nil,
// because it fell too far behind; p.mu is held. The chunks queued are
// dropped by the writers as they come to them.
func (p *preparation) abandonLocked(err error) {
	if !p.abandoned {
		p.abandoned, p.copyErr = true, err
	}
}

// buffer returns an empty buffer for the next chunk.
func (p *preparation) buffer() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b[:0]
	}
	return directio.Buffer(0, prepWriteSize)
}

// unref drops one hold on c, and keeps its buffer for a later chunk when
// it was the last; p.mu is held.
func (p *preparation) unref(c *prepChunk) {
	if c.refs--; c.refs == 0 && cap(c.b) == prepWriteSize {
		p.free = append(p.free, c.b)
		c.b = nil
	}
}

// waitReaders waits until the download furthest ahead has read up to
// end; p.mu is held. The downloads behind it then read the file: a slow
// download does not slow the others down to its pace. The wait lasts at
// most followStall in all, however the download furthest ahead trickles
// along: a download that cannot read the MiB it is handed in that time is
// no longer waited for, and neither is any behind it.
func (p *preparation) waitReaders(end int64) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	deadline := time.Now().Add(followStall)
	for {
		var lead *followReader
		for r := range p.readers {
			if !r.dropped && (lead == nil || r.off > lead.off) {
				lead = r
			}
		}
		if lead == nil || lead.off >= end {
			return
		}
		now := time.Now()
		if !now.Before(deadline) {
			for r := range p.readers {
				r.dropped = true
			}
			return
		}
		if timer == nil {
			timer = time.AfterFunc(deadline.Sub(now), p.grew.Broadcast)
		}
		p.grew.Wait()
	}
}

// read records that r has read up to off, and so is done with what it
// was handed before; p.mu is held.
func (p *preparation) read(r *followReader, off int64) {
	if r.holding != nil {
		p.unref(r.holding)
		r.holding = nil
	}
	if _, ok := p.readers[r]; !ok && !r.dropped {
		p.readers[r] = struct{}{}
	}
	if r.off != off {
		r.off = off
		p.grew.Broadcast()
	}
}

// leave says r reads no more as the preparation hands over.
func (p *preparation) leave(r *followReader) {
	p.mu.Lock()
	delete(p.readers, r)
	r.dropped = true
	if r.holding != nil {
		p.unref(r.holding)
		r.holding = nil
	}
	p.mu.Unlock()
	p.grew.Broadcast()
}

// isAbandoned reports whether the cached copy was given up.
func (p *preparation) isAbandoned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.abandoned
}

// writeOut is one of the writers of the file. Once the copy is abandoned
// it drops what it takes from the queue.
func (p *preparation) writeOut() {
	defer p.wg.Done()
	for c := range p.queue {
		if hook := copyWriteHook.Load(); hook != nil {
			(*hook)()
		}
		if p.isAbandoned() {
			p.land(c, false, nil)
			continue
		}
		p.land(c, true, p.writeAt(c.b, c.off))
	}
}

// copyWriteHook, when set, is called by the writers before each chunk:
// the tests hold them with it, as a disk slower than the export would.
var copyWriteHook atomic.Pointer[func()]

// land records that the writers are done with c: written to the file, or
// failed with err, or dropped.
func (p *preparation) land(c *prepChunk, written bool, err error) {
	p.mu.Lock()
	if err != nil {
		p.abandonLocked(err)
	} else if written {
		p.landed[c.off] = int64(len(c.b))
		for n, ok := p.landed[p.onDisk]; ok; n, ok = p.landed[p.onDisk] {
			delete(p.landed, p.onDisk)
			p.onDisk += n
		}
	}
	p.unref(c)
	p.mu.Unlock()
	p.grew.Broadcast()
}

// writeAt writes b at off: what is aligned around the page cache where it
// can, the rest (the export's last bytes) through it.
func (p *preparation) writeAt(b []byte, off int64) error {
	if k := len(b) &^ (directio.Align - 1); p.direct != nil && k > 0 && directio.Aligned(b[:k]) {
		n, err := p.direct.WriteAt(b[:k], off)
		if err != nil && !directio.Refused(err) {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	if len(b) == 0 {
		return nil
	}
	_, err := p.file.WriteAt(b, off)
	return err
}

// complete hands over what Write holds back, tells the downloads the
// export is whole, and then waits for the file's writes and makes the
// file durable: a prepared export is served for a day, and must not be a
// torn file after a crash. The downloads do not wait for the file. It
// returns errCopyAbandoned, with the write that failed if one did, when
// the cached copy was given up: the file is then not to be installed.
func (p *preparation) complete() error {
	p.flush()
	p.finish(nil)
	// A copy given up is not waited for: its writers drop what is queued,
	// and the job ends without waiting for the writes in flight.
	p.stop(!p.isAbandoned())
	p.mu.Lock()
	abandoned, cause := p.abandoned, p.copyErr
	if !abandoned && p.onDisk != p.written {
		// Never installed short: the writers ended before their queue.
		abandoned, cause = true, fmt.Errorf("the cached copy holds %d of %d bytes", p.onDisk, p.written)
	}
	p.mu.Unlock()
	if abandoned {
		p.file.Close()
		return errors.Join(errCopyAbandoned, cause)
	}
	if err := p.file.Sync(); err != nil {
		p.file.Close()
		return errors.Join(errCopyAbandoned, err)
	}
	if err := p.file.Close(); err != nil {
		return errors.Join(errCopyAbandoned, err)
	}
	return nil
}

// errCopyAbandoned says a preparation's cached copy was given up: the
// export was handed over whole, but is not kept.
var errCopyAbandoned = errors.New("the prepared export was not kept")

// stop closes the writers' queue, and when wait is set waits for them to
// end; the last to end closes the file's direct handle.
func (p *preparation) stop(wait bool) {
	if !p.closed {
		p.closed = true
		close(p.queue)
		p.stopped = make(chan struct{})
		go func() {
			p.wg.Wait()
			if p.direct != nil {
				p.direct.Close()
			}
			close(p.stopped)
		}()
	}
	if wait {
		<-p.stopped
	}
}

// close ends the writing of the file without making it durable, after a
// failure (the job removes the file) or once complete: what is left in
// the queue is dropped.
func (p *preparation) close() {
	p.mu.Lock()
	if !p.kept {
		p.abandonLocked(errors.New("the export ended"))
	}
	p.mu.Unlock()
	p.stop(false)
	p.file.Close()
}

// finish records how the writing ended: nil once the export is handed
// over whole. Only the first call counts: once it is whole, what happens
// to the cached copy after (its writes, its fsync, its rename) does not
// change what the downloads read.
func (p *preparation) finish(err error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done, p.err = true, err
	if err == nil {
		p.err = io.EOF
	}
	p.mu.Unlock()
	p.grew.Broadcast()
}

// install moves the written file into the cache, where follow then finds
// it, and returns it under a lease.
func (p *preparation) install(download string) (*Export, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.cache.install(p.path, p.name, download)
	if err == nil {
		p.path, p.kept = p.cache.path(p.name), true
	}
	return e, err
}

// end says the job is over; err is its outcome.
func (p *preparation) end(err error) {
	p.finish(err)
	close(p.ended)
}

// errPreparationFailed ends a download whose export failed part way.
var errPreparationFailed = errors.New("the export failed while it was being downloaded")

// errFellBehind ends a download that fell behind what its preparation
// keeps in memory, of an export whose cached copy was given up: what it
// has yet to read is neither in memory nor on disk.
var errFellBehind = snapdeck.Errorf(snapdeck.Busy, "This download fell too far behind its export, which could not be kept prepared: download it again.")

// errNotKept answers a download that waited for its export to be whole
// (for its size, or a part of it) when the export was not kept.
var errNotKept = snapdeck.Errorf(snapdeck.Busy, "This export could not be kept prepared: download it whole, from its start.")

// joinable reports whether a new download may follow p: not once its
// cached copy was given up, when the start of the export may be neither
// in memory nor on disk. The download then prepares the export anew.
func (p *preparation) joinable() bool { return !p.isAbandoned() }

// follow opens the file for one download that reads it as it is written.
// The download holds the cache's lease on the file's final name from the
// start, so the cache never removes the file under it once installed.
func (p *preparation) follow(download string) (*Export, error) {
	release := p.cache.hold(p.name)
	p.mu.Lock()
	f, err := os.Open(p.path)
	// Counted from now, not from its first read: the preparation keeps
	// what it hands over for the download until it has read it (or
	// stalls), so the download's start is not dropped before the
	// handler first reads.
	r := &followReader{}
	if err == nil {
		p.readers[r] = struct{}{}
	}
	p.mu.Unlock()
	if err != nil {
		release()
		return nil, err
	}
	return &Export{File: f, Name: download, JobID: p.jobID, following: p, reader: r, release: release}, nil
}

// next returns the export's bytes at off for the download r, waiting for
// them to be written: straight from the preparation's memory, or else
// read from the file at f into buf. It returns io.EOF once the export is
// whole and everything is read.
func (p *preparation) next(r *followReader, f *os.File, buf []byte, off int64) ([]byte, error) {
	p.mu.Lock()
	p.read(r, off)
	for {
		if off < p.written {
			if c, ok := p.recent[off/prepWriteSize]; ok {
				c.refs++
				r.holding = c
				p.mu.Unlock()
				return c.b[off-c.off:], nil
			}
			if off < p.onDisk {
				onDisk := p.onDisk
				p.mu.Unlock()
				n, err := f.ReadAt(buf[:min(int64(len(buf)), onDisk-off)], off)
				return buf[:n], err
			}
			if p.abandoned {
				p.mu.Unlock()
				return nil, errFellBehind
			}
		} else if p.done {
			end := p.err
			p.mu.Unlock()
			if end == io.EOF {
				return nil, io.EOF
			}
			return nil, errors.Join(errPreparationFailed, end)
		}
		p.grew.Wait()
	}
}

// wait waits until the job has ended and returns its error; nil when the
// export is whole and in the cache.
func (p *preparation) wait() error {
	<-p.ended
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == io.EOF && !p.kept {
		return errNotKept
	}
	if p.err == io.EOF {
		return nil
	}
	return errors.Join(errPreparationFailed, p.err)
}
