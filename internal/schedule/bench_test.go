package schedule

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// BenchmarkScheduler10kHourly schedules 10,000 databases on an hourly
// cadence and runs one simulated hour on the fake clock, minute by minute.
// Snapshots are not taken (the injected Take records the time it was
// called), so what is measured is the scheduler itself: gocron's timers,
// the per-run database lookup in the store, the worker semaphore, and the
// retention/reconcile job each minute. It reports the heap and goroutines
// the schedule holds, the CPU time of the hour, and the spread of start
// times over the hour.
//
//	go test ./internal/schedule/ -run '^$' -bench Scheduler10k -benchtime 1x -v
func BenchmarkScheduler10kHourly(b *testing.B) {
	const n = 10000
	for range b.N {
		benchHour(b, n)
	}
}

func benchHour(b *testing.B, n int) {
	e := mustEnv(b, hourly())
	ctx := context.Background()
	// Every database last snapshotted 40 minutes before the hour starts:
	// no catch-up, and every tick of the hour takes its snapshot.
	seeded := t0.Add(-40 * time.Minute)
	for i := range n {
		d := snapdeck.Database{ID: fmt.Sprintf("%08x", uint32(i)*2654435761), Name: fmt.Sprintf("db-%d", i), Plan: snapdeck.PlanEnterprise,
			Status: snapdeck.StatusRunning, CreatedAt: seeded}
		if err := e.db.CreateDatabase(ctx, &d); err != nil {
			b.Fatal(err)
		}
		rec := store.SnapshotRecord{Snapshot: snapdeck.Snapshot{ID: "seed-" + d.ID, DatabaseID: d.ID, Type: snapdeck.SnapshotScheduled,
			Reason: "Database created", Status: snapdeck.SnapshotCompleted, CreatedAt: seeded, ExpiresAt: seeded.Add(24 * time.Hour)}}
		if err := e.db.CreateSnapshot(ctx, &rec); err != nil {
			b.Fatal(err)
		}
	}
	started := make(chan time.Time, n)
	before := memory()
	goroutines := runtime.NumGoroutine()
	s := e.scheduler(Config{SweepEvery: time.Minute, Take: func(_ context.Context, _ snapdeck.Database, _ string) error {
		started <- e.clock.Now()
		return nil
	}})
	s.observe = nil // nobody reads 10,000 run reports
	cpu0 := cpuTime()
	b.ResetTimer()
	s.start()
	startCPU := cpuTime() - cpu0
	s.waitWaiters(n + 1)
	held := memory() - before
	heldGoroutines := runtime.NumGoroutine() - goroutines

	// Where each database's run falls, from gocron itself.
	planned := make([]time.Time, 0, n)
	dbs, err := e.db.FindDatabases(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range dbs {
		planned = append(planned, s.NextSnapshot(d))
	}
	cpu1 := cpuTime()
	var perMinute [60]int
	got := 0
	for m := 1; m <= 60; m++ {
		now := t0.Add(time.Duration(m) * time.Minute)
		e.clock.Advance(time.Minute)
		due := 0
		for _, p := range planned {
			if !p.After(now) {
				due++
			}
		}
		for ; got < due; got++ {
			select {
			case at := <-started:
				perMinute[at.Sub(t0)/time.Minute-boolInt(at.Sub(t0)%time.Minute == 0)]++
			case <-time.After(30 * time.Second):
				b.Fatalf("minute %d: %d of %d due runs started", m, got, due)
			}
		}
	}
	hourCPU := cpuTime() - cpu1
	b.StopTimer()

	lo, hi := n, 0
	for _, c := range perMinute {
		lo, hi = min(lo, c), max(hi, c)
	}
	b.ReportMetric(float64(held)/float64(n), "heap-B/db")
	b.ReportMetric(float64(heldGoroutines), "goroutines")
	b.ReportMetric(float64(startCPU.Milliseconds()), "start-cpu-ms")
	b.ReportMetric(float64(hourCPU.Milliseconds()), "hour-cpu-ms")
	b.ReportMetric(float64(lo), "min-starts/min")
	b.ReportMetric(float64(hi), "max-starts/min")
	var hist strings.Builder
	for i := 0; i < 60; i += 5 {
		sum := 0
		for _, c := range perMinute[i : i+5] {
			sum += c
		}
		fmt.Fprintf(&hist, ":%02d-:%02d %5d %s\n", i, i+5, sum, strings.Repeat("#", sum/25))
	}
	b.Logf("%d databases, hourly: %d runs in the hour; heap held by the schedule %.1f MiB (%d B/database), %d goroutines; "+
		"start %v CPU, hour %v CPU; starts per minute min %d max %d\n%s",
		n, got, float64(held)/(1<<20), held/int64(n), heldGoroutines, startCPU, hourCPU, lo, hi, hist.String())
}

func boolInt(b bool) time.Duration {
	if b {
		return 1
	}
	return 0
}

// memory is the live heap after a collection.
func memory() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
