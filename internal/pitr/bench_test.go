package pitr_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// checkpointsOf hands the writer's checkpointer over as Host does for the
// console's pools (database.Host.TakeOverCheckpoints).
type checkpointsOf struct{ ck *checkpoint.Checkpointer }

func (c checkpointsOf) TakeOverCheckpoints(string, string) (func(), error) {
	c.ck.StandAside()
	return c.ck.Resume, nil
}

// openWriter opens a connection set up as the console's write pools are
// (internal/database): WAL, synchronous=NORMAL, no checkpoint in a commit.
func openWriter(b testing.TB, path string) *sql.DB {
	return openWriterBusy(b, path, 10000)
}

// BenchmarkPointInTime measures, in one run, the issue-4 writer (one row
// per commit) with and without replication, a restore to a time against
// cp+sync of the file, and the LTX bytes stored per WAL byte written.
// SNAPDECK_BENCH_SIZE (default 256MiB) sizes the database;
// SNAPDECK_BENCH_PITR_PHASE (default 8s) is each writer phase;
// SNAPDECK_BENCH_PITR_MONITOR and SNAPDECK_BENCH_PITR_MINPAGES tune
// Litestream's read of the WAL and its passive checkpoint;
// SNAPDECK_BENCH_PITR_TRACE=<ms> logs every commit slower than that and
// every message of the replicator; SNAPDECK_BENCH_PITR_RESTORES=0 ends the
// run after the writer; SNAPDECK_BENCH_PITR_KICK=0 leaves the replicator to
// read the WAL on its own tick rather than after each commit;
// SNAPDECK_BENCH_PITR_PROBE=<interval> writes and fdatasyncs a lone 4 KiB
// block beside the database that often while the writer runs, to set the
// disk's own fsync tail beside the writer's; SNAPDECK_BENCH_PITR_POLL=<d>
// makes the writer retry a busy commit every d itself (busy_timeout 0)
// rather than on SQLite's busy schedule. Every phase reports the Go
// runtime's scheduling latencies and GC pauses.
func BenchmarkPointInTime(b *testing.B) {
	ctx := context.Background()
	size := int64(256 << 20)
	if s := os.Getenv("SNAPDECK_BENCH_SIZE"); s != "" {
		n, err := bytesize.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	tuning := pitr.DefaultTuning
	tuning.MonitorInterval = envDuration(b, "SNAPDECK_BENCH_PITR_MONITOR", tuning.MonitorInterval)
	if s := os.Getenv("SNAPDECK_BENCH_PITR_MINPAGES"); s != "" {
		fmt.Sscan(s, &tuning.MinCheckpointPageN)
	}
	// SNAPDECK_BENCH_PITR_RATE=<size> paces compactions (a second).
	if s := os.Getenv("SNAPDECK_BENCH_PITR_RATE"); s != "" {
		n, err := bytesize.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		tuning.CompactionRate = n
	}
	// SNAPDECK_BENCH_PITR_WRITEBACK=<d> is how often the WAL is written
	// back while the writer runs; 0 is never.
	tuning.WALWriteback = envDuration(b, "SNAPDECK_BENCH_PITR_WRITEBACK", tuning.WALWriteback)
	// SNAPDECK_BENCH_PITR_BUSY=<d> is how long Litestream waits for a
	// lock; 0 is Litestream's default (1 s).
	tuning.BusyTimeout = envDuration(b, "SNAPDECK_BENCH_PITR_BUSY", tuning.BusyTimeout)
	// SNAPDECK_BENCH_PITR_GAP=<d> is the least time between two reads of
	// the WAL that commits ask for (Tuning.ReadGap).
	tuning.ReadGap = envDuration(b, "SNAPDECK_BENCH_PITR_GAP", tuning.ReadGap)
	phase := envDuration(b, "SNAPDECK_BENCH_PITR_PHASE", 8*time.Second)
	poll := envDuration(b, "SNAPDECK_BENCH_PITR_POLL", 0)
	probeEvery := envDuration(b, "SNAPDECK_BENCH_PITR_PROBE", 0)
	dir := b.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	w := openWriter(b, path)
	fill(b, w, size)
	if poll > 0 {
		// The same connection settings but no busy handler: the loop
		// below waits for the lock in steps of poll.
		w.Close()
		w = openWriterBusy(b, path, 0)
	}
	ck := checkpoint.New(openWriter(b, path), nil)
	defer ck.Close()
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		b.Fatal(err)
	}
	// The restore's own timings (pitr.restoreFile's debug line), and
	// nothing else of the replicator's.
	var logger *slog.Logger
	if os.Getenv("SNAPDECK_BENCH_PITR_TRACE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		logger = slog.New(onlyMessage{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}), "restored to a time"})
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: checkpointsOf{ck}, Interval: time.Second, Tuning: tuning, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	defer reps.Close(ctx)
	const id = "bench"
	// SNAPDECK_BENCH_PITR_TRACE=<ms> logs each commit slower than that,
	// with its wall-clock start, to be set beside an strace of the run's
	// fsyncs and Litestream's checkpoints (logged at debug then).
	var slow time.Duration
	if s := os.Getenv("SNAPDECK_BENCH_PITR_TRACE"); s != "" {
		var n float64
		fmt.Sscan(s, &n)
		slow = time.Duration(n * float64(time.Millisecond))
	}
	phaseName := "without"
	kick := os.Getenv("SNAPDECK_BENCH_PITR_KICK") != "0"
	write := func(d time.Duration) []time.Duration {
		var lat []time.Duration
		var probe *fsyncProbe
		if probeEvery > 0 {
			probe = startFsyncProbe(b, filepath.Join(dir, "probe"), probeEvery)
		}
		rt := readRuntime()
		var slowAt [][2]time.Time
		for end := time.Now().Add(d); time.Now().Before(end); {
			t := time.Now()
			for {
				_, err := w.Exec(`INSERT INTO orders(customer, email, amount, status, created_at, note) VALUES ('c', 'x@example.com', 1.5, 'paid', '2026-01-01T00:00:00Z', 'latency probe')`)
				if err == nil {
					break
				}
				if poll == 0 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
					b.Fatal(err)
				}
				time.Sleep(poll)
			}
			lat = append(lat, time.Since(t))
			if lat[len(lat)-1] > 50*time.Millisecond {
				slowAt = append(slowAt, [2]time.Time{t, t.Add(lat[len(lat)-1])})
			}
			if slow > 0 && lat[len(lat)-1] > slow {
				fmt.Fprintf(os.Stderr, "SLOW %s commit %s +%.1fms\n", phaseName, t.UTC().Format("15:04:05.000000"), ms(lat[len(lat)-1]))
			}
			// As a lease's Nudge does after a commit: the checkpointer
			// is nudged (it stands aside while replicated), and the
			// replicator asked to read the WAL.
			ck.Nudge()
			if kick {
				reps.Committed(ctx, id, false)
			}
		}
		sched, gc := readRuntime().since(rt)
		line := fmt.Sprintf("RUNTIME %s: goroutine scheduling latency %s; GC pauses %s", phaseName, sched, gc)
		if probe != nil {
			line += "; " + probe.stop(slowAt)
		}
		b.Log(line)
		return lat
	}
	// Without replication first: Litestream started after a stop reads
	// the whole file again (the console's checkpointer reset the WAL
	// meanwhile), which would be the replicated phases' storage.
	var p99s, maxs [2][]time.Duration
	var lats [2][][]time.Duration
	for range 3 {
		lats[0] = append(lats[0], write(phase))
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		b.Logf("WAL after the writer without replication: %d MiB", fi.Size()>>20)
	}
	phaseName = "with"
	start := time.Now()
	if err := reps.Start(ctx, id, path, time.Hour); err != nil {
		b.Fatal(err)
	}
	if err := reps.Sync(ctx, id); err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	base, _ := reps.Bytes(ctx, id)
	b.Logf("database %d MiB; first replication (the whole file) %.2fs, %d MiB of LTX; tuning %+v", size>>20, first.Seconds(), base>>20, tuning)
	// The replication lag (Replicators.Lag, what /metrics reports),
	// sampled every 100 ms while the writer runs with replication.
	var lagMax time.Duration
	lagDone := make(chan struct{})
	lagStop := make(chan struct{})
	go func() {
		defer close(lagDone)
		for t := time.NewTicker(100 * time.Millisecond); ; {
			select {
			case <-lagStop:
				t.Stop()
				return
			case <-t.C:
				lag := reps.Lag()[id]
				lagMax = max(lagMax, lag)
				if slow > 0 && lag > 500*time.Millisecond {
					fmt.Fprintf(os.Stderr, "LAG %s %s\n", time.Now().UTC().Format("15:04:05.000000"), lag.Round(time.Millisecond))
				}
			}
		}
	}()
	for range 3 {
		lats[1] = append(lats[1], write(phase))
	}
	close(lagStop)
	<-lagDone
	b.Logf("LAG: replication lag at most %s while the writer ran with replication (sampled every 100 ms)", lagMax.Round(time.Millisecond))
	if err := reps.Sync(ctx, id); err != nil {
		b.Fatal(err)
	}
	walBytes := totalWALBytes(b, path)
	for run := range 3 {
		for i := range 2 {
			p99s[i] = append(p99s[i], percentile(lats[i][run], 99))
			maxs[i] = append(maxs[i], slices.Max(lats[i][run]))
		}
		b.Logf("WRITER run %d: without replication p50 %.3fms p99 %.2fms max %.2fms, %d over 50ms (%d commits); with p50 %.3fms p99 %.2fms max %.2fms, %d over 50ms (%d commits): p99 %.2fx; over 100ms %d without, %d with; p99.99 %.1fms without, %.1fms with",
			run+1, ms(median(lats[0][run])), ms(p99s[0][run]), ms(maxs[0][run]), over(lats[0][run], 50*time.Millisecond), len(lats[0][run]),
			ms(median(lats[1][run])), ms(p99s[1][run]), ms(maxs[1][run]), over(lats[1][run], 50*time.Millisecond), len(lats[1][run]),
			float64(p99s[1][run])/float64(p99s[0][run]),
			over(lats[0][run], 100*time.Millisecond), over(lats[1][run], 100*time.Millisecond),
			ms(perTenThousand(lats[0][run], 9999)), ms(perTenThousand(lats[1][run], 9999)))
	}
	b.ReportMetric(float64(median(p99s[1]))/float64(median(p99s[0])), "p99-with/without")
	b.ReportMetric(ms(slices.Max(maxs[1])), "worst-ms-with")
	b.ReportMetric(ms(slices.Max(maxs[0])), "worst-ms-without")
	ltx, _ := reps.Bytes(ctx, id)
	b.Logf("STORAGE: %d KiB of WAL written while replicated, %d KiB of LTX stored for it (all levels): %.3f bytes of LTX per WAL byte, %.0f MiB per GiB",
		int64(walBytes)/1024, (ltx-base)/1024, float64(ltx-base)/walBytes, float64(ltx-base)/walBytes*1024)
	b.ReportMetric(float64(ltx-base)/walBytes, "ltx-bytes/wal-byte")
	b.Logf("LOCAL: %d KiB of LTX files in Litestream's own directory next to the database, %d KiB in the blobs",
		dirBytes(litestream.NewDB(path).MetaPath())/1024, ltx/1024)

	// 1% of the rows changed, then a time to restore to, then more.
	if _, err := w.Exec(`UPDATE orders SET amount = amount + 1 WHERE id % 100 = 7`); err != nil {
		b.Fatal(err)
	}
	if err := reps.Sync(ctx, id); err != nil {
		b.Fatal(err)
	}
	at := time.Now()
	write(time.Second)
	if err := reps.Sync(ctx, id); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("SNAPDECK_BENCH_PITR_RESTORES") == "0" {
		return
	}
	planStart := time.Now()
	plan, err := litestream.CalcRestorePlan(ctx, pitr.NewClient(blobs, id, nil), 0, at.Add(time.Millisecond), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	var planBytes int64
	levels := map[int]int{}
	for _, info := range plan {
		planBytes += info.Size
		levels[info.Level]++
	}
	b.Logf("RESTORE plan: %d files by level %v, %d KiB, planned in %.3fs", len(plan), levels, planBytes/1024, time.Since(planStart).Seconds())
	var restores, cps, checks []time.Duration
	for run := range 3 {
		out := filepath.Join(dir, fmt.Sprintf("restored-%d.sqlite", run))
		settle(b)
		t := time.Now()
		if err := reps.RestoreTo(ctx, id, at, out); err != nil {
			b.Fatal(err)
		}
		restores = append(restores, time.Since(t))
		// What Litestream's restore added and this one leaves out.
		t = time.Now()
		quickCheck(b, out)
		checks = append(checks, time.Since(t))
		snapdeck.RemoveDatabaseFiles(out)
		settle(b)
		t = time.Now()
		if err := exec.Command("sh", "-c", fmt.Sprintf("cp %s %s.copy && sync", path, path)).Run(); err != nil {
			b.Fatal(err)
		}
		cps = append(cps, time.Since(t))
		os.Remove(path + ".copy")
		b.Logf("RESTORE run %d: restore to a time %.2fs, cp+sync %.2fs: %.2fx; a quick_check of the result would add %.2fs", run+1,
			restores[run].Seconds(), cps[run].Seconds(), restores[run].Seconds()/cps[run].Seconds(), checks[run].Seconds())
	}
	b.ReportMetric(median(restores).Seconds()/median(cps).Seconds(), "restore/cp")
}

// openWriterBusy is openWriter with the busy timeout given in ms.
func openWriterBusy(b testing.TB, path string, busyMS int) *sql.DB {
	q := url.Values{}
	for _, p := range []string{fmt.Sprintf("busy_timeout(%d)", busyMS), "journal_mode(WAL)", "synchronous(NORMAL)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// fsyncProbe overwrites one 4 KiB block of its own file and fdatasyncs it
// at a fixed interval: what a lone small durable write costs on this disk
// at that moment, beside the writer's commits.
type fsyncProbe struct {
	done chan struct{}
	quit chan struct{}
	// spans are each fdatasync's start and end.
	spans [][2]time.Time
}

func startFsyncProbe(b *testing.B, path string, every time.Duration) *fsyncProbe {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 4096)
	// Allocated and durable first: each probe is an overwrite, which
	// fdatasync makes durable without a journal commit.
	if _, err := f.WriteAt(block, 0); err != nil {
		b.Fatal(err)
	}
	f.Sync()
	p := &fsyncProbe{done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer f.Close()
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
			block[0] = byte(i)
			start := time.Now()
			f.WriteAt(block, 0)
			syncData(f)
			p.spans = append(p.spans, [2]time.Time{start, time.Now()})
		}
	}()
	return p
}

// stop ends the probe and sums it up, with how many of the writer's slow
// commits (slow: their spans) overlapped a probe sync of 20 ms or more.
func (p *fsyncProbe) stop(slow [][2]time.Time) string {
	close(p.quit)
	<-p.done
	var d []time.Duration
	var long [][2]time.Time
	for _, s := range p.spans {
		d = append(d, s[1].Sub(s[0]))
		if s[1].Sub(s[0]) >= 20*time.Millisecond {
			long = append(long, s)
		}
	}
	if len(d) == 0 {
		return "probe: no syncs"
	}
	both := 0
	for _, c := range slow {
		for _, s := range long {
			if s[0].Before(c[1]) && c[0].Before(s[1]) {
				both++
				break
			}
		}
	}
	return fmt.Sprintf("probe: %d fdatasyncs of 4 KiB, p50 %.2fms p99 %.1fms p99.9 %.1fms max %.1fms, %d over 20ms, %d over 50ms, %d over 100ms; %d of %d commits over 50ms overlapped a probe sync of 20ms or more",
		len(d), ms(median(d)), ms(percentile(d, 99)), ms(permille(d, 999)), ms(slices.Max(d)), over(d, 20*time.Millisecond), over(d, 50*time.Millisecond), over(d, 100*time.Millisecond), both, len(slow))
}

func permille(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/1000]
}

