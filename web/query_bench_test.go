package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

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
