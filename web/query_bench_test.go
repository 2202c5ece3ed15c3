package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// BenchmarkQueryTabSelect1 times the Query tab's `select 1` through the
// real router, signed in as a member: what one run of the tab costs on top
// of SQLite, connection handling included. It reports the median and p99
// of the requests as metrics, beside Go's mean.
func BenchmarkQueryTabSelect1(b *testing.B) {
	c := startConsole(b)
	out, err := c.databases.Create(context.Background(), "system", database.CreateRequest{Name: "bench", Plan: snapdeck.PlanFree})
	if err != nil {
		b.Fatal(err)
	}
	d := out.Database
	query := signedIn(b, c, "member@x")
	form := url.Values{"sql": {"select 1"}}
	path := "/databases/" + d.ID + "/query"
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		status, body := query(path, form)
		times = append(times, time.Since(start))
		if status != http.StatusOK || !strings.Contains(body, "data-query-summary") {
			b.Fatalf("query: got %d, want 200 with a result", status)
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkQueryTabSustainedWrites posts one-row inserts to the Query tab
// of a replicated (professional) database, one after another through the
// real router, for SNAPDECK_WAL_SECONDS (default 5), and reports runs a
// second and the most the point-in-time history lagged (sampled every
// 100 ms). Each run waits for a read of the WAL before it answers, so the
// time its commit gets is before the user sees it: one LTX file each.
func BenchmarkQueryTabSustainedWrites(b *testing.B) {
	c := startConsoleWith(b, func(cfg *app.Config) {
		cfg.PITRWindows = map[snapdeck.Plan]time.Duration{snapdeck.PlanProfessional: 24 * time.Hour}
	})
	ctx := context.Background()
	out, err := c.databases.Create(ctx, "system", database.CreateRequest{Name: "bench", Plan: snapdeck.PlanProfessional})
	if err != nil {
		b.Fatal(err)
	}
	d := out.Database
	if _, err := c.databases.Query(ctx, d.ID, "CREATE TABLE t(n INTEGER)", false); err != nil {
		b.Fatal(err)
	}
	query := signedIn(b, c, "admin@x")
	path := "/databases/" + d.ID + "/query"
	seconds := 5
	fmt.Sscan(os.Getenv("SNAPDECK_WAL_SECONDS"), &seconds)
	for b.Loop() {
		lag := lagSampler(c, d.ID)
		runs := 0
		start := time.Now()
		for time.Since(start) < time.Duration(seconds)*time.Second {
			status, body := query(path, url.Values{"sql": {"INSERT INTO t VALUES (1)"}})
			if status != http.StatusOK || !strings.Contains(body, `data-rows-affected="1"`) {
				b.Fatalf("query: got %d, want 200 with one row changed", status)
			}
			runs++
		}
		took := time.Since(start)
		b.ReportMetric(float64(runs)/took.Seconds(), "runs/s")
		b.ReportMetric(lag().Seconds()*1000, "lag-max-ms")
	}
}
