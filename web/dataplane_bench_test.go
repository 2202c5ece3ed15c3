package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/snapdeck/snapdeck/internal/app"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// The data plane's benchmarks (docs/benchmarks.md, "Data plane (issue
// 15)"): the Go libSQL client over loopback against the real router, next
// to database/sql on the same file in process.

// benchPlane starts a console with one database holding table t of rows
// (id, v) and returns the Go client on it, and database/sql in process on
// the same file.
func benchPlane(b *testing.B, rows int) (*console, snapdeck.Database, *sql.DB, *sql.DB) {
	b.Helper()
	var wiring func(*app.Config)
	if os.Getenv("SNAPDECK_BENCH_PITR") != "" {
		// Every plan replicated, as professional databases are by default
		// in the binary: Litestream then owns the WAL's checkpoints.
		wiring = func(cfg *app.Config) {
			cfg.PITRWindows = map[snapdeck.Plan]time.Duration{snapdeck.PlanFree: 24 * time.Hour,
				snapdeck.PlanProfessional: 24 * time.Hour, snapdeck.PlanEnterprise: 24 * time.Hour}
		}
	}
	c := startConsoleWith(b, wiring)
	ctx := context.Background()
	d, _, remote := c.goClientDB(b, "bench")
	local, err := c.app.Host.DB(d.ID)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := local.ExecContext(ctx, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		b.Fatal(err)
	}
	if rows > 0 {
		if _, err := local.ExecContext(ctx, fmt.Sprintf(
			"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) INSERT INTO t SELECT i, 'value ' || i FROM n", rows)); err != nil {
			b.Fatal(err)
		}
	}
	return c, d, remote, local
}

// percentiles reports the p50 and p99 of times in µs under prefix.
func percentiles(b *testing.B, prefix string, times []time.Duration) {
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds()), prefix+"p50-µs")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), prefix+"p99-µs")
}

// BenchmarkDataPlaneNewStreams runs 500 point queries from the Go client,
// each on a new stream (database/sql resets the client's connection after
// each, which closes its stream). Issue 15 asks for <= 2 s in all.
func BenchmarkDataPlaneNewStreams(b *testing.B) {
	_, _, remote, _ := benchPlane(b, 1000)
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		for i := range 500 {
			var v string
			if err := remote.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", i%1000+1).Scan(&v); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/500-queries")
}

// BenchmarkDataPlaneOneStream runs 1,000 point queries on one stream (one
// pinned connection of the Go client) and the same through database/sql in
// process, and reports both percentiles. Issue 15 aims at <= 0.5 ms p50.
func BenchmarkDataPlaneOneStream(b *testing.B) {
	_, _, remote, local := benchPlane(b, 1000)
	ctx := context.Background()
	conn, err := remote.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var streamed, inProcess []time.Duration
	for b.Loop() {
		for i := range 1000 {
			var v string
			start := time.Now()
			if err := conn.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", i+1).Scan(&v); err != nil {
				b.Fatal(err)
			}
			streamed = append(streamed, time.Since(start))
			start = time.Now()
			if err := local.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", i+1).Scan(&v); err != nil {
				b.Fatal(err)
			}
			inProcess = append(inProcess, time.Since(start))
		}
	}
	percentiles(b, "stream-", streamed)
	percentiles(b, "in-process-", inProcess)
}

// insert100 is one INSERT of 100 rows with 200 arguments.
func insert100(n int) (string, []any) {
	var q strings.Builder
	q.WriteString("INSERT INTO t(id, v) VALUES ")
	args := make([]any, 0, 200)
	for i := range 100 {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?)")
		args = append(args, int64(n*100+i+1), fmt.Sprintf("row %d with some text to make it look like data", n*100+i))
	}
	return q.String(), args
}

