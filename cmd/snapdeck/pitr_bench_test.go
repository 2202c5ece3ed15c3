package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkConsolePointInTime measures issue 16's restore to a time on the
// user's path: an enterprise database filled through the Query tab with
// `INSERT ... SELECT randomblob(4000)` in batches, then a writer changing 1%
// of its rows, one row a commit, spread evenly over the history, each
// commit's UTC time noted. Then restores through the form (POST
// /databases/{id}/restore-to-time with the typed RESTORE) to a second in
// the middle of the history, one near its end, and the middle again, each
// timed from the POST until the job page says succeeded (safety snapshot
// and swap included), each followed by a check of the exact rows through
// the Query tab and by `cp`+`sync` of the database file, the reference of
// the same run. It also reports the storage: the WAL, the LTX bytes
// stored, and LTX bytes per GiB of WAL written (Litestream's own count of
// what it read from the WAL).
//
//	SNAPDECK_BENCH_SIZE=1GiB SNAPDECK_BENCH_HISTORY=1h SNAPDECK_BENCH_DIR=/var/tmp \
//	    go test ./cmd/snapdeck -run '^$' -bench ConsolePointInTime -benchtime 1x -timeout 100m -v
//
// (-v shows every line of the log: without it the testing package cuts a
// benchmark's log short.) SNAPDECK_BENCH_PROFILE=<dir> writes a CPU
// profile of each restore; SNAPDECK_BENCH_LOG=<file> keeps the program's
// log at debug and lists the history's slow Query-tab commits.
//
// SNAPDECK_BENCH_SIZE defaults to 64MiB and SNAPDECK_BENCH_HISTORY to 2m,
// so that a plain -bench run is short.
//
// An enterprise database takes a Scheduled snapshot every hour, so one
// with an hour of history has a snapshot from within it, which the
// restore's safety snapshot takes as its base. With
// SNAPDECK_BENCH_SNAPSHOT_FIRST=1 the benchmark stands in for it with a
// snapshot taken through the SNAPSHOTS tab between the fill and the
// history (timed and reported); by default there is none, and the first
// restore's safety snapshot is a whole capture, the worst case.
func BenchmarkConsolePointInTime(b *testing.B) {
	size := benchSize(b)
	history := 2 * time.Minute
	if s := os.Getenv("SNAPDECK_BENCH_HISTORY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			b.Fatalf("SNAPDECK_BENCH_HISTORY: %q is not a positive duration", s)
		}
		history = d
	}
	for range b.N {
		pointInTimeRun(b, size, history)
	}
}

// noted is one commit of the writer: generation gen written to row id,
// the request sent at sent and answered at done (UTC).
type noted struct {
	gen, id    int64
	sent, done time.Time
}

// replicationLag is how long after its commit a change may be stamped in
// its LTX file: Litestream reads the WAL every 100 ms (pitr.Tuning), and a
// busy machine delays it.
const replicationLag = 400 * time.Millisecond

// restoreSecond returns the whole second at or before near whose end no
// commit of the writer straddles, so that what a restore to it holds is
// known exactly, and the commits it holds.
func restoreSecond(commits []noted, near time.Time) (time.Time, []noted) {
	s := near.UTC().Truncate(time.Second)
	for {
		end := s.Add(time.Second - time.Millisecond) // the restore covers the whole second
		clear := true
		for _, c := range commits {
			if !c.sent.After(end) && c.done.Add(replicationLag).After(end) {
				clear = false
				break
			}
		}
		if clear {
			var in []noted
			for _, c := range commits {
				if !c.done.Add(replicationLag).After(end) {
					in = append(in, c)
				}
			}
			return s, in
		}
		s = s.Add(-time.Second)
	}
}

var checkRow = regexp.MustCompile(`R:(\d+):(\d+):(\d+):(\d+)`)