func perTenThousand(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/10000]
}

// runtimeSample is the Go runtime's scheduling-latency and GC-pause
// histograms at one moment.
type runtimeSample []metrics.Sample

func readRuntime() runtimeSample {
	s := runtimeSample{{Name: "/sched/latencies:seconds"}, {Name: "/gc/pauses:seconds"}}
	metrics.Read(s)
	return s
}

// since sums up each histogram's samples taken after old: how many, how
// many over 1, 10 and 50 ms, and the largest bucket reached.
func (s runtimeSample) since(old runtimeSample) (sched, gc string) {
	var out [2]string
	for i := range s {
		h, o := s[i].Value.Float64Histogram(), old[i].Value.Float64Histogram()
		var n, o1, o10, o50 uint64
		top := 0.0
		for j, c := range h.Counts {
			c -= o.Counts[j]
			if c == 0 {
				continue
			}
			n += c
			lo := h.Buckets[j]
			if lo >= 0.001 {
				o1 += c
			}
			if lo >= 0.010 {
				o10 += c
			}
			if lo >= 0.050 {
				o50 += c
			}
			top = max(top, lo)
		}
		out[i] = fmt.Sprintf("%d, %d from 1ms, %d from 10ms, %d from 50ms, largest from %.1fms", n, o1, o10, o50, top*1000)
	}
	return out[0], out[1]
}

