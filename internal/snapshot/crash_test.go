package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// The crash tests run crashScenario in a child process (this test binary,
// re-executed) that kills itself with SIGKILL at one named fault point,
// then check from the parent what a restart would find.
const (
	crashDirEnv   = "SNAPDECK_CRASH_DIR"
	crashPointEnv = "SNAPDECK_CRASH_POINT"
)

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests re-execute the test binary")
	}
	points := []string{
		"capture:pack-written#1",   // first capture, a pack written, not durable
		"capture:before-commit#1",  // every pack written, none durable
		"batch:synced#1",           // a pack fsynced, not renamed into place
		"batch:renamed#1",          // a pack renamed, directory not fsynced
		"batch:renamed#2",          // second capture's packs, reusing the first's pages
		"capture:read-done#1",      // pages read, packs in flight
		"capture:before-root#1",    // every pack durable and indexed, root not yet
		"capture:root-written#1",   // root durable, caller has not recorded it
		"capture:before-root#2",    // second capture, reusing the first's pages
		"materialize:half-written", // restore file half written
		"materialize:before-sync",  // restore file written, not fsynced
		"install:before-rename",
		"install:renamed", // new content in place, stale -wal/-shm
		"install:before-dir-sync",
		"sweep:compacted-pack-written", // live pieces copied, old packs still there
		"sweep:before-delete#2",        // some dead packs deleted
	}
	for _, point := range points {
		t.Run(strings.NewReplacer(":", "_", "#", "_").Replace(point), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPointEnv+"="+point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: got %v, want killed at %s; output:\n%s", err, point, out)
			}
			checkAfterCrash(t, dir)
		})
	}
}

// TestCrashChild is the child side of TestCrashSafety; it does nothing in a
// normal test run.
func TestCrashChild(t *testing.T) {
	dir, point := os.Getenv(crashDirEnv), os.Getenv(crashPointEnv)
	if dir == "" {
		t.Skip("run by TestCrashSafety")
	}
	name, nth := point, 1
	if i := strings.IndexByte(point, '#'); i >= 0 {
		name = point[:i]
		nth, _ = strconv.Atoi(point[i+1:])
	}
	hits := 0
	hook := func(p string) {
		if p == name {
			if hits++; hits == nth {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
	}
	faultHook = hook
	snapstore.FaultHook = hook
	crashScenario(t, dir)
}

// crashScenario captures twice, restores the first capture over the
// database and deletes it, recording in dir/journal (fsynced) what the
// console would have recorded: database states, completed snapshots and
// deleted ones.
func crashScenario(t *testing.T, dir string) {
	ctx := context.Background()
	path := filepath.Join(dir, "db.sqlite")
	journal, err := os.OpenFile(filepath.Join(dir, "journal"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	record := func(format string, args ...any) {
		fmt.Fprintf(journal, format+"\n", args...)
		if err := journal.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t, path)
	insertOrders(t, db, 6000, 1)
	record("state %s", contentDigest(t, path))
	st := openStore(t, filepath.Join(dir, "snapshots"))
	st.SetGrace(0)
	img1, err := Capture(ctx, path, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	record("snapshot %s %s", img1.Root, img1.SHA256)

	// Rewrite most pages, so the first capture's pack becomes mostly dead
	// and the sweep below compacts it.
	if _, err := db.Exec(`UPDATE orders SET note = note || ' updated' WHERE id % 10 < 8`); err != nil {
		t.Fatal(err)
	}
	record("state %s", contentDigest(t, path))
	// Deltas against the first snapshot, whose pages the sweep below must
	// keep for them although the first snapshot is deleted by then.
	img2, err := CaptureWithBase(ctx, path, st, img1.Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	record("snapshot %s %s", img2.Root, img2.SHA256)

	// Restore the first snapshot: close every connection (the last close
	// checkpoints and removes the WAL), materialise next to the database,
	// install.
	db.Close()
	tmp := path + ".restore"
	if err := Materialize(ctx, st, img1, tmp, ForRestore, nil); err != nil {
		t.Fatal(err)
	}
	if err := Install(tmp, path); err != nil {
		t.Fatal(err)
	}
	record("deleted %s", img1.Root)
	if _, err := st.Sweep(ctx, []string{img2.Root}); err != nil {
		t.Fatal(err)
	}
	record("done")
}

// checkAfterCrash reopens what the child left and checks the promises: the
// store opens with every pack whole, every recorded snapshot not deleted
// verifies, the database passes integrity_check and holds one of the
// states it went through, and the store keeps working.
func checkAfterCrash(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	journal, err := os.ReadFile(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]bool{}
	var live []Image
	deleted := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(journal))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch f[0] {
		case "state":
			states[f[1]] = true
		case "snapshot":
			live = append(live, Image{Root: f[1], SHA256: f[2]})
		case "deleted":
			deleted[f[1]] = true
		}
	}
	var logs bytes.Buffer
	st, err := snapstore.Open(ctx, filepath.Join(dir, "snapshots"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("reopen store: %v", err)
	}
	t.Cleanup(func() { st.Close(ctx) })
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("reopening the store logged errors, want none:\n%s", logs.String())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "snapshots", "packs", "*.tmp"))
	if len(leftovers) > 0 {
		t.Errorf("temporary blobs left after reopen: %v", leftovers)
	}
	var roots []string
	for _, img := range live {
		if deleted[img.Root] {
			continue
		}
		roots = append(roots, img.Root)
		if err := Verify(ctx, st, img, t.TempDir()); err != nil {
			t.Errorf("completed snapshot %s: %v", img.Root, err)
		}
	}

	path := filepath.Join(dir, "db.sqlite")
	if err := integrityCheck(ctx, path); err != nil {
		t.Errorf("database after crash: %v", err)
	}
	if got := contentDigest(t, path); !states[got] {
		t.Errorf("database content %s after crash, want one of the recorded states %v", got, states)
	}

	// The store still works: capture the database again and sweep with
	// every recorded snapshot live, then everything verifies.
	var base string
	if len(roots) > 0 {
		base = roots[len(roots)-1]
	}
	img, err := CaptureWithBase(ctx, path, st, base, nil)
	if err != nil {
		t.Fatalf("capture after crash: %v", err)
	}
	st.SetGrace(0)
	if _, err := st.Sweep(ctx, append(roots, img.Root)); err != nil {
		t.Fatalf("sweep after crash: %v", err)
	}
	for _, img := range append(live, img) {
		if deleted[img.Root] {
			continue
		}
		if err := Verify(ctx, st, img, t.TempDir()); err != nil {
			t.Errorf("snapshot %s after sweep: %v", img.Root, err)
		}
	}
}