// BenchmarkDataPlaneInsertBatches inserts rows in batches of 100 (one
// statement each) from the Go client, and the same in process, reporting
// rows a second for both.
func BenchmarkDataPlaneInsertBatches(b *testing.B) {
	c, d, remote, local := benchPlane(b, 0)
	ctx := context.Background()
	if _, err := local.ExecContext(ctx, "CREATE TABLE u(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		b.Fatal(err)
	}
	const batches = 200
	var remoteTime, localTime time.Duration
	n := 0
	// With replication, the lag of the point-in-time history.
	if replicated(c, d.ID) {
		lag := lagSampler(c, d.ID)
		defer func() { b.ReportMetric(lag().Seconds()*1000, "lag-max-ms") }()
	}
	for b.Loop() {
		start := time.Now()
		for range batches {
			q, args := insert100(n)
			n++
			if _, err := remote.ExecContext(ctx, q, args...); err != nil {
				b.Fatal(err)
			}
		}
		remoteTime += time.Since(start)
		start = time.Now()
		for i := range batches {
			q, args := insert100(n - batches + i)
			if _, err := local.ExecContext(ctx, strings.Replace(q, "INTO t(", "INTO u(", 1), args...); err != nil {
				b.Fatal(err)
			}
		}
		localTime += time.Since(start)
	}
	rows := float64(batches * 100 * b.N)
	b.ReportMetric(rows/remoteTime.Seconds(), "stream-rows/s")
	b.ReportMetric(rows/localTime.Seconds(), "in-process-rows/s")
	b.ReportMetric(float64(c.app.Host.Size(d.ID))/(1<<20), "db-MiB")
}

// BenchmarkQueryTabWhileStreamsWrite times the Query tab's answer while 20
// streams are open and one of them writes continuously, next to the same
// query with no stream open, in the same run. Issue 15 asks for <= 100 ms.
// A database takes at most 16 streams (database/lease.go), so 10 are on
// the database the Query tab reads, the writer among them, and 10 on a
// second one.
func BenchmarkQueryTabWhileStreamsWrite(b *testing.B) {
	c, d, remote, _ := benchPlane(b, 1000)
	ctx := context.Background()
	_, _, other := c.goClientDB(b, "second")
	query := signedIn(b, c, "member@x")
	path := "/databases/" + d.ID + "/query"
	run := func(b *testing.B) {
		var times []time.Duration
		for b.Loop() {
			start := time.Now()
			status, body := query(path, url.Values{"sql": {"SELECT count(*) FROM t"}})
			times = append(times, time.Since(start))
			if status != http.StatusOK || !strings.Contains(body, "data-query-summary") {
				b.Fatalf("query: got %d, want 200 with a result", status)
			}
		}
		percentiles(b, "", times)
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)-1].Microseconds()), "max-µs")
	}
	b.Run("no-streams", run)
	b.Run("20-streams-one-writing", func(b *testing.B) {
		var conns []*sql.Conn
		for i := range 20 {
			db := remote
			if i >= 10 {
				db = other
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, conn)
		}
		stop := make(chan struct{})
		wait := writeUntil(stop, func(int) error {
			_, err := conns[0].ExecContext(ctx, "INSERT INTO t(v) VALUES (?)", strings.Repeat("w", 200))
			return err
		})
		run(b)
		close(stop)
		writes, err := wait()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(writes), "writes")
	})
}

// signedIn signs email in and returns a function posting a console form
// with the session's CSRF token.
func signedIn(b *testing.B, c *console, email string) func(path string, form url.Values) (int, string) {
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
	token := func(path string) string {
		_, page := send(http.MethodGet, path, nil)
		m := csrfInput.FindStringSubmatch(page)
		if m == nil {
			b.Fatalf("%s has no _csrf field", path)
		}
		return m[1]
	}
	if status, _ := send(http.MethodPost, "/login", url.Values{"email": {email}, "password": {testPassword}, "_csrf": {token("/login")}}); status != http.StatusSeeOther {
		b.Fatalf("sign in: got %d, want 303", status)
	}
	csrf := token("/account/password")
	return func(path string, form url.Values) (int, string) {
		form.Set("_csrf", csrf)
		return send(http.MethodPost, path, form)
	}
}