// fill writes rows of about 200 bytes into orders until the file has size
// bytes, then empties the WAL into it.
func fill(b *testing.B, db *sql.DB, size int64) {
	if _, err := db.Exec(`CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, email TEXT, amount REAL, status TEXT, created_at TEXT, note TEXT)`); err != nil {
		b.Fatal(err)
	}
	for {
		var pages, pageSize int64
		db.QueryRow(`PRAGMA page_count`).Scan(&pages)
		db.QueryRow(`PRAGMA page_size`).Scan(&pageSize)
		if pages*pageSize >= size {
			break
		}
		if _, err := db.Exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 50000)
			INSERT INTO orders(customer, email, amount, status, created_at, note)
			SELECT 'customer ' || i, 'x@example.com', i * 1.5, 'paid', '2026-01-01T00:00:00Z', hex(randomblob(60)) FROM s`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
	}
}

// totalWALBytes is what Litestream read from the WAL of path since it
// opened it (its litestream_total_wal_bytes counter).
func totalWALBytes(b *testing.B, path string) float64 {
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

// settle writes back what the page cache holds, so that one phase's
// writeback is not what the next waits for.
func settle(b *testing.B) {
	if err := exec.Command("sync").Run(); err != nil {
		b.Fatal(err)
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// over counts the durations longer than limit.
func over(d []time.Duration, limit time.Duration) int {
	n := 0
	for _, x := range d {
		if x > limit {
			n++
		}
	}
	return n
}

func median(d []time.Duration) time.Duration { return percentile(d, 50) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quickCheck runs PRAGMA quick_check on the file at path.
func quickCheck(b *testing.B, path string) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRow(`PRAGMA quick_check`).Scan(&ok); err != nil || ok != "ok" {
		b.Fatalf("quick_check of the restored file: %q, %v", ok, err)
	}
}

// onlyMessage passes on the records of one message only.
type onlyMessage struct {
	slog.Handler
	msg string
}

func (h onlyMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h onlyMessage) WithAttrs(attrs []slog.Attr) slog.Handler {
	return onlyMessage{h.Handler.WithAttrs(attrs), h.msg}
}

func (h onlyMessage) WithGroup(name string) slog.Handler {
	return onlyMessage{h.Handler.WithGroup(name), h.msg}
}

// dirBytes is how many bytes the files under dir take.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// envDuration is the duration in the environment variable name, or def
// when it is not set.
func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return d
}
