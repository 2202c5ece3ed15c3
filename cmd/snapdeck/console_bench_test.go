package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/cputime"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// benchSize is the size of the database a console benchmark fills:
// SNAPDECK_BENCH_SIZE, 64MiB unless set, so that a plain -bench run is
// short.
func benchSize(b *testing.B) int64 {
	s := os.Getenv("SNAPDECK_BENCH_SIZE")
	if s == "" {
		return 64 << 20
	}
	n, err := bytesize.Parse(s)
	if err != nil {
		b.Fatalf("SNAPDECK_BENCH_SIZE: %v", err)
	}
	return n
}

// BenchmarkConsole measures what a user waits for, through the real
// program over HTTP (issue 14): a professional database filled through the
// Query tab with `INSERT ... SELECT randomblob(4000)` in batches of 16,384
// rows, then snapshots, a restore, an export and a create-from-snapshot,
// each from the request until its result is there. Every figure is also
// given as a ratio to `cp`+`sync` of the database file, or to
// `zstd -1 -T2` of it for the export, measured in the same run.
//
//	SNAPDECK_BENCH_SIZE=1GiB SNAPDECK_BENCH_DIR=/var/tmp go test ./cmd/snapdeck \
//	    -run '^$' -bench '^BenchmarkConsole$' -benchtime 1x -timeout 60m
//
// SNAPDECK_BENCH_SIZE defaults to 64MiB so that a plain -bench run is short.
//
// With SNAPDECK_BENCH_S3=1 the snapshot store is on a real SeaweedFS (weed
// mini, started as the S3 tests start it; issue 17): --snapshot-store
// s3://BUCKET/console, and minio-go's upload (16 MiB parts) and downloads
// of the database file (into a file, the same with an fsync, into memory:
// downloads) are the references of the capture, the restore and the
// export, measured in the same run; each restore is given to the database
// running again (the swap) and to its job's end (the safety snapshot
// taken), with the GETs the process made. A last restore runs on a new
// node: the console restarted with its snapshot cache removed.
func BenchmarkConsole(b *testing.B) {
	size := benchSize(b)
	for range b.N {
		consoleRun(b, size)
	}
}

