package snapstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// changeRows returns img with one byte changed in every step-th page, the
// way updating one row changes a page.
func changeRows(img []byte, step int, salt byte) []byte {
	out := bytes.Clone(img)
	for off := 0; off < len(out); off += step * testPageSize {
		out[off+200] ^= salt
		out[off+201] ^= salt
	}
	return out
}

// deltaCount returns how many deltas the store indexes.
func deltaCount(s *Store) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.bases)
}

func TestMakeAndApplyDelta(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for c := range 2000 {
		base := make([]byte, 4096)
		for i := range base {
			base[i] = byte(r.IntN(4)) // few values, so equal bytes occur by chance
		}
		page := bytes.Clone(base)
		for range r.IntN(64) + 1 {
			at := r.IntN(len(page))
			for k := range r.IntN(12) + 1 {
				if at+k < len(page) {
					page[at+k] = byte(r.IntN(256))
				}
			}
		}
		d := makeDelta(nil, page, base)
		got, err := applyDelta(base, d)
		if err != nil || !bytes.Equal(got, page) {
			t.Fatalf("case %d: applying a %d-byte delta: %v, page equal %v", c, len(d), err, bytes.Equal(got, page))
		}
		// Garbage never panics and never reaches past the page.
		garbage := make([]byte, r.IntN(40))
		for i := range garbage {
			garbage[i] = byte(r.IntN(256))
		}
		if got, err := applyDelta(base, garbage); err == nil && len(got) != len(base) {
			t.Fatalf("garbage delta %x: got a %d-byte page, want %d bytes or an error", garbage, len(got), len(base))
		}
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	// 5,000 pages of random bytes, so that a delta against any page but
	// the right base is too large to keep: the base's leaves are read in
	// three windows, and each must give the right page.
	a := make([]byte, 5000*testPageSize)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(a); i += 8 {
		binary.LittleEndian.PutUint64(a[i:], rnd.Uint64())
	}
	rootA, _ := mustPut(t, s, a)
	if pages := 5000; pages <= 2*leavesPerRead*leafFanout {
		t.Fatalf("%d pages fit in two windows of leaves", pages)
	}
	b := changeRows(a, 20, 0x5a) // 250 pages, in every window
	rootB, added := mustPutBase(t, s, b, rootA)
	if got := deltaCount(s); got != 250 {
		t.Errorf("deltas stored: got %d, want 250", got)
	}
	// 250 small deltas, at most 250 leaves and some inner nodes and a root.
	if limit := int64(250*100 + 250*(2+32*leafFanout) + 3*(2+32*innerFanout) + 4096); added > limit {
		t.Errorf("250 changed pages added %d bytes, want at most %d", added, limit)
	}
	if got := mustRead(t, s, rootB); !bytes.Equal(got, b) {
		t.Errorf("image stored as deltas reads back differently")
	}
	if got := mustRead(t, s, rootA); !bytes.Equal(got, a) {
		t.Errorf("base image reads back differently")
	}
	s.Close(context.Background())
	s2 := mustOpen(t, dir)
	if got := deltaCount(s2); got != 250 {
		t.Errorf("deltas after reopen: got %d, want 250", got)
	}
	if got := mustRead(t, s2, rootB); !bytes.Equal(got, b) {
		t.Errorf("image stored as deltas reads back differently after reopen")
	}
}

func TestDeltaChainStopsAtTheDepthLimit(t *testing.T) {
	s := mustOpen(t, "")
	img := makeImage(40, 1)
	root, _ := mustPut(t, s, img)
	images := map[string][]byte{root: img}
	for i := 1; i <= 2*maxDeltaDepth+2; i++ {
		img = bytes.Clone(img)
		img[3*testPageSize+300] = byte(i) // page 4 changes every time
		root, _ = mustPutBase(t, s, img, root)
		images[root] = img
		h := sha256.Sum256(img[3*testPageSize : 4*testPageSize])
		// Depths run 1..8, then the page is stored whole and it starts
		// again.
		want := i % (maxDeltaDepth + 1)
		if got := s.depthOf(h); got != want {
			t.Errorf("capture %d: page 4 is %d deltas deep, want %d", i, got, want)
		}
	}
	for r, want := range images {
		if got := mustRead(t, s, r); !bytes.Equal(got, want) {
			t.Errorf("image %s reads back differently", r[:8])
		}
	}
}

// flipPiece flips a byte of the stored piece h in its pack file.
func flipPiece(t *testing.T, s *Store, dir string, h [32]byte, at uint32) {
	t.Helper()
	s.mu.RLock()
	l := s.index[h]
	key := s.packs[l.pack].key
	s.mu.RUnlock()
	path := filepath.Join(dir, filepath.FromSlash(key))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[l.off+min(at, l.n-1)] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDeltaCorruptionIsDetected(t *testing.T) {
	for _, c := range []struct {
		name string
		base bool // corrupt the base page instead of the delta
	}{{"delta", false}, {"base", true}} {
		dir := t.TempDir()
		s := mustOpen(t, dir)
		a := makeImage(100, 1)
		rootA, _ := mustPut(t, s, a)
		b := changeRows(a, 50, 0x33) // pages 1 and 51
		rootB, _ := mustPutBase(t, s, b, rootA)
		page := b[50*testPageSize : 51*testPageSize]
		h := sha256.Sum256(page)
		if s.depthOf(h) != 1 {
			t.Fatalf("%s: page 51 is not stored as a delta", c.name)
		}
		target, n := h, uint32(1)
		if c.base {
			target = sha256.Sum256(a[50*testPageSize : 51*testPageSize])
		} else {
			s.mu.RLock()
			n = s.index[h].n
			s.mu.RUnlock()
		}
		// Flip each byte of the delta in turn (a flip in a field the
		// decoder ignores may leave the page intact): every read either
		// fails as corrupt or returns the right image, and some fail.
		detected := 0
		for at := range n {
			if c.base {
				at = 300
			}
			flipPiece(t, s, dir, target, at)
			// Restore reads without the whole image's SHA-256 (and a
			// delta's base unchecked): the page checks alone must
			// catch the damage.
			for _, check := range []Check{CheckPages, CheckPagesAndSum} {
				var got bytes.Buffer
				err := s.ReadImage(context.Background(), rootB, check, func(p []byte) error { got.Write(p); return nil })
				switch {
				case err != nil && strings.Contains(err.Error(), "corrupt"):
					detected++
				case err != nil:
					t.Errorf("%s corrupted at %d, check %d: got %v, want a corruption error", c.name, at, check, err)
				case !bytes.Equal(got.Bytes(), b):
					t.Errorf("%s corrupted at %d, check %d: read a wrong image without an error", c.name, at, check)
				}
			}
			flipPiece(t, s, dir, target, at)
		}
		if detected == 0 {
			t.Errorf("%s corrupted: no corruption was detected", c.name)
		}
	}
}

func TestSweepKeepsTheBasesOfLiveDeltas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	a := makeImage(3000, 1)
	rootA, _ := mustPut(t, s, a)
	b := changeRows(a, 10, 0x44)
	rootB, _ := mustPutBase(t, s, b, rootA)
	c := changeRows(b, 7, 0x21) // deltas over deltas
	rootC, _ := mustPutBase(t, s, c, rootB)
	clock = clock.Add(2 * DefaultGrace)

	// Only c is live: the pages of a and b its deltas rest on stay.
	if _, err := s.Sweep(ctx, []string{rootC}); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if _, err := s.ReadManifest(ctx, rootA); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("deleted snapshot a: got %v, want NotFound", err)
	}
	if got := mustRead(t, s, rootC); !bytes.Equal(got, c) {
		t.Errorf("live snapshot differs after sweep")
	}
	s.Close(ctx)
	s = mustOpen(t, dir)
	s.now = func() time.Time { return clock }
	if got := mustRead(t, s, rootC); !bytes.Equal(got, c) {
		t.Errorf("live snapshot differs after sweep and reopen")
	}

	// A new image sharing nothing: once it alone is live, every delta and
	// every base goes.
	d := makeImage(3000, 9)
	rootD, _ := mustPut(t, s, d)
	clock = clock.Add(2 * DefaultGrace)
	if _, err := s.Sweep(ctx, []string{rootD}); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if got := deltaCount(s); got != 0 {
		t.Errorf("deltas left after their snapshots went: %d, want 0", got)
	}
	if _, bytesAfter, _ := s.Stats(ctx); bytesAfter > int64(len(d))*12/10 {
		t.Errorf("store holds %d bytes after sweep, want at most %d", bytesAfter, len(d)*12/10)
	}
	if got := mustRead(t, s, rootD); !bytes.Equal(got, d) {
		t.Errorf("live snapshot d differs after sweep")
	}
}

