package pitr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// restoreFile writes the database whose files c keeps, as of the last
// file made strictly before ts, into out, a file it creates (out must not
// exist). It fsyncs out, not its directory; on failure out is removed.
//
// Litestream's own restore (Replica.Restore) merges the plan's files with
// an ltx.Compactor that, for every page, looks at every input (pages ×
// files), lz4-compresses the merged page into a pipe and decodes it again
// on the other side, then runs PRAGMA quick_check: at 256 MiB and ~650
// files that was 9-19× a cp+sync of the file (docs/benchmarks.md). This
// applies the plan as SQLite applies a WAL: the snapshot decoded straight
// into the file in pieces of writePiece, then each later file's pages
// written over it in order, the last write of a page winning, and the
// file cut to the last file's size. What proves the result whole is
// checked as it is written, in place of quick_check (checkPlan, and
// applySnapshot's page count): see RestoreTo.
func restoreFile(ctx context.Context, c *Client, ts time.Time, out string, logger *slog.Logger) error {
	// As Litestream's restore does: a file of the plan removed before it
	// was read (compaction and retention run meanwhile) means a new plan.
	for attempt := 1; ; attempt++ {
		err := restoreOnce(ctx, c, ts, out, logger)
		if err == nil || attempt == 3 || ctx.Err() != nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
		logger.Debug("a file of the restore plan went, planning again", "attempt", attempt, "err", err)
	}
}

// restoreOnce is one attempt of restoreFile.
func restoreOnce(ctx context.Context, c *Client, ts time.Time, out string, logger *slog.Logger) (err error) {
	plan, err := litestream.CalcRestorePlan(ctx, c, 0, ts, logger)
	if err != nil {
		return err
	}
	if err := checkPlan(plan); err != nil {
		return err
	}
	plan = plan[lastSnapshot(plan):]
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	fetched := prefetch(ctx, c, plan[1:])
	w, commit, err := applySnapshot(ctx, c, plan[0], f)
	if err != nil {
		return err
	}
	defer w.close()
	snapshotDone := time.Now()
	for i := range plan[1:] {
		file, err := fetched.take(ctx, i)
		if err != nil {
			return err
		}
		if err := file.apply(w); err != nil {
			return err
		}
		commit = file.commit
	}
	if err := w.close(); err != nil {
		return err
	}
	if err := f.Truncate(int64(commit) * int64(w.pageSize)); err != nil {
		return err
	}
	applied := time.Now()
	if err := f.Sync(); err != nil {
		return err
	}
	logger.Debug("restored to a time", "files", len(plan), "snapshot", snapshotDone.Sub(start),
		"later_files", applied.Sub(snapshotDone), "fsync", time.Since(applied))
	return nil
}

// checkPlan makes sure a plan starts at a snapshot and that each later
// file takes up where the one before ended, without a gap (it may start
// earlier, as a compacted file does: its pages are then those of its last
// transaction touching them, newer than what they overwrite), so that
// applying them in order gives exactly the state after the last one.
func checkPlan(plan []*ltx.FileInfo) error {
	if len(plan) == 0 || plan[0].MinTXID != 1 {
		return litestream.ErrNoSnapshots
	}
	for i := 1; i < len(plan); i++ {
		if !ltx.IsContiguous(plan[i-1].MaxTXID, plan[i].MinTXID, plan[i].MaxTXID) {
			return fmt.Errorf("restore plan: file %s-%s does not follow %s-%s",
				plan[i].MinTXID, plan[i].MaxTXID, plan[i-1].MinTXID, plan[i-1].MaxTXID)
		}
	}
	return nil
}

// lastSnapshot is the index of the plan's last file that starts at the
// first transaction. Such a file holds every page (LTX calls it a
// snapshot, whatever its level): the first compaction of level 1 merges
// the first read of the WAL, the whole database, so a plan often holds
// the snapshot of level 9 and then a level-1 file as large that
// supersedes it, and reading both would double the work.
func lastSnapshot(plan []*ltx.FileInfo) int {
	last := 0
	for i, info := range plan {
		if info.MinTXID == 1 {
			last = i
		}
	}
	return last
}

// writePiece is how much of the file one write takes: 1 MiB, 256 pages of
// 4 KiB, so that writing a snapshot costs a few hundred system calls.
const writePiece = 1 << 20

// piecesInFlight is how many pieces are filled while earlier ones are
// written: the writes (a system call and the kernel's copy of each piece)
// go on in their own goroutine, beside the decode.
const piecesInFlight = 4

