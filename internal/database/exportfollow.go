package database

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/directio"
)

// preparation is an export being written. It is the io.Writer the .dump is
// written through: it hands what is written to the downloads that follow
// it straight from memory, and writes it to the cache's file around the
// page cache where it can, in the background.
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

	file   *os.File // being written through the page cache: the tail, and the fsync
	direct *os.File // the same file written around the page cache; nil where it cannot be
	queue  chan *prepChunk
	wg     sync.WaitGroup
	closed bool // queue is closed and the writers have ended

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
	onDisk  int64
	landed  map[int64]int64 // offset -> length of writes done past onDisk
	diskErr error           // the first failed write to the file
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
// dry. What comes while both are busy is written through the page cache.
var prepWriters = 2

// newPreparation starts writing the export that will be name in cache
// into f, a new empty file.
func newPreparation(f *os.File, cache *exportCache, name string) *preparation {
	p := &preparation{cache: cache, name: name, file: f, path: f.Name(), ended: make(chan struct{}),
		recent: map[int64]*prepChunk{}, landed: map[int64]int64{}, readers: map[*followReader]struct{}{},
		queue: make(chan *prepChunk, prepWriters)}
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

// Write hands b over to the downloads and the file, prepWriteSize at a
// time. It fails once a write to the file has failed.
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
			if err := p.flush(); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// flush hands what Write holds back to the downloads, wakes them, and
// queues it for the file. A chunk is never changed once handed over: the
// downloads write it out as it is.
func (p *preparation) flush() error {
	if len(p.pending) == 0 {
		return p.failed()
	}
	p.mu.Lock()
	c := &prepChunk{b: p.pending, off: p.written, refs: 2} // recent's and the queue's
	p.pending = nil
	p.recent[c.off/prepWriteSize] = c
	if old := c.off/prepWriteSize - followWindow; old >= 0 {
		p.waitReaders((old + 1) * prepWriteSize)
		p.unref(p.recent[old])
		delete(p.recent, old)
	}
	p.written += int64(len(c.b))
	err := p.diskErr
	p.mu.Unlock()
	p.grew.Broadcast()
	if err != nil {
		return err
	}
	select {
	case p.queue <- c:
	default:
		// Both writers wait on the disk: this chunk goes through the page
		// cache instead, a copy rather than a wait. The downloads never
		// wait for the cached copy, so neither should what they read:
		// on the benchmark machine, with the disk shared, the writes
		// around the page cache ran at 230-460 MB/s, and the preparation
		// of 256 MiB waited 0.36-1.0 s of its 1.2-2.0 s for them.
		p.land(c, p.writeBuffered(c.b, c.off))
	}
	return nil
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

// failed returns the first failed write to the file.
func (p *preparation) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.diskErr
}

// writeOut is one of the writers of the file.
func (p *preparation) writeOut() {
	defer p.wg.Done()
	for c := range p.queue {
		err := p.failed()
		if err == nil {
			err = p.writeAt(c.b, c.off)
		}
		p.land(c, err)
	}
}

// land records that the write of c to the file has ended, with err.
func (p *preparation) land(c *prepChunk, err error) {
	p.mu.Lock()
	if err != nil && p.diskErr == nil {
		p.diskErr = err
	}
	p.landed[c.off] = int64(len(c.b))
	p.unref(c)
	for n, ok := p.landed[p.onDisk]; ok; n, ok = p.landed[p.onDisk] {
		delete(p.landed, p.onDisk)
		p.onDisk += n
	}
	p.mu.Unlock()
	p.grew.Broadcast()
}

// writeBuffered writes b at off through the page cache, unless a write
// has failed already.
func (p *preparation) writeBuffered(b []byte, off int64) error {
	if err := p.failed(); err != nil {
		return err
	}
	_, err := p.file.WriteAt(b, off)
	return err
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
// torn file after a crash. The downloads do not wait for the file.
func (p *preparation) complete() error {
	if err := p.flush(); err != nil {
		return err
	}
	p.finish(nil)
	if err := p.stop(); err != nil {
		return err
	}
	if err := p.file.Sync(); err != nil {
		return err
	}
	return p.file.Close()
}

// stop waits for the writes in flight and returns the first that failed.
func (p *preparation) stop() error {
	if !p.closed {
		p.closed = true
		close(p.queue)
		p.wg.Wait()
		if p.direct != nil {
			p.direct.Close()
		}
	}
	return p.failed()
}

// close ends the writing of the file without making it durable, after a
// failure, when the job removes it.
func (p *preparation) close() {
	p.stop()
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
		p.path = p.cache.path(p.name)
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

// follow opens the file for one download that reads it as it is written.
// The download holds the cache's lease on the file's final name from the
// start, so the cache never removes the file under it once installed.
func (p *preparation) follow(download string) (*Export, error) {
	release := p.cache.hold(p.name)
	p.mu.Lock()
	f, err := os.Open(p.path)
	p.mu.Unlock()
	if err != nil {
		release()
		return nil, err
	}
	return &Export{File: f, Name: download, JobID: p.jobID, following: p, reader: &followReader{}, release: release}, nil
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
			if p.diskErr != nil {
				err := p.diskErr
				p.mu.Unlock()
				return nil, errors.Join(errPreparationFailed, err)
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
	if p.err == io.EOF {
		return nil
	}
	return errors.Join(errPreparationFailed, p.err)
}
