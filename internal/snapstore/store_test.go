package snapstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

const testPageSize = 512

// mustOpen opens a store in a fresh directory and closes it at cleanup.
func mustOpen(t *testing.T, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// makeImage returns n pages whose content is derived from seed and the page
// number, so two images with the same seed share every page.
func makeImage(n int, seed uint64) []byte {
	img := make([]byte, n*testPageSize)
	for p := 0; p < n; p++ {
		binary.BigEndian.PutUint64(img[p*testPageSize:], seed)
		binary.BigEndian.PutUint64(img[p*testPageSize+8:], uint64(p))
	}
	return img
}

// mustPut stores img and returns its root and the bytes it added.
func mustPut(t *testing.T, s *Store, img []byte) (string, int64) {
	t.Helper()
	return mustPutBase(t, s, img, "")
}

// mustPutBase stores img with the image under base (if not empty) as its
// base for deltas, and returns its root and the bytes it added.
func mustPutBase(t *testing.T, s *Store, img []byte, base string) (string, int64) {
	t.Helper()
	w, err := s.NewWriter(context.Background())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer w.Abort()
	if base != "" {
		w.UseBase(base)
	}
	for off := 0; off < len(img); off += testPageSize {
		page := img[off : off+testPageSize]
		if err := w.AddPage(sha256.Sum256(page), page); err != nil {
			t.Fatalf("AddPage: %v", err)
		}
	}
	root, added, err := w.Finish(Manifest{PageSize: testPageSize, Pages: int64(len(img) / testPageSize), Size: int64(len(img)), SHA256: sha256.Sum256(img)})
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return root, added
}

func mustRead(t *testing.T, s *Store, root string) []byte {
	t.Helper()
	var got bytes.Buffer
	if err := s.ReadImage(context.Background(), root, CheckPagesAndSum, func(b []byte) error { got.Write(b); return nil }); err != nil {
		t.Fatalf("ReadImage(%s): %v", root, err)
	}
	return got.Bytes()
}

func TestRoundTripAndDedup(t *testing.T) {
	for _, pages := range []int{0, 1, 31, 32, 33, 4096, 4097, 10000} {
		s := mustOpen(t, "")
		img := makeImage(pages, 1)
		root, added := mustPut(t, s, img)
		if got := mustRead(t, s, root); !bytes.Equal(got, img) {
			t.Fatalf("%d pages: image read back differs (got %d bytes, want %d)", pages, len(got), len(img))
		}
		if pages > 0 && added < int64(len(img)) {
			t.Errorf("%d pages: first image added %d bytes, want at least %d", pages, added, len(img))
		}
		// The same image again adds nothing.
		root2, added2 := mustPut(t, s, img)
		if root2 != root || added2 != 0 {
			t.Errorf("%d pages: same image again: got root %s added %d, want %s and 0", pages, root2, added2, root)
		}
	}
}

func TestSmallChangeCostsAboutTheChange(t *testing.T) {
	s := mustOpen(t, "")
	const pages = 20000
	img := makeImage(pages, 1)
	_, first := mustPut(t, s, img)
	changed := bytes.Clone(img)
	for _, p := range []int{5, 6000, 19999} {
		changed[p*testPageSize+100] ^= 0xff
	}
	root, added := mustPut(t, s, changed)
	// 3 pages, 3 leaves, up to 3 inner nodes per level, one root.
	if limit := int64(3*testPageSize + 3*(2+32*leafFanout) + 6*(2+32*innerFanout) + 4096); added > limit {
		t.Errorf("3 changed pages of %d added %d bytes, want at most %d (first image: %d)", pages, added, limit, first)
	}
	if got := mustRead(t, s, root); !bytes.Equal(got, changed) {
		t.Errorf("changed image read back differs")
	}
}

func TestReopenFindsEverything(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	img := makeImage(5000, 7)
	root, _ := mustPut(t, s, img)
	s.Close(context.Background())
	s2 := mustOpen(t, dir)
	if got := mustRead(t, s2, root); !bytes.Equal(got, img) {
		t.Errorf("image after reopen differs")
	}
	m, err := s2.ReadManifest(context.Background(), root)
	if err != nil || m.Pages != 5000 || m.PageSize != testPageSize {
		t.Errorf("manifest: got %+v, %v, want 5000 pages of %d", m, err, testPageSize)
	}
}

func TestCorruptionIsDetected(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	img := makeImage(100, 3)
	root, _ := mustPut(t, s, img)
	// Flip a byte inside the first pack's piece area.
	packs, _ := filepath.Glob(filepath.Join(dir, "packs", "*"))
	for _, p := range packs {
		data, _ := os.ReadFile(p)
		if len(data) > 50*testPageSize {
			data[10*testPageSize+3] ^= 1
			os.WriteFile(p, data, 0o644)
		}
	}
	for _, check := range []Check{CheckPages, CheckPagesAndSum} {
		err := s.ReadImage(context.Background(), root, check, func([]byte) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("reading a corrupted pack with check %d: got %v, want a corruption error", check, err)
		}
	}
}

func TestMissingRootIsNotFound(t *testing.T) {
	s := mustOpen(t, "")
	_, err := s.ReadManifest(context.Background(), strings.Repeat("ab", 32))
	if got := snapdeck.ErrorCode(err); got != snapdeck.NotFound {
		t.Errorf("got code %s (%v), want %s", got, err, snapdeck.NotFound)
	}
}

func TestSweepReclaimsDeletedSnapshots(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "")
	clock := time.Now()
	s.now = func() time.Time { return clock }
	a := makeImage(3000, 1)
	b := makeImage(3000, 2) // shares nothing with a
	rootA, _ := mustPut(t, s, a)
	rootB, _ := mustPut(t, s, b)
	_, before, _ := s.Stats(ctx)

	// Within the grace period nothing goes, even if no root is live.
	if got, err := s.Sweep(ctx, nil); err != nil || got != 0 {
		t.Fatalf("sweep within grace: got %d, %v, want 0, nil", got, err)
	}
	clock = clock.Add(2 * DefaultGrace)
	reclaimed, err := s.Sweep(ctx, []string{rootB})
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	_, after, _ := s.Stats(ctx)
	if reclaimed < int64(len(a)) || before-after != reclaimed {
		t.Errorf("reclaimed %d (stats %d -> %d), want at least %d and equal to the drop", reclaimed, before, after, len(a))
	}
	if got := mustRead(t, s, rootB); !bytes.Equal(got, b) {
		t.Errorf("live snapshot differs after sweep")
	}
	if _, err := s.ReadManifest(ctx, rootA); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("deleted snapshot: got %v, want NotFound", err)
	}
}

