package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// BenchmarkSnapshotEngine measures the snapshot engine against cp+sync of
// the same file in the same run (the disk here varies 2-3x between runs,
// so only ratios are comparable), 3 runs each, medians, which it reports
// as metrics (ratios to cp+sync, percentages of the database). It runs its
// three runs once, whatever -benchtime says. SNAPDECK_BENCH_SIZE sets the
// database size (default 64MiB; docs/benchmarks.md uses 1GiB) and
// SNAPDECK_BENCH_DIR keeps the generated database between invocations.
// SNAPDECK_BENCH_NOBASE=1 takes every capture without a base, as before
// deltas, for comparison; SNAPDECK_BENCH_SKIP_WRITER=1 leaves out the
// writer-latency and memory parts.
//
//	SNAPDECK_BENCH_SIZE=1GiB SNAPDECK_BENCH_DIR=/tmp/sdbench go test -run '^$' -bench SnapshotEngine -benchtime 1x -timeout 60m ./internal/snapshot/
func BenchmarkSnapshotEngine(b *testing.B) {
	t := b
	ctx := context.Background()
	dir, path := benchDB(t)
	fi, _ := os.Stat(path)
	t.Logf("database %s: %d bytes", path, fi.Size())

	noBase := os.Getenv("SNAPDECK_BENCH_NOBASE") != ""
	capture := func(db string, st *snapstore.Store, base Image) (Image, error) {
		if noBase {
			base.Root = ""
		}
		return CaptureWithBase(ctx, db, st, base.Root, nil)
	}
	var cpSync, first, second, restore, secondPct, rows, rowsPct, restoreSecs []float64
	for run := range 3 {
		os.RemoveAll(filepath.Join(dir, "work"))
		work := filepath.Join(dir, "work")
		os.MkdirAll(work, 0o755)
		db := path + ".run"
		copyFile(t, path, db) // each run changes its own copy

		settle(t)
		start := time.Now()
		cp := exec.Command("sh", "-c", `cp "$1" "$2" && sync "$2"`, "sh", db, filepath.Join(work, "copy"))
		if out, err := cp.CombinedOutput(); err != nil {
			t.Fatalf("cp+sync: %v %s", err, out)
		}
		base := time.Since(start).Seconds()
		cpSys := childSysTime(cp)
		os.Remove(filepath.Join(work, "copy"))

		st, err := snapstore.Open(ctx, filepath.Join(work, "snapshots"), nil)
		if err != nil {
			t.Fatal(err)
		}
		settle(t)
		start, sys0 := time.Now(), sysTime()
		img1, err := Capture(ctx, db, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		c1 := time.Since(start).Seconds()
		c1Sys := sysTime() - sys0

		changePages(t, db, img1.Pages/100, uint64(run))
		settle(t)
		start = time.Now()
		img2, err := capture(db, st, img1)
		if err != nil {
			t.Fatal(err)
		}
		c2 := time.Since(start).Seconds()

		// 1% of the rows, scattered: every 100th row, about a quarter of
		// the pages.
		updateEvery100thRow(t, db, run)
		settle(t)
		start = time.Now()
		img3, err := capture(db, st, img2)
		if err != nil {
			t.Fatal(err)
		}
		c3 := time.Since(start).Seconds()

		target := filepath.Join(work, "target.sqlite")
		copyFile(t, path, target)
		settle(t)
		start, sys0 = time.Now(), sysTime()
		// The last image: with deltas it has the longest chains.
		if err := Materialize(ctx, st, img3, target+".restore", ForRestore, nil); err != nil {
			t.Fatal(err)
		}
		if err := Install(target+".restore", target); err != nil {
			t.Fatal(err)
		}
		r := time.Since(start).Seconds()
		rSys := sysTime() - sys0
		st.Close(ctx)

		t.Logf("run %d: cp+sync %.2fs (system CPU %.2fs), first capture %.2fs (%.2fx, system CPU %.2fs), after 1%% change %.2fs (%.2fx, stored %d bytes = %.2f%%), "+
			"after every 100th row %.2fs (%.2fx, stored %d bytes = %.2f%%), restore %.2fs (%.2fx, system CPU %.2fs)",
			run+1, base, cpSys.Seconds(), c1, c1/base, c1Sys.Seconds(), c2, c2/base, img2.NewBytes, 100*float64(img2.NewBytes)/float64(img2.Size),
			c3, c3/base, img3.NewBytes, 100*float64(img3.NewBytes)/float64(img3.Size), r, r/base, rSys.Seconds())
		cpSync = append(cpSync, base)
		first = append(first, c1/base)
		second = append(second, c2/base)
		secondPct = append(secondPct, 100*float64(img2.NewBytes)/float64(img2.Size))
		restore = append(restore, r/base)
		restoreSecs = append(restoreSecs, r)
		rows = append(rows, c3/base)
		rowsPct = append(rowsPct, 100*float64(img3.NewBytes)/float64(img3.Size))
		os.Remove(db)
		snapdeck.RemoveDatabaseFiles(db)
	}
	t.Logf("MEDIANS cp+sync %.2fs; first capture %.2fx; capture after 1%% change %.2fx storing %.2f%% of the database; "+
		"after every 100th row %.2fx storing %.2f%%; restore %.2fx (%.2fs)",
		median(cpSync), median(first), median(second), median(secondPct), median(rows), median(rowsPct), median(restore), median(restoreSecs))
	b.ReportMetric(median(cpSync), "cp+sync-s")
	b.ReportMetric(median(first), "first-capture/cp")
	b.ReportMetric(median(second), "capture-1%-pages/cp")
	b.ReportMetric(median(secondPct), "stored-1%-pages-%")
	b.ReportMetric(median(rows), "capture-1%-rows/cp")
	b.ReportMetric(median(rowsPct), "stored-1%-rows-%")
	b.ReportMetric(median(restore), "restore/cp")
	if os.Getenv("SNAPDECK_BENCH_SKIP_WRITER") != "" {
		return
	}

	benchWriterLatency(t, path)
	benchPeakMemory(t, path)
}

// BenchmarkDeltas compares, on one database, the second capture with
// the first as its base (deltas) and without (whole pages, as before
// deltas): the bytes it stores, its time, and the time to materialise it.
// Both captures go into stores that hold the same first image, and their
// order alternates between rounds, so both see the same disk and load. It
// uses the database of BenchmarkSnapshotEngine (SNAPDECK_BENCH_SIZE,
// SNAPDECK_BENCH_DIR).
//
//	SNAPDECK_BENCH_SIZE=256MiB go test -run '^$' -bench Deltas -benchtime 1x -timeout 60m ./internal/snapshot/
func BenchmarkDeltas(b *testing.B) {
	t := b
	ctx := context.Background()
	dir, path := benchDB(t)
	work := filepath.Join(dir, "deltas")
	defer os.RemoveAll(work)
	for _, sc := range []struct {
		name   string
		change func(db string, first Image, round int)
	}{
		{"every 100th row updated", func(db string, _ Image, round int) { updateEvery100thRow(t, db, round) }},
		{"1% of pages changed", func(db string, first Image, round int) { changePages(t, db, first.Pages/100, uint64(round)) }},
	} {
		// whole and delta: capture seconds, stored bytes, restore seconds.
		var whole, delta [3][]float64
		for round := range 5 {
			os.RemoveAll(work)
			os.MkdirAll(work, 0o755)
			db := filepath.Join(work, "db.sqlite")
			copyFile(t, path, db)
			stores := make([]*snapstore.Store, 2) // [0] whole pages, [1] deltas
			var first Image
			for i := range stores {
				st, err := snapstore.Open(ctx, filepath.Join(work, fmt.Sprintf("snapshots-%d", i)), nil)
				if err != nil {
					t.Fatal(err)
				}
				stores[i] = st
				if first, err = Capture(ctx, db, st, nil); err != nil {
					t.Fatal(err)
				}
			}
			sc.change(db, first, round)
			imgs := make([]Image, 2)
			secs := make([]float64, 2)
			disk := make([]int64, 2) // bytes the store grew by, pack indexes included
			restores := make([]float64, 2)
			order := []int{0, 1}
			if round%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				base := ""
				if i == 1 {
					base = first.Root
				}
				_, before, _ := stores[i].Stats(ctx)
				settle(t)
				start := time.Now()
				img, err := CaptureWithBase(ctx, db, stores[i], base, nil)
				if err != nil {
					t.Fatal(err)
				}
				secs[i], imgs[i] = time.Since(start).Seconds(), img
				_, after, _ := stores[i].Stats(ctx)
				disk[i] = after - before
			}
			for _, i := range order {
				target := filepath.Join(work, "restored.sqlite")
				settle(t)
				start := time.Now()
				if err := Materialize(ctx, stores[i], imgs[i], target, ForRestore, nil); err != nil {
					t.Fatal(err)
				}
				restores[i] = time.Since(start).Seconds()
				os.Remove(target)
			}
			for _, st := range stores {
				st.Close(ctx)
			}
			t.Logf("%s, round %d: whole pages %.3fs storing %d bytes (%d on disk), restore %.3fs; deltas %.3fs storing %d bytes (%d on disk), restore %.3fs",
				sc.name, round+1, secs[0], imgs[0].NewBytes, disk[0], restores[0], secs[1], imgs[1].NewBytes, disk[1], restores[1])
			for i, fig := range []*[3][]float64{&whole, &delta} {
				fig[0] = append(fig[0], secs[i])
				fig[1] = append(fig[1], 100*float64(imgs[i].NewBytes)/float64(imgs[i].Size))
				fig[2] = append(fig[2], restores[i])
			}
		}
		t.Logf("MEDIANS %s: whole pages: capture %.3fs, stores %.2f%%, restore %.3fs; deltas: capture %.3fs, stores %.2f%%, restore %.3fs",
			sc.name, median(whole[0]), median(whole[1]), median(whole[2]), median(delta[0]), median(delta[1]), median(delta[2]))
	}
}