// pageWriter gathers pages with consecutive numbers into pieces, and
// writes the pieces in their order from its own goroutine until close.
type pageWriter struct {
	f        *os.File
	pageSize int
	buf      []byte
	// first is the number of the first page in buf; buf holds
	// len(buf)/pageSize pages from it.
	first uint32
	free  chan []byte
	work  chan piece
	done  chan struct{}
	// err is the first write's error, read once done is closed or by
	// the writer itself.
	err    error
	closed bool
}

// piece is pages to write at an offset.
type piece struct {
	buf []byte
	off int64
}

func newPageWriter(f *os.File, pageSize uint32) *pageWriter {
	w := &pageWriter{f: f, pageSize: int(pageSize), buf: make([]byte, 0, writePiece),
		free: make(chan []byte, piecesInFlight), work: make(chan piece, piecesInFlight), done: make(chan struct{})}
	for range piecesInFlight - 1 {
		w.free <- make([]byte, 0, writePiece)
	}
	go func() {
		defer close(w.done)
		var err error
		for p := range w.work {
			if err == nil {
				_, err = w.f.WriteAt(p.buf, p.off)
			}
			w.free <- p.buf[:0]
		}
		w.err = err
	}()
	return w
}

// next returns where page pgno goes: the slot after the pages gathered,
// when pgno follows them and the piece has room, else a fresh piece.
func (w *pageWriter) next(pgno uint32) []byte {
	n := uint32(len(w.buf) / w.pageSize)
	if len(w.buf) > 0 && (pgno != w.first+n || len(w.buf)+w.pageSize > cap(w.buf)) {
		w.flush()
	}
	if len(w.buf) == 0 {
		w.first = pgno
	}
	w.buf = w.buf[:len(w.buf)+w.pageSize]
	return w.buf[len(w.buf)-w.pageSize:]
}

// unreserve gives back the slot next returned last, unused.
func (w *pageWriter) unreserve() {
	w.buf = w.buf[:len(w.buf)-w.pageSize]
}

// flush hands the pages gathered to the writer, and takes a free piece.
func (w *pageWriter) flush() {
	if len(w.buf) == 0 {
		return
	}
	w.work <- piece{w.buf, int64(w.first-1) * int64(w.pageSize)}
	w.buf = <-w.free
}

// close writes what is gathered, waits for every write and returns the
// first error; it may be called again.
func (w *pageWriter) close() error {
	if !w.closed {
		w.closed = true
		w.flush()
		close(w.work)
		<-w.done
	}
	return w.err
}