func pointInTimeRun(b *testing.B, size int64, history time.Duration) {
	dir, err := os.MkdirTemp(os.Getenv("SNAPDECK_BENCH_DIR"), "snapdeck-pitr-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	env := map[string]string{"SNAPDECK_ADMIN_EMAIL": "bench@example.com", "SNAPDECK_ADMIN_PASSWORD": "bench-password-1234"}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SNAPDECK_PITR_") {
			env[k] = v
		}
	}
	// SNAPDECK_BENCH_LOG=<file> keeps the program's log, at debug, and
	// prints each Query-tab commit of the history slower than 20 ms with
	// its wall-clock start, to be set beside it.
	var base string
	var stop func() error
	if f := os.Getenv("SNAPDECK_BENCH_LOG"); f != "" {
		log, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		defer log.Close()
		base, stop = startConsoleLogging(b, env, log, "--data", data, "--log-level", "debug")
	} else {
		base, stop = startConsole(b, env, "--data", data)
	}
	defer stop()
	u := browserSignIn(b, base, "bench@example.com", "bench-password-1234")
	page := u.post(b, "/databases", url.Values{"name": {"bench"}, "plan": {"enterprise"}}, "/databases/new")
	id := attr(page, "data-database-id")
	if id == "" {
		b.Fatal("no database on the page after creating one")
	}
	dbPath := filepath.Join(data, "databases", id+".sqlite")

	// Fill through the Query tab.
	u.query(b, id, "CREATE TABLE t (id INTEGER PRIMARY KEY, gen INTEGER NOT NULL DEFAULT 0, b BLOB)")
	const batch = 8192
	rows := max(size/4096, 100) // a row of 4,000 bytes takes about a page
	start := time.Now()
	for done := int64(0); done < rows; done += batch {
		u.query(b, id, fmt.Sprintf("WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < %d) INSERT INTO t(b) SELECT randomblob(4000) FROM s", min(batch, rows-done)))
	}
	b.Logf("filled %s (enterprise) with %d rows through the Query tab in %s: file %d bytes, WAL %d bytes",
		id, rows, time.Since(start).Round(time.Millisecond), fileSize(dbPath), fileSize(dbPath+"-wal"))
	// Litestream, which owns a replicated database's checkpoints, copies
	// the WAL into the file in the background.
	for deadline := time.Now().Add(2 * time.Minute); fileSize(dbPath) < rows*4000 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the last read of the WAL reaches the store
	walFill, ltxFill := litestreamWALBytes(b, dbPath), u.pitrBytes(b, id)
	b.Logf("after the fill (%s): file %d bytes, WAL %d bytes; Litestream read %d bytes of WAL, %d bytes of LTX stored",
		time.Since(start).Round(time.Millisecond), fileSize(dbPath), fileSize(dbPath+"-wal"), int64(walFill), ltxFill)

	if os.Getenv("SNAPDECK_BENCH_SNAPSHOT_FIRST") == "1" {
		u.quiet(b, id)
		sid, took := u.snapshot(b, id)
		b.Logf("snapshot %s before the history, standing in for the hourly Scheduled one: %s", sid, took.Round(time.Millisecond))
	}

	// The writer: 1% of the rows, one a commit, spread evenly over the
	// history, with the WAL's size sampled meanwhile.
	n := max(rows/100, 1)
	every := history / time.Duration(n)
	b.Logf("history: %d commits of one row, one every %s over %s", n, every.Round(time.Millisecond), history)
	var walMax int64
	var walMu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for t := time.NewTicker(time.Second); ; {
			select {
			case <-stopSampling:
				t.Stop()
				return
			case <-t.C:
				walMu.Lock()
				walMax = max(walMax, fileSize(dbPath+"-wal"))
				walMu.Unlock()
			}
		}
	}()
	var commits []noted
	var commitTimes []time.Duration
	hstart := time.Now()
	// The seconds restored to: the middle of the history and near its
	// end. No commit is sent in the last moments of either, so that what
	// a restore to it holds is known exactly (restoreSecond).
	targets := []time.Time{hstart.Add(history / 2).UTC().Truncate(time.Second),
		hstart.Add(history - max(3*every, 3*time.Second)).UTC().Truncate(time.Second)}
	for k := int64(1); k <= n; k++ {
		time.Sleep(time.Until(hstart.Add(time.Duration(k-1) * every)))
		for _, s := range targets {
			if end := s.Add(time.Second); time.Now().After(end.Add(-replicationLag-100*time.Millisecond)) && time.Now().Before(end) {
				time.Sleep(time.Until(end))
			}
		}
		row := (k-1)*100%rows + 1
		c := noted{gen: k, id: row, sent: time.Now().UTC()}
		u.query(b, id, fmt.Sprintf("UPDATE t SET gen = %d, b = randomblob(4000) WHERE id = %d", k, row))
		c.done = time.Now().UTC()
		commits = append(commits, c)
		commitTimes = append(commitTimes, c.done.Sub(c.sent))
		if os.Getenv("SNAPDECK_BENCH_LOG") != "" && c.done.Sub(c.sent) > 20*time.Millisecond {
			b.Logf("SLOW Query-tab commit %s +%s", c.sent.Format("15:04:05.000000"), c.done.Sub(c.sent).Round(time.Microsecond))
		}
		if k%max(n/10, 1) == 0 {
			b.Logf("  %s: %d of %d commits, the last at %s", time.Since(hstart).Round(time.Second), k, n, c.done.Format(time.RFC3339Nano))
		}
	}
	time.Sleep(2 * time.Second)
	close(stopSampling)
	<-sampled
	walAll, ltxAll := litestreamWALBytes(b, dbPath), u.pitrBytes(b, id)
	slices.Sort(commitTimes)
	b.Logf("history written in %s, %s to %s; a commit through the Query tab took %s median, %s worst",
		time.Since(hstart).Round(time.Millisecond), hstart.UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339),
		commitTimes[len(commitTimes)/2].Round(time.Microsecond), commitTimes[len(commitTimes)-1].Round(time.Microsecond))
	b.Logf("WAL: %d bytes now, at most %d bytes during the history (sampled every second)", fileSize(dbPath+"-wal"), walMax)
	const gib = float64(1 << 30)
	b.Logf("STORAGE: %d bytes of LTX stored (all levels), %d after the fill; Litestream read %d bytes of WAL in all, %d in the history",
		ltxAll, ltxFill, int64(walAll), int64(walAll-walFill))
	b.Logf("STORAGE: all: %.0f MiB of LTX per GiB of WAL written; the history alone: %.0f MiB of LTX per GiB of WAL written",
		float64(ltxAll)/walAll*gib/(1<<20), float64(ltxAll-ltxFill)/(walAll-walFill)*gib/(1<<20))
	b.ReportMetric(float64(ltxAll)/walAll, "ltx-bytes/wal-byte")
	if walAll > walFill {
		b.ReportMetric(float64(ltxAll-ltxFill)/(walAll-walFill), "history-ltx-bytes/wal-byte")
	}

	// The restores, each with cp+sync of the file right after it.
	var ratios []float64
	for i, near := range []time.Time{targets[0], targets[1], targets[0]} {
		second, in := restoreSecond(commits, near)
		if !second.Equal(near) {
			b.Logf("restore %d: a commit straddles the end of %s; restoring to %s", i+1, near.Format(time.RFC3339), second.Format(time.RFC3339))
		}
		u.quiet(b, id)
		if err := exec.Command("sync").Run(); err != nil {
			b.Fatal(err)
		}
		at := second.Format("2006-01-02T15:04:05")
		// The form's page first, as the browser has it: the clock starts
		// at the POST.
		token := u.csrf(b, "/databases/"+id+"/restore-to-time")
		stopProfile := profileStep(b, fmt.Sprintf("restore-to-time-%d", i+1))
		start := time.Now()
		job := u.postToken(b, "/databases/"+id+"/restore-to-time", url.Values{"time": {at}, "confirm": {"RESTORE"}, "_csrf": {token}})
		jid := attr(job, "data-job-id")
		if jid == "" {
			b.Fatalf("restore to %s: no job on the page after the POST", at)
		}
		stages := u.jobStages(b, "/jobs/"+jid)
		took := time.Since(start)
		stopProfile()
		for _, st := range stages {
			b.Logf("  %8s  %s", st.at.Sub(start).Round(time.Millisecond), st.message)
		}
		u.checkRows(b, id, rows, in, at)
		cpSync := timeCommand(b, "sh", "-c", fmt.Sprintf("cp %s %s && sync", dbPath, filepath.Join(dir, "copy.sqlite")))
		os.Remove(filepath.Join(dir, "copy.sqlite"))
		ratio := took.Seconds() / cpSync.Seconds()
		ratios = append(ratios, ratio)
		b.Logf("restore %d to %s (%d of %d commits in it): %s; cp+sync of the %d-byte file %s: %.2f ×",
			i+1, at, len(in), n, took.Round(time.Millisecond), fileSize(dbPath), cpSync.Round(time.Millisecond), ratio)
		b.ReportMetric(took.Seconds(), fmt.Sprintf("restore%d-s", i+1))
		b.ReportMetric(cpSync.Seconds(), fmt.Sprintf("cpsync%d-s", i+1))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "restore/cp-median")
}