// benchWriterLatency measures a writer's commit latency (autocommit,
// synchronous=NORMAL, one row per commit) while a capture runs, against
// the same writer for as long again without one.
func benchWriterLatency(t testing.TB, path string) {
	ctx := context.Background()
	db := path + ".latency"
	copyFile(t, path, db)
	defer snapdeck.RemoveDatabaseFiles(db)
	// As before every other phase: the copy's writeback must not be what
	// the writer waits for.
	settle(t)
	st, err := snapstore.Open(ctx, filepath.Join(t.TempDir(), "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	// The writer is set up as the console's write connections are
	// (internal/database): no checkpoint inside a commit, a checkpointer
	// on a connection of its own, nudged after each commit.
	// SNAPDECK_BENCH_AUTOCHECKPOINT=1 leaves checkpoints to SQLite's
	// autocheckpoint instead (every 1,000 pages, inside the commit that
	// crosses it), for comparison.
	w := openDB(t, db)
	nudge := func() {}
	var mode string
	if os.Getenv("SNAPDECK_BENCH_AUTOCHECKPOINT") != "" {
		if _, err := w.Exec(`PRAGMA wal_autocheckpoint(1000)`); err != nil {
			t.Fatal(err)
		}
		mode = "SQLite's autocheckpoint"
	} else {
		ckDB := openDB(t, db) // wal_autocheckpoint(0), as w
		ck := checkpoint.New(ckDB, nil)
		defer ck.Close()
		nudge = ck.Nudge
		mode = "console checkpointer"
	}
	write := func(until func() bool) []time.Duration {
		var lat []time.Duration
		for i := 0; !until(); i++ {
			start := time.Now()
			if _, err := w.Exec(`INSERT INTO orders(customer, email, amount, status, created_at, note) VALUES (?, 'x@example.com', 1.5, 'paid', '2026-01-01T00:00:00Z', 'latency probe')`, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			nudge()
		}
		return lat
	}
	for run := range 3 {
		capDone := make(chan time.Duration)
		var capErr error
		go func() {
			start := time.Now()
			_, capErr = Capture(ctx, db, st, nil)
			capDone <- time.Since(start)
		}()
		var took time.Duration
		during := write(func() bool {
			select {
			case took = <-capDone:
				return true
			default:
				return false
			}
		})
		if capErr != nil {
			t.Fatal(capErr)
		}
		deadline := time.Now().Add(took)
		without := write(func() bool { return time.Now().After(deadline) })
		pd, wd := percentile(during, 99), percentile(without, 99)
		t.Logf("LATENCY run %d (%s): capture %.2fs; writer p99 %.2fms (max %.2fms, %d commits) during capture, p99 %.2fms (max %.2fms, %d commits) without: %.2fx",
			run+1, mode, took.Seconds(), ms(pd), ms(slices.Max(during)), len(during), ms(wd), ms(slices.Max(without)), len(without), float64(pd)/float64(wd))
	}
}

// benchPeakMemory runs a capture and a restore each in a child process and
// reads the child's peak resident set (VmHWM).
func benchPeakMemory(t testing.TB, path string) {
	work := t.TempDir()
	db := filepath.Join(work, "db.sqlite")
	copyFile(t, path, db)
	// One line for both: the benchmark's log keeps only its first lines.
	var peaks []string
	for _, op := range []string{"capture", "restore"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchmarkMemoryChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SNAPDECK_BENCH_MEM="+op, "SNAPDECK_BENCH_MEM_DIR="+work)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("memory child %s: %v\n%s", op, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if i := strings.Index(line, "PEAK"); i >= 0 {
				peaks = append(peaks, line[i:])
			}
		}
	}
	t.Logf("MEMORY %s", strings.Join(peaks, "; "))
}

// TestBenchmarkMemoryChild is the child of benchPeakMemory.
func TestBenchmarkMemoryChild(t *testing.T) {
	op, work := os.Getenv("SNAPDECK_BENCH_MEM"), os.Getenv("SNAPDECK_BENCH_MEM_DIR")
	if op == "" {
		t.Skip("run by BenchmarkSnapshotEngine")
	}
	ctx := context.Background()
	st, err := snapstore.Open(ctx, filepath.Join(work, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(work, "db.sqlite")
	switch op {
	case "capture":
		img, err := Capture(ctx, db, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, "root"), []byte(img.Root), 0o644)
	case "restore":
		root, err := os.ReadFile(filepath.Join(work, "root"))
		if err != nil {
			t.Fatal(err)
		}
		if err := Materialize(ctx, st, Image{Root: string(root)}, db+".restore", ForRestore, nil); err != nil {
			t.Fatal(err)
		}
		if err := Install(db+".restore", db); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("PEAK %s VmHWM %d KiB", op, vmHWM(t))
}

func vmHWM(t testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return -1
}

// buildBenchDB creates a database of realistic order rows of about size
// bytes, unless it exists, fully checkpointed.
// benchDB skips the test unless SNAPDECK_BENCH is set, and returns the
// benchmark directory and the database of SNAPDECK_BENCH_SIZE in it,
// generated on first use.
func benchDB(t testing.TB) (dir, path string) {
	t.Helper()
	size := parseSize(t, os.Getenv("SNAPDECK_BENCH_SIZE"), 64<<20)
	dir = os.Getenv("SNAPDECK_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path = filepath.Join(dir, fmt.Sprintf("bench-%d.sqlite", size))
	buildBenchDB(t, path, size)
	return dir, path
}

func buildBenchDB(t testing.TB, path string, size int64) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	tmp := path + ".building"
	snapdeck.RemoveDatabaseFiles(tmp)
	db := openDB(t, tmp)
	for seed := uint64(1); ; seed++ {
		insertOrders(t, db, 100000, seed)
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(tmp); err == nil && fi.Size() >= size {
			break
		}
	}
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// changePages updates one random row in each of about n pages, in one
// transaction, so that about n pages (and the B-tree pages above them)
// change.
func changePages(t testing.TB, path string, n int64, seed uint64) {
	t.Helper()
	db := openDB(t, path)
	defer db.Close()
	var maxID int64
	if err := db.QueryRow(`SELECT max(id) FROM orders`).Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := tx.Exec(`UPDATE orders SET status = 'disputed' WHERE id = ?`, 1+r.Int64N(maxID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// updateEvery100thRow changes 1% of the rows, spread over about a quarter
// of the pages (a page holds about 27 rows).
func updateEvery100thRow(t testing.TB, path string, run int) {
	t.Helper()
	db := openDB(t, path)
	defer db.Close()
	if _, err := db.Exec(`UPDATE orders SET amount = amount + 1 WHERE id % 100 = ?`, run); err != nil {
		t.Fatal(err)
	}
}

// settle flushes every dirty page before a timed phase, so that no phase
// pays for writing back what the previous one (or a setup copy) left.
func settle(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		t.Fatalf("sync: %v %s", err, out)
	}
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	snapdeck.RemoveDatabaseFiles(dst)
	if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

func parseSize(t testing.TB, s string, def int64) int64 {
	if s == "" {
		return def
	}
	n, err := bytesize.Parse(s)
	if err != nil {
		t.Fatalf("SNAPDECK_BENCH_SIZE=%q: want a size like 64MiB or 1GiB", s)
	}
	return n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
