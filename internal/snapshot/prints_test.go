package snapshot

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// TestCaptureReusesUnchangedLeaves checks the captures that take the base's
// leaf for pages whose fingerprint is the base's: after rows changed here
// and there and the database grew (its last leaf, partial in the base, now
// has more pages), every leaf is fingerprinted, and the image holds the
// database and passes Verify. (TestVerifyCatchesALeafPrintCollision shows
// that leaves are reused.)
func TestCaptureReusesUnchangedLeaves(t *testing.T) {
	ctx := context.Background()
	path, db, st, first := capturedOrders(t)
	if _, err := db.Exec(`UPDATE orders SET status = 'disputed' WHERE id % 5000 < 50`); err != nil {
		t.Fatal(err)
	}
	insertOrders(t, db, 77, 9)
	want := contentDigest(t, path)
	hashed := countLeafPrints(t)
	second, err := CaptureWithBase(ctx, path, st, first.Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Root == first.Root {
		t.Fatal("the capture after a change has the base's root")
	}
	if leaves := (second.Pages + snapstore.LeafPages - 1) / snapstore.LeafPages; hashed.Load() != leaves {
		t.Errorf("fingerprinted %d leaves, want every one of %d", hashed.Load(), leaves)
	}
	out := filepath.Join(t.TempDir(), "out.sqlite")
	if err := Materialize(ctx, st, second, out, ForNewDatabase, nil); err != nil {
		t.Fatal(err)
	}
	if got := contentDigest(t, out); got != want {
		t.Errorf("image content %s, database %s", got, want)
	}
	if err := Verify(ctx, st, second, t.TempDir()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestVerifyCatchesALeafPrintCollision forces every leaf's fingerprint to
// be the same, the one thing the reuse of the base's leaves can miss: the
// capture after a change then lists the base's pages while its SHA-256 is
// the database's, and Verify, which the console runs after every capture,
// reports it.
func TestVerifyCatchesALeafPrintCollision(t *testing.T) {
	ctx := context.Background()
	path, db, st, first := capturedOrders(t)
	if _, err := db.Exec(`UPDATE orders SET status = 'disputed' WHERE id % 5000 < 50`); err != nil {
		t.Fatal(err)
	}
	real := printLeaf
	printLeaf = func([]byte) leafPrint { return leafPrint{1} }
	defer func() { printLeaf = real }()
	// The base's fingerprints, collided too.
	again, err := CaptureWithBase(ctx, path, st, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE orders SET status = 'refunded' WHERE id % 5000 < 50`); err != nil {
		t.Fatal(err)
	}
	missed, err := CaptureWithBase(ctx, path, st, again.Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if missed.SHA256 == again.SHA256 {
		t.Fatal("the image's SHA-256 did not change with the database")
	}
	if err := Verify(ctx, st, missed, t.TempDir()); err == nil {
		t.Fatal("Verify passed an image whose pages are the base's and whose SHA-256 is not")
	}
	if err := Verify(ctx, st, first, t.TempDir()); err != nil {
		t.Errorf("Verify of the first image: %v", err)
	}
}

// countLeafPrints counts the calls of printLeaf until the test ends.
func countLeafPrints(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	real := printLeaf
	printLeaf = func(b []byte) leafPrint { n.Add(1); return real(b) }
	t.Cleanup(func() { printLeaf = real })
	return &n
}

// TestExpectNewCountsThePagesPastTheBase checks how many new pieces a
// capture sizes its writer for: every page and leaf without a base, those
// past the base's end with one (the first capture after a fill has the
// database's first snapshot, a few pages, as its base), none when the
// base is as large.
func TestExpectNewCountsThePagesPastTheBase(t *testing.T) {
	const leaf = snapstore.LeafPages
	for _, c := range []struct {
		pages, base int64
		want        int
	}{
		{pages: 64 * leaf, base: 0, want: 64*leaf + 64},
		{pages: 64 * leaf, base: leaf, want: 63*leaf + 63},
		{pages: 64 * leaf, base: 64 * leaf, want: 0},
		{pages: leaf, base: 64 * leaf, want: 0},
		{pages: 1 << 40, base: leaf, want: 1 << 20},
	} {
		if got := expectNew(c.pages, c.base); got != c.want {
			t.Errorf("expectNew(%d pages, base of %d) = %d, want %d", c.pages, c.base, got, c.want)
		}
	}
}
