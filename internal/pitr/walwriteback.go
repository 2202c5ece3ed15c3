package pitr

import (
	"context"
	"os"
	"time"

	"github.com/snapdeck/snapdeck/internal/durable"
)

// DefaultWALWriteback is how often, at most, a replicated database's WAL
// has its new frames sent to disk while commits come (writeBackWAL).
//
// Why: the console's pools commit at synchronous=NORMAL, so no commit
// fsyncs the WAL; the first fsync of it is the one in Litestream's passive
// checkpoint, which runs while Litestream holds its barrier (a write
// transaction on _litestream_lock) and so while every commit waits. That
// fsync then writes every frame since the last checkpoint: under the
// issue-4 writer 4-140 MB, 30-200 ms on the benchmark machine, and the
// checkpoint's fsync of the database after it waits behind the same
// writes. Started every 10 ms, the frames are mostly on disk by then: in
// one pair of traced runs (docs/benchmarks.md, s8-commit) the WAL's fsyncs
// went from p99 105 ms, max 213 ms to p99 36 ms, max 76 ms, and the
// database's from p99 166 ms to 24 ms; a second pair, under more load and
// a compaction, showed no difference, and the worst commits on the shared
// machine could not tell it apart. The cost: one sync_file_range call per
// 10 ms while a database is written, none while it is idle, and no byte
// more written (each frame is written once either way, only sooner).
const DefaultWALWriteback = 10 * time.Millisecond

// writeBackWAL starts the writeback of the WAL's dirty pages after a
// commit (Committed), at most once every interval, until ctx ends. Once
// an interval passes without a commit it writes out what is left and
// waits for it: a frame straddles two pages, so the last page sent may
// have been written to again while it was being written back, which a
// start of writeback passes over.
//
// It changes nothing of what a crash keeps: the writeback makes nothing
// durable and orders nothing (the kernel writes dirty pages back at any
// time on its own); SQLite's fsyncs still decide what is durable, as
// documented in conn.go.
func (cur *replicator) writeBackWAL(ctx context.Context, interval time.Duration) {
	var wal *os.File
	defer func() {
		if wal != nil {
			wal.Close()
		}
	}()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cur.written:
		}
		for busy := true; busy; {
			if wal = openWAL(wal, cur.db.WALPath()); wal != nil {
				durable.StartWriteback(wal, 0, 0)
			}
			pause.Reset(interval)
			select {
			case <-ctx.Done():
				return
			case <-pause.C:
			}
			select {
			case <-cur.written:
			default:
				busy = false
				if wal != nil {
					durable.WriteOut(wal, 0, 0)
				}
			}
		}
	}
}

// openWAL returns f if it is still the file at path, else path opened
// again (nil if there is none): a WAL deleted and made again is another
// file.
func openWAL(f *os.File, path string) *os.File {
	if f != nil {
		a, err1 := f.Stat()
		b, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(a, b) {
			return f
		}
		f.Close()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	return f
}
