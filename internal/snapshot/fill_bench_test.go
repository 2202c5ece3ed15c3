//go:build linux

package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCaptureAfterFill is the console's capture right after a fill
// (issue 14 point 1) in the engine: the database's first snapshot, of a
// few pages, is the base of a capture of the whole filled file. It reports
// the capture's wall time, the CPU time of the process in it (user and
// system) and its minor page faults, medians of 3, with a fresh store
// each. SNAPDECK_BENCH_SIZE and SNAPDECK_BENCH_DIR as for
// BenchmarkSnapshotEngine.
func BenchmarkCaptureAfterFill(b *testing.B) {
	ctx := context.Background()
	dir, path := benchDB(b)
	var wall, cpu, faults []float64
	for run := range 3 {
		work := filepath.Join(dir, "fill-work")
		os.RemoveAll(work)
		os.MkdirAll(work, 0o755)
		st := openStore(b, filepath.Join(work, "snapshots"))
		db := filepath.Join(work, "db.sqlite")
		small := openDB(b, db)
		if _, err := small.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
			b.Fatal(err)
		}
		small.Close()
		base, err := Capture(ctx, db, st, nil)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(db)
		copyFile(b, path, db)
		settle(b)
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start := time.Now()
		img, err := CaptureWithBase(ctx, db, st, base.Root, nil)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		c := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
		wall, cpu, faults = append(wall, d.Seconds()), append(cpu, c.Seconds()), append(faults, float64(ru1.Minflt-ru0.Minflt))
		b.Logf("run %d: %d pages in %s, %s CPU, %d minor faults", run, img.Pages, d.Round(time.Millisecond), c.Round(time.Millisecond), ru1.Minflt-ru0.Minflt)
		st.Close(ctx)
		os.RemoveAll(work)
	}
	b.ReportMetric(median(wall), "capture-s")
	b.ReportMetric(median(cpu), "cpu-s")
	b.ReportMetric(median(faults), "minor-faults")
}
