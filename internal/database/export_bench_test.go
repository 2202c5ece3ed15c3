package database_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/cputime"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// BenchmarkExportPreparation times Snapshots.Export of a 256 MiB snapshot
// of incompressible rows, read as a download reads it, from the call until
// the last byte, and then until its job has ended. Every iteration
// prepares the export afresh: the prepared file of the one before is
// removed from the export cache, untimed.
func BenchmarkExportPreparation(b *testing.B) {
	ctx := context.Background()
	e := envAt(b, b.TempDir())
	d, err := e.create(ctx, "bench", snapdeck.PlanProfessional)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.dbs.Query(ctx, d.ID, "CREATE TABLE t (b BLOB)", false); err != nil {
		b.Fatal(err)
	}
	for range 4 {
		if _, err := e.dbs.Query(ctx, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 16384) INSERT INTO t SELECT randomblob(4000) FROM s", false); err != nil {
			b.Fatal(err)
		}
	}
	snap, err := e.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "bench", "bench")
	if err != nil {
		b.Fatal(err)
	}
	// The snapshot's verification reads the whole image in the
	// background; the export is timed on a quiet console.
	e.waitIdle(b)
	b.SetBytes(snap.SizeBytes)
	b.ResetTimer()
	var cpu time.Duration // of the process, in the timed part
	kept := 0             // exports whose cached copy was installed
	for range b.N {
		b.StopTimer()
		prepared, _ := filepath.Glob(filepath.Join(e.dir, "tmp", "exports", "*.dump"))
		for _, f := range prepared {
			if err := os.Remove(f); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		cpu0 := cputime.Process()
		start := time.Now()
		x, err := e.snapshots.Export(ctx, d.ID, snap.ID, "bench")
		if err != nil {
			b.Fatal(err)
		}
		// Read as a download does, following the preparation.
		n, err := io.Copy(io.Discard, x)
		if err != nil {
			b.Fatal(err)
		}
		read := time.Since(start)
		// A copy that fell too far behind is given up, not kept: Wait
		// then says so, and the export was read whole all the same.
		copied := "into the cache"
		if err := x.Wait(); snapdeck.ErrorCode(err) == snapdeck.Busy {
			copied = "its cached copy given up"
		} else if err != nil {
			b.Fatal(err)
		} else {
			kept++
		}
		x.Close()
		cpu += cputime.Process() - cpu0
		b.Logf("read %d bytes as they were prepared in %s; the job ended (%s) %s later", n, read, copied, time.Since(start)-read)
	}
	// The CPU the export costs, which the machine's other work changes
	// less than the time it takes.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(kept)/float64(b.N), "kept/op")
}
