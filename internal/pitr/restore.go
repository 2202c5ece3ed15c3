package pitr

import (
	"bytes"
	"context"
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
func restoreFile(ctx context.Context, c *Client, ts time.Time, out string, logger *slog.Logger) (err error) {
	plan, err := litestream.CalcRestorePlan(ctx, c, 0, ts, logger)
	if err != nil {
		return err
	}
	if err := checkPlan(plan); err != nil {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched := prefetch(ctx, c, plan[1:])
	pageSize, commit, err := applySnapshot(ctx, c, plan[0], f)
	if err != nil {
		return err
	}
	w := newPageWriter(f, pageSize)
	for i, info := range plan[1:] {
		data, err := fetched.take(ctx, i)
		if err != nil {
			return err
		}
		if commit, err = applyFile(data, info, pageSize, w); err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := f.Truncate(int64(commit) * int64(pageSize)); err != nil {
		return err
	}
	return f.Sync()
}

// checkPlan makes sure a plan starts at a snapshot and that its files
// follow each other without a gap or an overlap of transactions, so that
// applying them in order gives exactly the state after the last one.
func checkPlan(plan []*ltx.FileInfo) error {
	if len(plan) == 0 || plan[0].MinTXID != 1 {
		return litestream.ErrNoSnapshots
	}
	for i := 1; i < len(plan); i++ {
		if plan[i].MinTXID != plan[i-1].MaxTXID+1 {
			return fmt.Errorf("restore plan: file %s-%s does not follow %s-%s",
				plan[i].MinTXID, plan[i].MaxTXID, plan[i-1].MinTXID, plan[i-1].MaxTXID)
		}
	}
	return nil
}

// writePiece is how much of the file one write takes: 1 MiB, 256 pages of
// 4 KiB, so that writing a snapshot costs a few hundred system calls.
const writePiece = 1 << 20

// pageWriter gathers pages with consecutive numbers into one write.
type pageWriter struct {
	f        *os.File
	pageSize int
	buf      []byte
	// first is the number of the first page in buf; buf holds
	// len(buf)/pageSize pages from it.
	first uint32
}

func newPageWriter(f *os.File, pageSize uint32) *pageWriter {
	return &pageWriter{f: f, pageSize: int(pageSize), buf: make([]byte, 0, writePiece)}
}

// next returns where page pgno goes: the slot after the pages gathered,
// when pgno follows them and the piece has room, else a fresh piece.
func (w *pageWriter) next(pgno uint32) ([]byte, error) {
	n := uint32(len(w.buf) / w.pageSize)
	if len(w.buf) > 0 && (pgno != w.first+n || len(w.buf)+w.pageSize > cap(w.buf)) {
		if err := w.flush(); err != nil {
			return nil, err
		}
	}
	if len(w.buf) == 0 {
		w.first = pgno
	}
	w.buf = w.buf[:len(w.buf)+w.pageSize]
	return w.buf[len(w.buf)-w.pageSize:], nil
}

// flush writes the pages gathered.
func (w *pageWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.f.WriteAt(w.buf, int64(w.first-1)*int64(w.pageSize))
	w.buf = w.buf[:0]
	return err
}

// applySnapshot writes the snapshot file info into f, page after page in
// large writes, and returns its page size and size in pages. Every page
// from 1 to the size must be there, once, in order (the lock page
// excepted, which SQLite never writes), and the file's checksum must
// match: then f holds exactly the snapshot.
func applySnapshot(ctx context.Context, c *Client, info *ltx.FileInfo, f *os.File) (pageSize, commit uint32, err error) {
	rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	dec := ltx.NewDecoder(rc)
	if err := dec.DecodeHeader(); err != nil {
		return 0, 0, fmt.Errorf("snapshot %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	hdr := dec.Header()
	if !hdr.IsSnapshot() {
		return 0, 0, fmt.Errorf("snapshot %s-%s is not a snapshot", info.MinTXID, info.MaxTXID)
	}
	w := newPageWriter(f, hdr.PageSize)
	page := make([]byte, hdr.PageSize)
	lock := hdr.LockPgno()
	var ph ltx.PageHeader
	want := uint32(1)
	for {
		if want == lock {
			want++
		}
		if err := dec.DecodePage(&ph, page); err == io.EOF {
			break
		} else if err != nil {
			return 0, 0, fmt.Errorf("snapshot %s-%s, page %d: %w", info.MinTXID, info.MaxTXID, want, err)
		}
		if ph.Pgno != want {
			return 0, 0, fmt.Errorf("snapshot %s-%s: page %d where page %d belongs", info.MinTXID, info.MaxTXID, ph.Pgno, want)
		}
		slot, err := w.next(ph.Pgno)
		if err != nil {
			return 0, 0, err
		}
		copy(slot, page)
		want++
	}
	if want <= hdr.Commit {
		return 0, 0, fmt.Errorf("snapshot %s-%s ends at page %d of %d", info.MinTXID, info.MaxTXID, want-1, hdr.Commit)
	}
	if err := dec.Close(); err != nil {
		return 0, 0, fmt.Errorf("snapshot %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	if err := w.flush(); err != nil {
		return 0, 0, err
	}
	if !bytes.HasPrefix(firstPage(f, hdr.PageSize), []byte("SQLite format 3\x00")) {
		return 0, 0, fmt.Errorf("snapshot %s-%s is not a SQLite database", info.MinTXID, info.MaxTXID)
	}
	return hdr.PageSize, hdr.Commit, nil
}

// firstPage reads page 1 of f back; nil if it cannot.
func firstPage(f *os.File, pageSize uint32) []byte {
	b := make([]byte, pageSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil
	}
	return b
}

// applyFile writes the pages of one later file (data, all of it) over the
// database being restored and returns the database's size in pages after
// it. The file's checksum must match before its turn ends.
func applyFile(data []byte, info *ltx.FileInfo, pageSize uint32, w *pageWriter) (commit uint32, err error) {
	dec := ltx.NewDecoder(bytes.NewReader(data))
	if err := dec.DecodeHeader(); err != nil {
		return 0, fmt.Errorf("ltx file %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	hdr := dec.Header()
	if hdr.PageSize != pageSize || hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID {
		return 0, fmt.Errorf("ltx file %s-%s: its header says %s-%s of %d-byte pages", info.MinTXID, info.MaxTXID, hdr.MinTXID, hdr.MaxTXID, hdr.PageSize)
	}
	var ph ltx.PageHeader
	page := make([]byte, pageSize)
	for {
		if err := dec.DecodePage(&ph, page); err == io.EOF {
			break
		} else if err != nil {
			return 0, fmt.Errorf("ltx file %s-%s: %w", info.MinTXID, info.MaxTXID, err)
		}
		slot, err := w.next(ph.Pgno)
		if err != nil {
			return 0, err
		}
		copy(slot, page)
	}
	if err := dec.Close(); err != nil {
		return 0, fmt.Errorf("ltx file %s-%s: %w", info.MinTXID, info.MaxTXID, err)
	}
	return hdr.Commit, nil
}

// fetchResult is one file of a plan, read whole.
type fetchResult struct {
	data []byte
	err  error
}

// fetchAhead is how many files past the one being applied are read
// meanwhile: the snapshot's decode, CPU, hides the reads of the files
// after it, which against object storage are a round trip each.
const fetchAhead = 16

// prefetcher reads the files of a plan, each whole, in the background:
// at most fetchAhead past the one taken, four at a time.
type prefetcher struct {
	files  []chan fetchResult
	tokens chan struct{}
}

// prefetch starts reading the files of plan until ctx ends.
func prefetch(ctx context.Context, c *Client, plan []*ltx.FileInfo) *prefetcher {
	p := &prefetcher{files: make([]chan fetchResult, len(plan)), tokens: make(chan struct{}, fetchAhead)}
	for i := range p.files {
		p.files[i] = make(chan fetchResult, 1)
	}
	var mu sync.Mutex
	next := 0
	worker := func() {
		for {
			select {
			case p.tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			mu.Lock()
			k := next
			next++
			mu.Unlock()
			if k >= len(plan) {
				return
			}
			info := plan[k]
			var res fetchResult
			rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
			if err == nil {
				res.data, err = io.ReadAll(rc)
				rc.Close()
			}
			if err != nil {
				res.err = fmt.Errorf("read ltx file %s-%s of level %d: %w", info.MinTXID, info.MaxTXID, info.Level, err)
			}
			p.files[k] <- res
		}
	}
	for range 4 {
		go worker()
	}
	return p
}

// take waits for the i-th file, taken in order, and frees its slot.
func (p *prefetcher) take(ctx context.Context, i int) ([]byte, error) {
	select {
	case res := <-p.files[i]:
		<-p.tokens
		return res.data, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
