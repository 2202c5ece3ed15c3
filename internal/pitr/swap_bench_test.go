package pitr_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/cputime"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// BenchmarkSwapToRestorable measures what a swap (a restore, overwrite,
// load or restore to a time) costs the replication: each iteration swaps
// a new file of SNAPDECK_BENCH_SIZE (default 256MiB) in as Host.Replace
// does (replication stopped, pools closed, WAL drained, rename), starts
// the replication again, commits one row at once and times until that
// commit is restorable (Replicators.Sync: its file and every one before
// it, the base of the new file included, stored), with the CPU the
// process used meanwhile; then checks a restore to that moment holds it.
// Files go under SNAPDECK_BENCH_DIR.
//
//	SNAPDECK_BENCH_SIZE=256MiB SNAPDECK_BENCH_DIR=/var/tmp/x go test ./internal/pitr \
//	  -run '^$' -bench SwapToRestorable -benchtime 3x
func BenchmarkSwapToRestorable(b *testing.B) {
	ctx := context.Background()
	size := int64(256 << 20)
	if s := os.Getenv("SNAPDECK_BENCH_SIZE"); s != "" {
		n, err := bytesize.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	dir, err := os.MkdirTemp(os.Getenv("SNAPDECK_BENCH_DIR"), "pitr-swap-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "db.sqlite")
	w := openWriter(b, path)
	fill(b, w, size)
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		b.Fatal(err)
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: noCheckpointer{}, Interval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer reps.Close(ctx)
	const id = "bench"
	if err := reps.Start(ctx, id, path, time.Hour); err != nil {
		b.Fatal(err)
	}
	var rows int
	if err := w.QueryRow(`SELECT count(*) FROM orders`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	var took, cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		next := filepath.Join(dir, "next.sqlite")
		os.Remove(next)
		if _, err := w.Exec(`VACUUM INTO '` + next + `'`); err != nil {
			b.Fatal(err)
		}
		if err := reps.Sync(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := reps.Stop(ctx, id); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		drain, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := drain.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		drain.Close()
		if err := os.Rename(next, path); err != nil {
			b.Fatal(err)
		}
		os.Remove(path + "-shm")
		settle(b)
		b.StartTimer()

		start, cpu0 := time.Now(), cputime.Process()
		if err := reps.Start(ctx, id, path, time.Hour); err != nil {
			b.Fatal(err)
		}
		w = openWriter(b, path)
		if _, err := w.Exec(`INSERT INTO orders(customer) VALUES ('after the swap')`); err != nil {
			b.Fatal(err)
		}
		if err := reps.Sync(ctx, id); err != nil {
			b.Fatal(err)
		}
		at := time.Now()
		took += at.Sub(start)
		cpu += cputime.Process() - cpu0
		b.StopTimer()
		rows++
		out := filepath.Join(dir, fmt.Sprintf("restored-%d.sqlite", i))
		if err := reps.RestoreTo(ctx, id, at, out); err != nil {
			b.Fatal(err)
		}
		r, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		var n int
		err = r.QueryRow(`SELECT count(*) FROM orders`).Scan(&n)
		r.Close()
		os.Remove(out)
		if err != nil || n != rows {
			b.Fatalf("swap %d: a restore to the commit after it has %d rows (%v), want %d", i, n, err, rows)
		}
		b.StartTimer()
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "swap-to-restorable-s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s")
	b.ReportMetric(0, "ns/op")
}