// applySnapshot writes the snapshot file info into f, page after page in
// large writes, and returns the writer (to write later files with, then
// close) and the snapshot's size in pages. Every page
// from 1 to the size must be there, once, in order (the lock page
// excepted, which SQLite never writes), and the file's checksum must
// match: then f holds exactly the snapshot.
func applySnapshot(ctx context.Context, c *Client, info *ltx.FileInfo, f *os.File) (w *pageWriter, commit uint32, err error) {
	rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		return nil, 0, fmt.Errorf("snapshot %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	hdr := dec.Header()
	if !hdr.IsSnapshot() {
		return nil, 0, fmt.Errorf("snapshot %s-%s is not a snapshot", info.MinTXID, info.MaxTXID)
	}
	pw := newPageWriter(f, hdr.PageSize)
	defer func() {
		if err != nil {
			pw.close()
		}
	}()
	lock := hdr.LockPgno()
	var ph ltx.PageHeader
	want := uint32(1)
	for {
		if want == lock {
			want++
		}
		// Decoded where it is written: the page's number is known
		// before it is read.
		slot := pw.next(want)
		if err := dec.DecodePage(&ph, slot); err == io.EOF {
			pw.unreserve()
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("snapshot %s-%s, page %d: %w", info.MinTXID, info.MaxTXID, want, err)
		}
		if ph.Pgno != want {
			return nil, 0, fmt.Errorf("snapshot %s-%s: page %d where page %d belongs", info.MinTXID, info.MaxTXID, ph.Pgno, want)
		}
		if want == 1 && !bytes.HasPrefix(slot, []byte("SQLite format 3\x00")) {
			return nil, 0, fmt.Errorf("snapshot %s-%s is not a SQLite database", info.MinTXID, info.MaxTXID)
		}
		want++
	}
	if want <= hdr.Commit {
		return nil, 0, fmt.Errorf("snapshot %s-%s ends at page %d of %d", info.MinTXID, info.MaxTXID, want-1, hdr.Commit)
	}
	if err := dec.Close(); err != nil {
		return nil, 0, fmt.Errorf("snapshot %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	return pw, hdr.Commit, nil
}

// decodedFile is one later file of a plan, read and decoded whole: its
// pages in its order, and the database's size after it.
type decodedFile struct {
	pageSize uint32
	pgnos    []uint32
	pages    []byte
	commit   uint32
}

// decodeFile reads and decodes one later file of a plan. Its checksum
// must match, and its header must be the one its key names.
func decodeFile(ctx context.Context, c *Client, info *ltx.FileInfo) (*decodedFile, error) {
	rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	dec := ltx.NewDecoder(bytes.NewReader(data))
	if err := dec.DecodeHeader(); err != nil {
		return nil, err
	}
	hdr := dec.Header()
	if hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
		return nil, fmt.Errorf("its header says %s-%s", hdr.MinTXID, hdr.MaxTXID)
	}
	pageSize := hdr.PageSize
	out := &decodedFile{commit: hdr.Commit, pageSize: pageSize}
	var ph ltx.PageHeader
	for {
		out.pages = append(out.pages, make([]byte, pageSize)...)
		if err := dec.DecodePage(&ph, out.pages[len(out.pages)-int(pageSize):]); err == io.EOF {
			out.pages = out.pages[:len(out.pages)-int(pageSize)]
			break
		} else if err != nil {
			return nil, err
		}
		out.pgnos = append(out.pgnos, ph.Pgno)
	}
	if err := dec.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// apply writes the file's pages over the database being restored.
func (d *decodedFile) apply(w *pageWriter) error {
	if int(d.pageSize) != w.pageSize {
		return fmt.Errorf("ltx file of %d-byte pages after a snapshot of %d-byte pages", d.pageSize, w.pageSize)
	}
	for i, pgno := range d.pgnos {
		copy(w.next(pgno), d.pages[i*w.pageSize:(i+1)*w.pageSize])
	}
	return nil
}

// fetchResult is one later file of a plan, decoded.
type fetchResult struct {
	file *decodedFile
	err  error
}

// fetchBudget is how many bytes of files (as stored, compressed) may be
// read and decoded ahead of the one being applied. The later files are
// decoded while the snapshot is (two cores: the decode is lz4 and CRC-64,
// CPU), and against object storage each read is a round trip; the budget
// bounds the memory this holds (about four times as much, decoded).
const fetchBudget = 64 << 20

// prefetcher reads and decodes the later files of a plan in the
// background, in order, within fetchBudget of the one taken.
type prefetcher struct {
	plan  []*ltx.FileInfo
	files []chan fetchResult

	mu     sync.Mutex
	cond   *sync.Cond
	ahead  int64
	closed bool
}

// prefetch starts reading the files of plan until ctx ends.
func prefetch(ctx context.Context, c *Client, plan []*ltx.FileInfo) *prefetcher {
	p := &prefetcher{plan: plan, files: make([]chan fetchResult, len(plan))}
	p.cond = sync.NewCond(&p.mu)
	for i := range p.files {
		p.files[i] = make(chan fetchResult, 1)
	}
	context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.closed = true
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	next := 0
	worker := func() {
		for {
			p.mu.Lock()
			// The first file past the one taken always goes, whatever
			// its size.
			for !p.closed && next < len(plan) && p.ahead > 0 && p.ahead+plan[next].Size > fetchBudget {
				p.cond.Wait()
			}
			if p.closed || next >= len(plan) {
				p.mu.Unlock()
				return
			}
			k := next
			next++
			p.ahead += plan[k].Size
			p.mu.Unlock()
			info := plan[k]
			file, err := decodeFile(ctx, c, info)
			if err != nil {
				err = fmt.Errorf("ltx file %s-%s of level %d: %w", info.MinTXID, info.MaxTXID, info.Level, err)
			}
			p.files[k] <- fetchResult{file, err}
		}
	}
	// Two: the machine's cores, one of them decoding the snapshot.
	for range 2 {
		go worker()
	}
	return p
}

// take waits for the i-th file, taken in order, and frees its share of
// the budget.
func (p *prefetcher) take(ctx context.Context, i int) (*decodedFile, error) {
	select {
	case res := <-p.files[i]:
		p.mu.Lock()
		p.ahead -= p.plan[i].Size
		p.cond.Broadcast()
		p.mu.Unlock()
		return res.file, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