func TestSweepCompactsSharedPacks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	a := makeImage(3000, 1)
	rootA, _ := mustPut(t, s, a)
	// b keeps 10% of a's pages and replaces the rest.
	b := makeImage(3000, 2)
	copy(b, a[:300*testPageSize])
	rootB, _ := mustPut(t, s, b)
	clock = clock.Add(2 * DefaultGrace)
	if _, err := s.Sweep(ctx, []string{rootB}); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	_, bytesAfter, _ := s.Stats(ctx)
	if limit := int64(len(b)) * 12 / 10; bytesAfter > limit {
		t.Errorf("store holds %d bytes after sweep, want at most %d", bytesAfter, limit)
	}
	s.Close(ctx)
	s2 := mustOpen(t, dir)
	if got := mustRead(t, s2, rootB); !bytes.Equal(got, b) {
		t.Errorf("live snapshot differs after compaction and reopen")
	}
	if _, err := s2.ReadManifest(ctx, rootA); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("deleted snapshot after reopen: got %v, want NotFound", err)
	}
}

func TestSweepRefusesAMissingLiveRoot(t *testing.T) {
	s := mustOpen(t, "")
	s.SetGrace(0)
	mustPut(t, s, makeImage(10, 1))
	_, err := s.Sweep(context.Background(), []string{strings.Repeat("cd", 32)})
	if err == nil {
		t.Fatalf("Sweep with an unknown live root: got nil, want an error")
	}
	if blobs, _, _ := s.Stats(context.Background()); blobs == 0 {
		t.Errorf("Sweep deleted blobs although it failed")
	}
}