func consoleRun(b *testing.B, size int64) {
	dir, err := os.MkdirTemp(os.Getenv("SNAPDECK_BENCH_DIR"), "snapdeck-console-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	env := map[string]string{"SNAPDECK_ADMIN_EMAIL": "bench@example.com", "SNAPDECK_ADMIN_PASSWORD": "bench-password-1234"}
	// The point-in-time settings pass through, so a run can compare the
	// default (professional databases replicated, 24h) with replication off.
	// So does the S3 store's cache size (SNAPDECK_SNAPSHOT_CACHE_SIZE): its
	// default, auto, follows the database files; a fixed 1 GiB could not
	// hold a 1 GiB database's packs, and a warm capture fetched its bases
	// again.
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SNAPDECK_PITR_") || k == "SNAPDECK_SNAPSHOT_CACHE_SIZE" {
			env[k] = v
		}
	}
	b.Logf("point-in-time professional window: %q (empty: the default, 24h)", env["SNAPDECK_PITR_PROFESSIONAL"])
	var weed *s3test.Server
	if os.Getenv("SNAPDECK_BENCH_S3") == "1" {
		weed = s3test.Start(b)
		env["SNAPDECK_SNAPSHOT_STORE"] = "s3://" + weed.Bucket + "/console"
		env["SNAPDECK_S3_ENDPOINT"] = weed.Endpoint
		env["SNAPDECK_S3_ACCESS_KEY_ID"] = weed.AccessKeyID
		env["SNAPDECK_S3_SECRET_ACCESS_KEY"] = weed.SecretAccessKey
	}
	args := []string{"--data", data}
	var log io.Writer = io.Discard
	if name := os.Getenv("SNAPDECK_BENCH_LOG"); name != "" {
		// The program's log at debug level, for the point-in-time
		// replicator's "ltx file stored" lines.
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		log = f
		args = append(args, "--log-level", "debug")
	}
	base, stop := startConsoleLogging(b, env, log, args...)
	defer func() { stop() }()

	u := browserSignIn(b, base, "bench@example.com", "bench-password-1234")
	id := u.createDatabase(b, "bench")

	// Fill through the Query tab, as users do.
	u.query(b, id, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
	const batch = 16384
	rowsWanted := size / 4096 // a row of 4,000 bytes takes about a page
	start := time.Now()
	for done := int64(0); done < rowsWanted; done += batch {
		u.query(b, id, fmt.Sprintf("WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < %d) INSERT INTO t(b) SELECT randomblob(4000) FROM s", min(batch, rowsWanted-done)))
	}
	fill := time.Since(start)
	dbPath := filepath.Join(data, "databases", id+".sqlite")
	// The console's checkpointer copies the WAL into the file in the
	// background; the references need the whole file.
	for deadline := time.Now().Add(5 * time.Minute); fileSize(dbPath) < rowsWanted*4000; {
		if time.Now().After(deadline) {
			b.Fatalf("database file %d bytes 5 minutes after the fill", fileSize(dbPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
	wal := fileSize(dbPath + "-wal")
	b.Logf("filled %s through the Query tab in %s, checkpointed after %s: file %d bytes, WAL %d bytes",
		id, fill.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), fileSize(dbPath), wal)

	// References, on the same file in the same run.
	cpSync := timeCommand(b, "sh", "-c", fmt.Sprintf("cp %s %s && sync", dbPath, filepath.Join(dir, "copy.sqlite")))
	os.Remove(filepath.Join(dir, "copy.sqlite"))
	zstdT := time.Duration(0)
	if _, err := exec.LookPath("zstd"); err == nil {
		zstdT = timeCommand(b, "zstd", "-q", "-1", "-T2", "-f", dbPath, "-o", filepath.Join(dir, "ref.zst"))
		os.Remove(filepath.Join(dir, "ref.zst"))
	}
	b.Logf("references: cp+sync %s, zstd -1 -T2 %s", cpSync.Round(time.Millisecond), zstdT.Round(time.Millisecond))
	report := func(name string, d time.Duration, ref time.Duration) {
		ratio := d.Seconds() / ref.Seconds()
		b.Logf("%-28s %8s  %.2f ×  (process wrote %d MiB to disk so far)", name, d.Round(time.Millisecond), ratio, diskWritten()>>20)
		b.ReportMetric(d.Seconds(), name+"-s")
		b.ReportMetric(ratio, name+"-x")
	}
	var s3Up time.Duration
	var s3Down downloads
	s3Report := func(name string, d time.Duration, ref time.Duration, refName string) {
		if weed != nil {
			b.Logf("%-28s %8s  %.2f × minio-go's %s", name, d.Round(time.Millisecond), d.Seconds()/ref.Seconds(), refName)
			b.ReportMetric(d.Seconds()/ref.Seconds(), name+"-x-"+refName)
		}
	}
	if weed != nil {
		timeCommand(b, "sync")
		s3Up, s3Down = minioReferences(b, weed, dbPath, filepath.Join(dir, "downloaded"))
		b.Logf("references on S3: minio-go upload (16 MiB parts) %s; download (FGetObject) %s, with fsync %s, into memory %s",
			s3Up.Round(time.Millisecond), s3Down.toFile.Round(time.Millisecond), s3Down.durable.Round(time.Millisecond), s3Down.toMemory.Round(time.Millisecond))
	}
	// A restore is compared with each of the downloads.
	restoreReport := func(name string, d time.Duration) {
		s3Report(name, d, s3Down.toFile, "download")
		s3Report(name, d, s3Down.durable, "download-fsync")
		s3Report(name, d, s3Down.toMemory, "download-memory")
	}
	// GETs of the S3 store (every s3blobs.S3 of this process: the
	// console runs in it) during a step.
	gets := func(name string, before s3blobs.Requests) {
		if weed != nil {
			r := s3blobs.ProcessRequests().Sub(before)
			b.Logf("%-28s %d GET, %d PUT, %d LIST, %d HEAD", name, r.Get, r.Put, r.List, r.Stat)
			b.ReportMetric(float64(r.Get), name+"-GETs")
		}
	}

	b.Logf("WAL before the first snapshot: %d bytes", fileSize(dbPath+"-wal"))
	// Each step starts on a quiet console: the snapshots before it are
	// verified (which rebuilds each image in the background) and no job
	// runs, as in the measurements.
	stopProfile := profileStep(b, "capture-after-fill")
	first, d := u.snapshot(b, id)
	stopProfile()
	b.Logf("WAL after it: %d bytes", fileSize(dbPath+"-wal"))
	report("capture-after-fill", d, cpSync)
	s3Report("capture-after-fill", d, s3Up, "upload")
	u.quiet(b, id)
	_, d = u.snapshot(b, id)
	report("capture-unchanged", d, cpSync)
	u.query(b, id, "UPDATE t SET b = randomblob(4000) WHERE id % 100 = 0")
	u.quiet(b, id)
	reqs := s3blobs.ProcessRequests()
	stopProfile = profileStep(b, "capture-1pct-changed")
	_, d = u.snapshot(b, id)
	stopProfile()
	report("capture-1pct-changed", d, cpSync)
	gets("capture-1pct-changed", reqs)

	u.quiet(b, id)
	reqs = s3blobs.ProcessRequests()
	stopProfile = profileStep(b, "restore-with-safety")
	start = time.Now()
	job := u.post(b, "/databases/"+id+"/snapshots/"+first+"/restore", url.Values{"confirm": {"RESTORE"}}, "/databases/"+id+"/snapshots/"+first+"/restore")
	jid := attr(job, "data-job-id")
	u.waitRunning(b, id)
	report("restore-to-running", time.Since(start), cpSync)
	restoreReport("restore-to-running", time.Since(start))
	gets("restore-to-running", reqs)
	u.waitFor(b, "/jobs/"+jid, "data-job-status", "succeeded")
	stopProfile()
	report("restore-with-safety", time.Since(start), cpSync)
	restoreReport("restore-with-safety", time.Since(start))
	gets("restore-with-safety", reqs)

	u.quiet(b, id)
	start = time.Now()
	out := filepath.Join(dir, "export.dump")
	stopProfile = profileStep(b, "export")
	headers := u.download(b, "/databases/"+id+"/snapshots/"+first+"/export", out)
	export := time.Since(start)
	stopProfile()
	b.Logf("export: the reply began after %s (preparation), the download took %s more", headers.Sub(start).Round(time.Millisecond), time.Since(headers).Round(time.Millisecond))
	os.Remove(out)
	b.ReportMetric(export.Seconds(), "export-s")
	if zstdT > 0 {
		b.Logf("%-28s %8s  %.0f%% of zstd -1 -T2's speed", "export", export.Round(time.Millisecond), 100*zstdT.Seconds()/export.Seconds())
		b.ReportMetric(100*zstdT.Seconds()/export.Seconds(), "export-pct-of-zstd")
	}
	s3Report("export", export, s3Down.toFile, "download")

	u.quiet(b, id)
	stopProfile = profileStep(b, "create-from-snapshot")
	start = time.Now()
	job = u.post(b, "/databases/"+id+"/snapshots/"+first+"/create-database", url.Values{"name": {"bench-copy"}, "plan": {"professional"}},
		"/databases/"+id+"/snapshots/"+first+"/create-database")
	u.waitFor(b, "/jobs/"+attr(job, "data-job-id"), "data-job-status", "succeeded")
	stopProfile()
	report("create-from-snapshot", time.Since(start), cpSync)
	// The new database's first snapshot ("Database created") runs after
	// the job, in the background: how long until it, and every other
	// job, ended.
	u.allQuiet(b)
	b.Logf("%-28s %8s", "create-from-all-quiet", time.Since(start).Round(time.Millisecond))
	if weed == nil {
		return
	}

	// The copy goes first: the restarted console would catch up its
	// missed scheduled snapshot, whose reads of its bases (the same packs)
	// fill the cache the restore below is to find cold.
	u.quiet(b, id)
	for _, m := range databaseRow.FindAllStringSubmatch(u.get(b, "/databases"), -1) {
		if m[1] != id {
			u.quiet(b, m[1])
			u.post(b, "/databases/"+m[1]+"/delete", url.Values{"confirm_name": {"bench-copy"}}, "/databases/"+m[1]+"/settings")
		}
	}

	// A new node: the console restarted without its snapshot cache, so
	// the restore reads every block from the server.
	if err := stop(); err != nil {
		b.Fatalf("stop the console: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(data, "cache", "snapstore")); err != nil {
		b.Fatal(err)
	}
	reqs = s3blobs.ProcessRequests()
	start = time.Now()
	base, stop = startConsoleLogging(b, env, log, args...)
	b.Logf("%-28s %8s", "new-node-start", time.Since(start).Round(time.Millisecond))
	gets("new-node-start", reqs)
	u = browserSignIn(b, base, "bench@example.com", "bench-password-1234")
	u.waitRunning(b, id)
	// Not quiet(id) alone: a scheduled snapshot the new node catches up
	// (of the database created from the snapshot, before it was deleted
	// above: 2.9 s hashing 256 MiB) ran during the restore.
	u.allQuiet(b)
	b.Logf("%-28s %8s", "new-node-quiet", time.Since(start).Round(time.Millisecond))
	stopProfile = profileStep(b, "restore-cold-cache")
	reqs = s3blobs.ProcessRequests()
	start = time.Now()
	job = u.post(b, "/databases/"+id+"/snapshots/"+first+"/restore", url.Values{"confirm": {"RESTORE"}}, "/databases/"+id+"/snapshots/"+first+"/restore")
	jid = attr(job, "data-job-id")
	u.waitRunning(b, id)
	report("restore-cold-to-running", time.Since(start), cpSync)
	restoreReport("restore-cold-to-running", time.Since(start))
	gets("restore-cold-to-running", reqs)
	u.waitFor(b, "/jobs/"+jid, "data-job-status", "succeeded")
	stopProfile()
	report("restore-cold-cache", time.Since(start), cpSync)
	restoreReport("restore-cold-cache", time.Since(start))
	gets("restore-cold-cache", reqs)
	if packs, _ := filepath.Glob(filepath.Join(data, "snapshots", "*", "*")); len(packs) > 0 {
		b.Errorf("data/snapshots holds %d files with the store on S3: %v", len(packs), packs[:min(3, len(packs))])
	}
}

// downloads are minio-go's downloads of the database file, the references
// of a restore (issue 17: "the time minio-go takes to download it"):
// toFile is FGetObject into a file on the filesystem the console's data is
// on, minio-go's own download (it writes a .part.minio file and renames
// it, without an fsync); durable is the same followed by an fsync of the
// file and its directory, which a restore also does before it swaps the
// file in; toMemory reads the object into io.Discard.
type downloads struct {
	toFile, durable, toMemory time.Duration
}

// minioReferences uploads the file with minio-go in 16 MiB parts, and
// downloads it three ways (downloads), timing each: what moving the
// database itself to and from the server costs.
func minioReferences(b *testing.B, weed *s3test.Server, path, out string) (up time.Duration, down downloads) {
	b.Helper()
	ctx := context.Background()
	client, err := minio.New(strings.TrimPrefix(weed.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(weed.AccessKeyID, weed.SecretAccessKey, ""), BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		b.Fatal(err)
	}
	const key = "plain/db.sqlite"
	start := time.Now()
	if _, err := client.FPutObject(ctx, weed.Bucket, key, path, minio.PutObjectOptions{PartSize: 16 << 20}); err != nil {
		b.Fatal(err)
	}
	up = time.Since(start)
	fget := func(sync bool) time.Duration {
		start := time.Now()
		if err := client.FGetObject(ctx, weed.Bucket, key, out, minio.GetObjectOptions{}); err != nil {
			b.Fatal(err)
		}
		if sync {
			if err := durable.Sync(out); err != nil {
				b.Fatal(err)
			}
			if err := durable.SyncDir(filepath.Dir(out)); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(start)
		if err := os.Remove(out); err != nil {
			b.Fatal(err)
		}
		return d
	}
	down.toFile = fget(false)
	// Written back before the next download, so that it does not pay
	// for the previous one's dirty pages.
	timeCommand(b, "sync")
	down.durable = fget(true)
	start = time.Now()
	obj, err := client.GetObject(ctx, weed.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, obj)
	obj.Close()
	if err != nil {
		b.Fatal(err)
	}
	down.toMemory = time.Since(start)
	if n != fileSize(path) {
		b.Fatalf("downloaded %d bytes into memory, want %d", n, fileSize(path))
	}
	return up, down
}

// profileStep writes a CPU profile of one step, of the console and the
// client together (they share this process), to
// $SNAPDECK_BENCH_PROFILE/<step>.pprof when that is set, and reports the
// CPU-seconds the process used in the step; the returned func ends it.
// With $SNAPDECK_BENCH_TRACE=1 it also writes an execution trace of the
// step, <step>.trace, for where the step waits (go tool trace).
func profileStep(b *testing.B, step string) func() {
	b.Helper()
	cpu0 := cputime.Process()
	var f, tf *os.File
	if dir := os.Getenv("SNAPDECK_BENCH_PROFILE"); dir != "" {
		var err error
		if f, err = os.Create(filepath.Join(dir, step+".pprof")); err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		if os.Getenv("SNAPDECK_BENCH_TRACE") == "1" {
			if tf, err = os.Create(filepath.Join(dir, step+".trace")); err != nil {
				b.Fatal(err)
			}
			if err := trace.Start(tf); err != nil {
				b.Fatal(err)
			}
		}
	}
	return func() {
		if tf != nil {
			trace.Stop()
			tf.Close()
		}
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		cpu := cputime.Process() - cpu0
		b.Logf("%-28s %8s CPU (console and client)", step, cpu.Round(time.Millisecond))
		b.ReportMetric(cpu.Seconds(), step+"-cpu-s")
	}
}

// diskWritten is how many bytes this process (the console and the client)
// has written to disk so far, less those of files removed before they
// reached it: /proc/self/io, 0 where there is none.
func diskWritten() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	var n int64
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		x, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "write_bytes":
			n += x
		case "cancelled_write_bytes":
			n -= x
		}
	}
	return n
}

func timeCommand(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return time.Since(start)
}

// consoleUser is a signed-in browser: a cookie jar and the console's URL.
type consoleUser struct {
	base string
	c    *http.Client
}

var pageCSRF = regexp.MustCompile(`name="_csrf"[^>]*value="([^"]+)"`)

func browserSignIn(b *testing.B, base, email, password string) *consoleUser {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	u := &consoleUser{base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Minute}}
	u.post(b, "/login", url.Values{"email": {email}, "password": {password}}, "/login")
	return u
}

// post submits a form the way a browser does, with the CSRF token of the
// page at from, and returns the final page.
func (u *consoleUser) post(b *testing.B, path string, form url.Values, from string) string {
	b.Helper()
	res, err := u.c.Get(u.base + from)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := pageCSRF.FindSubmatch(page)
	if m == nil {
		b.Fatalf("no _csrf field on %s", from)
	}
	form.Set("_csrf", string(m[1]))
	res, err = u.c.PostForm(u.base+path, form)
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

// query runs SQL on the Query tab and returns the result page.
func (u *consoleUser) query(b *testing.B, id, sql string) string {
	b.Helper()
	page := u.post(b, "/databases/"+id+"/query", url.Values{"sql": {sql}}, "/databases/"+id+"/query")
	if strings.Contains(page, "SQLite says") || strings.Contains(page, "not allowed") {
		b.Fatalf("query %q failed on the Query tab", sql)
	}
	return page
}

// get fetches a console page.
func (u *consoleUser) get(b *testing.B, path string) string {
	b.Helper()
	res, err := u.c.Get(u.base + path)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d\n%s", path, res.StatusCode, page)
	}
	return string(page)
}

// attr returns the value of the first attribute name on the page.
func attr(page, name string) string {
	m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// waitFor polls a page until its first attribute name has the value want.
func (u *consoleUser) waitFor(b *testing.B, path, name, want string) {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		switch got := attr(u.get(b, path), name); got {
		case want:
			return
		case "failed":
			b.Fatalf("%s: %s is failed", path, name)
		}
	}
	b.Fatalf("%s: %s never became %s", path, name, want)
}

// createDatabase creates a professional database on the form and returns
// its id.
func (u *consoleUser) createDatabase(b *testing.B, name string) string {
	b.Helper()
	page := u.post(b, "/databases", url.Values{"name": {name}, "plan": {"professional"}}, "/databases/new")
	id := attr(page, "data-database-id")
	if id == "" {
		b.Fatal("no database on the page after creating one")
	}
	return id
}

var databaseRow = regexp.MustCompile(`<tr[^>]*data-database-id="([^"]+)"[^>]*>`)

// waitRunning polls the database list, which is cheaper than the database's
// own page (that counts every table's rows), until id is running.
func (u *consoleUser) waitRunning(b *testing.B, id string) {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, m := range databaseRow.FindAllStringSubmatch(u.get(b, "/databases"), -1) {
			if m[1] == id && attr(m[0], "data-database-status") == "running" {
				return
			}
		}
	}
	b.Fatalf("database %s never became running", id)
}

var snapshotRow = regexp.MustCompile(`<tr[^>]*data-snapshot-id="([^"]+)"[^>]*>`)

// snapshot clicks Take snapshot and returns the new snapshot's id and the
// time from the click until the list shows it completed.
func (u *consoleUser) snapshot(b *testing.B, id string) (string, time.Duration) {
	b.Helper()
	path := "/databases/" + id + "/snapshots"
	seen := map[string]bool{}
	for _, m := range snapshotRow.FindAllStringSubmatch(u.get(b, path), -1) {
		seen[m[1]] = true
	}
	start := time.Now()
	page := u.post(b, path, url.Values{}, path)
	for {
		for _, m := range snapshotRow.FindAllStringSubmatch(page, -1) {
			if seen[m[1]] {
				continue
			}
			switch attr(m[0], "data-snapshot-status") {
			case "completed":
				return m[1], time.Since(start)
			case "failed":
				b.Fatalf("snapshot %s failed", m[1])
			}
		}
		time.Sleep(5 * time.Millisecond)
		page = u.get(b, path)
	}
}

// quiet waits until the database's SNAPSHOTS tab shows no job in progress,
// no snapshot being taken and none waiting for verification.
func (u *consoleUser) quiet(b *testing.B, id string) {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page := u.get(b, "/databases/"+id+"/snapshots")
		if !strings.Contains(page, "data-jobs") && !strings.Contains(page, `data-verified="pending"`) &&
			!strings.Contains(page, `data-snapshot-status="in-progress"`) && !strings.Contains(page, `data-snapshot-status="pending"`) {
			return
		}
	}
	b.Fatalf("database %s never became quiet", id)
}

// allQuiet waits until every database is quiet: a restarted console
// catches up the scheduled snapshots it missed, of every database.
func (u *consoleUser) allQuiet(b *testing.B) {
	b.Helper()
	for _, m := range databaseRow.FindAllStringSubmatch(u.get(b, "/databases"), -1) {
		u.quiet(b, m[1])
	}
}

// download saves a file the console serves and returns when its reply
// began.
func (u *consoleUser) download(b *testing.B, path, out string) time.Time {
	b.Helper()
	res, err := u.c.Get(u.base + path)
	if err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(res.Body)
		b.Fatalf("GET %s: %d\n%s", path, res.StatusCode, raw)
	}
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// In 128 KiB writes, as zstd itself writes its output (ZSTD_CStreamOutSize):
	// io.Copy's 32 KiB writes cost this machine more system time than the
	// reference's, on the client's side of the comparison.
	if _, err := io.CopyBuffer(f, struct{ io.Reader }{res.Body}, make([]byte, 128<<10)); err != nil {
		b.Fatal(err)
	}
	return began
}

// fileSize is a file's size, or 0 when it is missing.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
