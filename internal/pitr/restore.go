package pitr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	"golang.org/x/sync/errgroup"

	"github.com/snapdeck/snapdeck/internal/durable"
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
// writes every page of the result once, from the last file of the plan
// that holds it (owners): the later files' page indexes say which before
// any page is decoded, so the snapshot and the later files are decoded at
// the same time, each streamed in pieces of writePiece and writing only
// its own pages, and the file is cut to the last file's size. Applying
// the later files over the snapshot in order, as before, wrote a database
// filled after its creation twice (its pages are in the compacted later
// files, and the snapshot may already hold them) and held each later file
// whole in memory. What proves the result whole is checked as it is
// written, in place of quick_check (checkPlan; each file's checksums and
// page numbers against its index; every page written once): see
// RestoreTo.
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
	start := time.Now()
	own, err := planOwners(ctx, c, plan)
	if err != nil {
		return err
	}
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
	// Its blocks are reserved before the first write: a disk without the
	// room fails the restore now, and the writes allocate nothing.
	if err := durable.Preallocate(f, int64(own.commit)*int64(own.pageSize)); err != nil {
		return err
	}
	planned := time.Now()
	if err := own.apply(ctx, c, f); err != nil {
		return err
	}
	if err := f.Truncate(int64(own.commit) * int64(own.pageSize)); err != nil {
		return err
	}
	applied := time.Now()
	if err := f.Sync(); err != nil {
		return err
	}
	logger.Debug("restored to a time", "files", len(plan), "pages", own.commit, "indexes", planned.Sub(start),
		"files_applied", applied.Sub(planned), "fsync", time.Since(applied))
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

// newPageWriter makes a writer of at most pages pages of pageSize bytes
// to f: its pieces are no larger than those pages, and a writer of one
// piece's worth or less has no second piece (a restore plan may hold
// hundreds of level-0 files of a page or two).
func newPageWriter(f *os.File, pageSize uint32, pages int) *pageWriter {
	size := int(min(int64(writePiece), int64(max(pages, 1))*int64(pageSize)))
	size = max(size-size%int(pageSize), int(pageSize))
	inFlight := piecesInFlight
	if size < writePiece {
		inFlight = 1
	}
	w := &pageWriter{f: f, pageSize: int(pageSize), buf: make([]byte, 0, size),
		free: make(chan []byte, inFlight), work: make(chan piece, inFlight), done: make(chan struct{})}
	for range inFlight - 1 {
		w.free <- make([]byte, 0, size)
	}
	go func() {
		defer close(w.done)
		var err error
		for p := range w.work {
			if err == nil {
				if _, err = w.f.WriteAt(p.buf, p.off); err == nil {
					// The disk starts on it now, beside the decode, and the
					// fsync at the end has little left to write.
					durable.StartWriteback(w.f, p.off, int64(len(p.buf)))
				}
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

// owners is how a plan is applied: every page of the restored database
// comes from the last file of the plan that holds it, and is written once.
// The later files' page indexes (read from their ends, a few KiB each)
// tell which file that is before any page is decoded, so that all the
// files can be decoded at once, each writing its own pages: the snapshot
// the pages no later file holds, each later file the pages no file after
// it holds.
type owners struct {
	plan     []*ltx.FileInfo
	pageSize uint32
	// commit is the database's size in pages after the last file.
	commit uint32
	// owner is, by page number up to commit, the index in plan of the
	// file whose copy of the page is written; 0 is the snapshot.
	owner []int32
	// pages is, by index in plan, the page numbers of each later file
	// as its page index gives them, in order.
	pages [][]uint32
	// written counts the pages written, which must come to every page
	// up to commit (the lock page excepted).
	written atomic.Int64
}

// planOwners reads the headers of the plan's first and last files and the
// page indexes of its later files, and assigns each page its file.
func planOwners(ctx context.Context, c *Client, plan []*ltx.FileInfo) (*owners, error) {
	first, err := litestream.FetchLTXHeader(ctx, c, plan[0])
	if err != nil {
		return nil, err
	}
	last := first
	if len(plan) > 1 {
		if last, err = litestream.FetchLTXHeader(ctx, c, plan[len(plan)-1]); err != nil {
			return nil, err
		}
	}
	if last.PageSize != first.PageSize || first.PageSize == 0 {
		return nil, fmt.Errorf("restore plan: pages of %d bytes after a snapshot of %d-byte pages", last.PageSize, first.PageSize)
	}
	o := &owners{plan: plan, pageSize: first.PageSize, commit: last.Commit,
		owner: make([]int32, last.Commit+1), pages: make([][]uint32, len(plan))}
	// The indexes are small reads; against object storage each is a
	// round trip, so a few go at once.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := 1; i < len(plan); i++ {
		g.Go(func() error {
			idx, err := litestream.FetchPageIndex(gctx, c, plan[i])
			if err != nil {
				return fmt.Errorf("ltx file %s-%s of level %d: page index: %w", plan[i].MinTXID, plan[i].MaxTXID, plan[i].Level, err)
			}
			pgnos := make([]uint32, 0, len(idx))
			for pgno := range idx {
				pgnos = append(pgnos, pgno)
			}
			slices.Sort(pgnos)
			o.pages[i] = pgnos
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := 1; i < len(plan); i++ {
		for _, pgno := range o.pages[i] {
			if pgno <= o.commit {
				o.owner[pgno] = int32(i)
			}
		}
	}
	return o, nil
}

// decodeWorkers is how many files are decoded at once: the machine's two
// cores (lz4 and CRC-64 are CPU; the writes go on beside them).
const decodeWorkers = 2

// apply decodes every file of the plan into f, each writing the pages it
// owns, and checks that every page of the database was written once.
func (o *owners) apply(ctx context.Context, c *Client, f *os.File) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(decodeWorkers)
	// The snapshot first: it is the largest, and it is what the others
	// run beside.
	for i := range o.plan {
		g.Go(func() error {
			if err := o.applyFile(gctx, c, f, i); err != nil {
				info := o.plan[i]
				return fmt.Errorf("ltx file %s-%s of level %d: %w", info.MinTXID, info.MaxTXID, info.Level, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	want := int64(o.commit)
	if lock := ltx.LockPgno(o.pageSize); lock <= o.commit {
		want--
	}
	if got := o.written.Load(); got != want {
		return fmt.Errorf("restore plan: %d pages written of the database's %d", got, want)
	}
	return nil
}

// applyFile writes the pages file i of the plan owns (applyBlocks).
func (o *owners) applyFile(ctx context.Context, c *Client, f *os.File, i int) error {
	info := o.plan[i]
	rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := o.applyBlocks(ctx, rc, f, i)
	if err != nil {
		return err
	}
	o.written.Add(n)
	return nil
}