func TestLocalBlobs(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, "packs/none"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("Get missing: got %v, want NotFound", err)
	}
	if err := l.Put(ctx, "../escape", []byte("x")); err == nil {
		t.Errorf("Put ../escape: got nil, want an error")
	}
	if err := l.Put(ctx, "packs/a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := make([]byte, 3); l.GetRange(ctx, "packs/a", -3, got) != nil || string(got) != "llo" {
		t.Errorf("GetRange(-3, 3 bytes): got %q, want llo", got)
	}
	var keys []string
	l.List(ctx, func(k string) error { keys = append(keys, k); return nil })
	if len(keys) != 1 || keys[0] != "packs/a" {
		t.Errorf("List: got %v, want [packs/a]", keys)
	}
	if err := l.Delete(ctx, "packs/a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctx, "packs/a"); err != nil {
		t.Errorf("Delete missing: got %v, want nil", err)
	}
	stop := errors.New("stop")
	l.Put(ctx, "x", nil)
	if err := l.List(ctx, func(string) error { return stop }); err != stop {
		t.Errorf("List stops at fn's error: got %v, want %v", err, stop)
	}
}

func TestLocalBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		var keys []string
		l.List(ctx, func(k string) error { keys = append(keys, k); return nil })
		return keys
	}
	b := l.NewBatch()
	for _, k := range []string{"packs/a", "packs/b"} {
		if err := b.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(); len(got) != 0 {
		t.Errorf("List before Commit: got %v, want nothing", got)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got, err := l.Get(ctx, "packs/b"); err != nil || string(got) != "packs/b" {
		t.Errorf("Get after Commit: got %q, %v, want packs/b", got, err)
	}
	if got := list(); len(got) != 2 {
		t.Errorf("List after Commit: got %v, want packs/a and packs/b", got)
	}

	// A discarded batch and a crashed one (reopened) leave nothing behind.
	b = l.NewBatch()
	b.Put(ctx, "packs/c", []byte("c"))
	b.Discard()
	b = l.NewBatch()
	b.Put(ctx, "packs/d", []byte("d"))
	if _, err := NewLocal(dir); err != nil {
		t.Fatal(err)
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "packs", "*"+tmpSuffix))
	if got := list(); len(got) != 2 || len(tmps) != 0 {
		t.Errorf("after Discard and reopen: got keys %v and temporary files %v, want packs/a, packs/b only", got, tmps)
	}
}

// TestReadImageReturnsWhenCancelledMidway checks that a read cancelled
// while it runs returns, whatever its goroutines were doing: a batch the
// walk had queued but not yet handed to a worker once left the reader
// waiting for it forever, and with it the job runner's Close (seen as rare
// ten-minute hangs of test runs, in a snapshot's background verification).
// It also checks that the cancelled read stops handing over pages: it once
// went on calling fn with the batches read ahead, about two more per call,
// work a user cancelling a restore or an export waits for for nothing.
func TestReadImageReturnsWhenCancelledMidway(t *testing.T) {
	s := mustOpen(t, "")
	// 20,000 pages of 512 bytes are ten batches: a cancel after the first
	// leaves work queued and in flight in every goroutine of the read.
	root, _ := mustPut(t, s, makeImage(20000, 7))
	// Each call gets its own bound, since what is tested is that no call
	// hangs, and 300 calls together take 30 s or more under -race on a
	// loaded 2-core machine (a total of 60 s once failed in CI that way).
	// A cancelled call reads at most the batches already in flight, which
	// took under 0.5 s under -race on a shared 2-core machine with a load
	// of 10; 30 s is sixty times that, so only a goroutine blocked for
	// good reaches it, and it still fails well within go test's timeout.
	const perCall = 30 * time.Second
	for i := range 300 {
		ctx, cancel := context.WithCancel(context.Background())
		runs := 0
		done := make(chan error, 1)
		go func() {
			done <- s.ReadImage(ctx, root, CheckPages, func([]byte) error {
				if runs++; runs == 1 {
					cancel()
				}
				return nil
			})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("call %d: a cancelled ReadImage returned %v, want context.Canceled", i, err)
			}
			if runs != 1 {
				t.Fatalf("call %d: fn was called %d times after the cancel, want none", i, runs-1)
			}
		case <-time.After(perCall):
			pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			t.Fatalf("call %d: a cancelled ReadImage did not return in %v (goroutines above)", i, perCall)
		}
		cancel()
	}
}
