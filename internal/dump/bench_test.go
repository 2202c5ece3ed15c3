package dump

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/cputime"
)

// BenchmarkWrite measures Write on a realistic database next to
// `zstd -1 -T2` on the same file, interleaved in each iteration so that both
// see the same machine load (other work on a shared machine moves the
// figures a lot; their ratio moves much less). The database defaults to
// 64 MiB; set SNAPDECK_BENCH_SIZE (e.g. 1GiB) for the documented figures:
//
//	SNAPDECK_BENCH_SIZE=1GiB go test ./internal/dump -run '^$' -bench BenchmarkWrite -benchtime 3x -count 3
//
// Reported: snapdeck-MB/s and zstd-MB/s (database bytes per second),
// speed-% (snapdeck's speed as a percentage of zstd's), the CPU time (user
// and system) each spends per GiB of database, which depends much less on
// the machine's load than speed does, and the compression ratios. The
// database is built once per size and kept in the system's temporary
// directory, since building 1 GiB of rows takes minutes. Both sides read it
// from the page cache and discard their output.
func BenchmarkWrite(b *testing.B) {
	size := 64 * bytesize.MiB
	if s := os.Getenv("SNAPDECK_BENCH_SIZE"); s != "" {
		var err error
		if size, err = bytesize.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
	path := benchDB(b, size)
	m := manifestFor(b, path)
	zstdBin, err := exec.LookPath("zstd")
	if err != nil {
		b.Skipf("zstd is not installed: %v", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()

	var ours, theirs, ourCPU, theirCPU time.Duration
	var ourOut countWriter
	b.ResetTimer()
	for range b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		ourOut.n = 0
		start, cpu := time.Now(), cputime.Process()
		if err := Write(context.Background(), &ourOut, m, f); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		ourCPU += cputime.Process() - cpu
		f.Close()

		cmd := exec.Command(zstdBin, "-1", "-T2", "-q", "-c", path)
		cmd.Stdout = devnull
		start = time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		theirs += time.Since(start)
		theirCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	b.StopTimer()
	// zstd's compressed size, measured once outside the timing.
	var theirOut countWriter
	cmd := exec.Command(zstdBin, "-1", "-T2", "-q", "-c", path)
	cmd.Stdout = &theirOut
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	mbps := func(d time.Duration) float64 { return float64(m.Size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(ours), "snapdeck-MB/s")
	b.ReportMetric(mbps(theirs), "zstd-MB/s")
	b.ReportMetric(100*theirs.Seconds()/ours.Seconds(), "speed-%")
	gib := float64(m.Size) * float64(b.N) / (1 << 30)
	b.ReportMetric(ourCPU.Seconds()/gib, "snapdeck-cpu-s/GiB")
	b.ReportMetric(theirCPU.Seconds()/gib, "zstd-cpu-s/GiB")
	b.ReportMetric(float64(m.Size)/float64(ourOut.n), "snapdeck-ratio")
	b.ReportMetric(float64(m.Size)/float64(theirOut.n), "zstd-ratio")
}

// countWriter counts and discards what is written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// benchDB returns a database of orders of at least size bytes, building it
// the first time.
func benchDB(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), "snapdeck-bench-"+bytesize.Format(size)+".sqlite")
	if st, err := os.Stat(path); err == nil && st.Size() >= size {
		return path
	}
	tmp := path + ".building"
	os.Remove(tmp)
	db, err := sql.Open("sqlite", tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL,
		email TEXT, amount_cents INTEGER, status TEXT, note TEXT, created INTEGER);
		CREATE INDEX orders_customer ON orders(customer)`); err != nil {
		b.Fatal(err)
	}
	const batch = 100000
	for rows := 0; ; rows += batch {
		var pages, pageSize int64
		if err := db.QueryRow("SELECT page_count, page_size FROM pragma_page_count, pragma_page_size").Scan(&pages, &pageSize); err != nil {
			b.Fatal(err)
		}
		if pages*pageSize >= size {
			break
		}
		if err := fillOrders(db, rows, batch); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE"); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}