// csrf is the CSRF token of the form on the page at from.
func (u *consoleUser) csrf(b *testing.B, from string) string {
	b.Helper()
	m := pageCSRF.FindStringSubmatch(u.get(b, from))
	if m == nil {
		b.Fatalf("no _csrf field on %s", from)
	}
	return m[1]
}

// postToken submits a form that carries its CSRF token and returns the
// final page.
func (u *consoleUser) postToken(b *testing.B, path string, form url.Values) string {
	b.Helper()
	res, err := u.c.PostForm(u.base+path, form)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		b.Fatalf("POST %s: %d\n%s", path, res.StatusCode, body)
	}
	return string(body)
}

// stage is a job's message and when the job page first showed it.
type stage struct {
	message string
	at      time.Time
}

var jobMessage = regexp.MustCompile(`data-job-message[^>]*>([^<]*)<`)

// jobStages polls a job's page until it succeeds and returns each message
// it showed meanwhile, as the browser's progress bar shows them. It polls
// every 20 ms: the console and this client share the machine's two cores.
func (u *consoleUser) jobStages(b *testing.B, path string) []stage {
	b.Helper()
	var stages []stage
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page := u.get(b, path)
		now := time.Now()
		if m := jobMessage.FindStringSubmatch(page); m != nil && (len(stages) == 0 || stages[len(stages)-1].message != m[1]) {
			stages = append(stages, stage{m[1], now})
		}
		switch attr(page, "data-job-status") {
		case "succeeded":
			return stages
		case "failed":
			b.Fatalf("%s failed: %v", path, stages)
		}
	}
	b.Fatalf("%s never succeeded", path)
	return nil
}