func TestReadsVersion1Packs(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	img := makeImage(3000, 5)
	root, _ := mustPut(t, s, img)
	s.Close(context.Background())
	// Without deltas a version 3 pack differs from a version 1 pack only
	// in its footer: drop the index length and change the magic.
	rewritePacks(t, dir, func(data []byte) []byte {
		foot := data[len(data)-footerSize:]
		v1 := append(bytes.Clone(data[:len(data)-footerSize]), foot[:16]...)
		return append(v1, packMagicV1...)
	})
	s2 := mustOpen(t, dir)
	if got := mustRead(t, s2, root); !bytes.Equal(got, img) {
		t.Errorf("image in version 1 packs reads back differently")
	}
	// New images with deltas go beside them.
	changed := changeRows(img, 10, 0x77)
	root2, _ := mustPutBase(t, s2, changed, root)
	if got := mustRead(t, s2, root2); !bytes.Equal(got, changed) {
		t.Errorf("image with deltas over version 1 packs reads back differently")
	}
}

// TestReadsVersion2Packs reads packs written before copy deltas: the same
// layout with the version 2 magic.
func TestReadsVersion2Packs(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	a := makeImage(1000, 9)
	rootA, _ := mustPut(t, s, a)
	b := changeRows(a, 10, 0x21)
	rootB, _ := mustPutBase(t, s, b, rootA)
	s.Close(context.Background())
	rewritePacks(t, dir, func(data []byte) []byte {
		if string(data[len(data)-8:]) != packMagic {
			t.Fatalf("a new pack ends in %q", data[len(data)-8:])
		}
		copy(data[len(data)-8:], packMagicV2)
		return data
	})
	s2 := mustOpen(t, dir)
	if got := mustRead(t, s2, rootB); !bytes.Equal(got, b) {
		t.Errorf("image with deltas in version 2 packs reads back differently")
	}
	if got := deltaCount(s2); got != 100 {
		t.Errorf("deltas in version 2 packs: got %d, want 100", got)
	}
}

// rewritePacks replaces every pack in the store under dir by what rewrite
// makes of it.
func rewritePacks(t *testing.T, dir string, rewrite func(data []byte) []byte) {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(dir, "packs", "*"))
	if len(packs) == 0 {
		t.Fatal("no packs to rewrite")
	}
	for _, p := range packs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, rewrite(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