// BenchmarkDataPlaneSustainedWrites writes through the data plane for
// SNAPDECK_WAL_SECONDS (default 5; docs/benchmarks.md used 60) and reports
// the largest the WAL grew, sampled every 50 ms: the checkpointer, nudged
// by the streams' commits, keeps it bounded.
func BenchmarkDataPlaneSustainedWrites(b *testing.B) {
	c, d, remote, _ := benchPlane(b, 0)
	ctx := context.Background()
	seconds := 5
	fmt.Sscan(os.Getenv("SNAPDECK_WAL_SECONDS"), &seconds)
	wal := filepath.Join(c.dir, "databases", d.ID+".sqlite-wal")
	if _, err := os.Stat(strings.TrimSuffix(wal, "-wal")); err != nil {
		b.Fatalf("the database file is not where the benchmark looks: %v", err)
	}
	for b.Loop() {
		stop := make(chan struct{})
		wait := writeUntil(stop, func(n int) error {
			q, args := insert100(n)
			_, err := remote.ExecContext(ctx, strings.Replace(q, "INSERT INTO", "INSERT OR REPLACE INTO", 1), args...)
			return err
		})
		var largest int64
		deadline := time.After(time.Duration(seconds) * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
	sample:
		for {
			select {
			case <-deadline:
				break sample
			case <-tick.C:
				if fi, err := os.Stat(wal); err == nil && fi.Size() > largest {
					largest = fi.Size()
				}
			}
		}
		tick.Stop()
		close(stop)
		batches, err := wait()
		if err != nil {
			b.Fatal(err)
		}
		rows := batches * 100
		b.ReportMetric(float64(largest)/(1<<20), "max-wal-MiB")
		b.ReportMetric(float64(rows)/float64(seconds), "rows/s")
		b.ReportMetric(float64(c.app.Host.Size(d.ID))/(1<<20), "db+wal-MiB")
	}
}

// BenchmarkDataPlaneConcurrentWrites runs SNAPDECK_BENCH_CLIENTS clients
// (default 4; a database takes 16 streams) at once, each inserting 100
// rows a request, for SNAPDECK_WAL_SECONDS (default 5), and reports rows a
// second and, with SNAPDECK_BENCH_PITR, the most the point-in-time history
// lagged (sampled every 100 ms): the lag /metrics reports, which must stay
// under the replication interval (1 s) while the writes go on.
func BenchmarkDataPlaneConcurrentWrites(b *testing.B) {
	c, d, remote, _ := benchPlane(b, 0)
	ctx := context.Background()
	seconds := 5
	fmt.Sscan(os.Getenv("SNAPDECK_WAL_SECONDS"), &seconds)
	clients := 4
	fmt.Sscan(os.Getenv("SNAPDECK_BENCH_CLIENTS"), &clients)
	remote.SetMaxOpenConns(clients)
	for b.Loop() {
		var rows atomic.Int64
		lag := lagSampler(c, d.ID)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range clients {
			wg.Go(func() {
				for n := w * 1_000_000; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					q, args := insert100(n)
					if _, err := remote.ExecContext(ctx, q, args...); err != nil {
						b.Error(err)
						return
					}
					rows.Add(100)
				}
			})
		}
		start := time.Now()
		time.Sleep(time.Duration(seconds) * time.Second)
		close(stop)
		wg.Wait()
		b.ReportMetric(float64(rows.Load())/time.Since(start).Seconds(), "stream-rows/s")
		if most := lag(); replicated(c, d.ID) {
			b.ReportMetric(most.Seconds()*1000, "lag-max-ms")
		}
	}
}

// lagSampler samples the lag of database id's point-in-time history (what
// /metrics reports) every 100 ms until the function it returns is called,
// which returns the largest seen; without replication it is 0.
func lagSampler(c *console, id string) func() time.Duration {
	reps := c.app.PITR
	var most time.Duration
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for reps != nil {
			select {
			case <-stop:
				return
			case <-t.C:
				most = max(most, reps.Lag()[id])
			}
		}
	}()
	return func() time.Duration {
		close(stop)
		<-done
		return most
	}
}

// replicated tells whether database id has a point-in-time history.
func replicated(c *console, id string) bool { return c.app.PITR != nil && c.app.PITR.Running(id) }
