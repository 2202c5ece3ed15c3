package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
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
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, form url.Values) (int, string) {
		req, _ := http.NewRequest(method, c.srv.URL+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	_, page := send(http.MethodGet, "/login", nil)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		b.Fatal("sign-in page has no _csrf field")
	}
	csrf := m[1]
	if status, _ := send(http.MethodPost, "/login", url.Values{"email": {"member@x"}, "password": {testPassword}, "_csrf": {csrf}}); status != http.StatusSeeOther {
		b.Fatalf("sign in: got %d, want 303", status)
	}
	form := url.Values{"sql": {"select 1"}, "_csrf": {csrf}}
	path := "/databases/" + d.ID + "/query"
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		status, body := send(http.MethodPost, path, form)
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