// checkRows checks through the Query tab that the database holds exactly
// the rows filled and the writer's commits in.
func (u *consoleUser) checkRows(b *testing.B, id string, rows int64, in []noted, at string) {
	b.Helper()
	var gens, weighted int64
	for _, c := range in {
		gens += c.gen
		weighted += c.gen * c.id
	}
	page := u.query(b, id, "SELECT 'R:' || count(*) || ':' || count(*) FILTER (WHERE gen > 0) || ':' || coalesce(sum(gen), 0) || ':' || coalesce(sum(gen * id), 0) FROM t")
	m := checkRow.FindStringSubmatch(page)
	if m == nil {
		b.Fatalf("restore to %s: no check row on the Query tab's page", at)
	}
	got := [4]int64{}
	for i := range got {
		got[i], _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	want := [4]int64{rows, int64(len(in)), gens, weighted}
	if got != want {
		b.Fatalf("restore to %s: rows, rows changed, sum of generations, sum of generation × id are %v, want %v", at, got, want)
	}
}

// pitrBytes is the point-in-time storage the database list shows for id.
func (u *consoleUser) pitrBytes(b *testing.B, id string) int64 {
	b.Helper()
	page := u.get(b, "/databases")
	for _, m := range databaseRow.FindAllStringSubmatch(page, -1) {
		if m[1] != id {
			continue
		}
		// The cell is further on in the row whose opening tag matched.
		i := strings.Index(page, m[0])
		row := page[i:]
		if j := strings.Index(row, "</tr>"); j >= 0 {
			row = row[:j]
		}
		n, err := strconv.ParseInt(attr(row, "data-pitr-bytes"), 10, 64)
		if err != nil {
			b.Fatalf("database list: no data-pitr-bytes in the row of %s", id)
		}
		return n
	}
	b.Fatalf("database list: no row for %s", id)
	return 0
}

// litestreamWALBytes is what Litestream read from the WAL of path (its
// litestream_total_wal_bytes counter; the console runs in this process).
func litestreamWALBytes(b *testing.B, path string) float64 {
	b.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "litestream_total_wal_bytes" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "db" && l.GetValue() == path {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	b.Fatalf("no litestream_total_wal_bytes for %s", path)
	return 0
}
