package database_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// BenchmarkExportPreparation times Manager.Export of a 256 MiB snapshot
// of incompressible rows, from the call until the .dump is ready, and the
// read of it.
func BenchmarkExportPreparation(b *testing.B) {
	ctx := context.Background()
	e := envAt(b, b.TempDir())
	d, err := e.mgr.Create(ctx, "bench", snapdeck.PlanProfessional)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.mgr.Query(ctx, d.ID, "CREATE TABLE t (b BLOB)", false); err != nil {
		b.Fatal(err)
	}
	for range 4 {
		if _, err := e.mgr.Query(ctx, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 16384) INSERT INTO t SELECT randomblob(4000) FROM s", false); err != nil {
			b.Fatal(err)
		}
	}
	snap, err := e.mgr.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "bench", "bench")
	if err != nil {
		b.Fatal(err)
	}
	// The snapshot's verification reads the whole image in the
	// background; the export is timed on a quiet console.
	e.waitIdle(b)
	b.SetBytes(snap.SizeBytes)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		x, err := e.mgr.Export(ctx, d.ID, snap.ID, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := x.Wait(); err != nil {
			b.Fatal(err)
		}
		prep := time.Since(start)
		n, _ := io.Copy(io.Discard, x)
		x.Close()
		b.Logf("prepared in %s, read %d bytes in %s", prep, n, time.Since(start)-prep)
	}
}
