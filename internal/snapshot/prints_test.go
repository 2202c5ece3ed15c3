package snapshot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// TestCaptureReusesUnchangedLeaves checks the captures that take the base's
// leaf, or the base's page, for pages whose fingerprint is the base's:
// after rows changed here and there and the database grew (its last leaf,
// partial in the base, now has more pages), every page is fingerprinted,
// only the pages that differ from the base's at the same index are hashed,
// and the image holds the database and passes Verify.
// (TestVerifyCatchesAPagePrintCollision shows that leaves are reused.)
func TestCaptureReusesUnchangedLeaves(t *testing.T) {
	ctx := context.Background()
	path, db, st, first := capturedOrders(t)
	if _, err := db.Exec(`UPDATE orders SET status = 'disputed' WHERE id % 5000 < 50`); err != nil {
		t.Fatal(err)
	}
	insertOrders(t, db, 77, 9)
	want := contentDigest(t, path)
	printed, hashed := countPrints(t)
	second, err := CaptureWithBase(ctx, path, st, first.Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Root == first.Root {
		t.Fatal("the capture after a change has the base's root")
	}
	if printed.Load() != second.Pages {
		t.Errorf("fingerprinted %d pages, want every one of %d", printed.Load(), second.Pages)
	}
	out := filepath.Join(t.TempDir(), "out.sqlite")
	if err := Materialize(ctx, st, second, out, ForNewDatabase, nil); err != nil {
		t.Fatal(err)
	}
	before := filepath.Join(t.TempDir(), "before.sqlite")
	if err := Materialize(ctx, st, first, before, ForNewDatabase, nil); err != nil {
		t.Fatal(err)
	}
	differ := differentPages(t, before, out, second.PageSize)
	if differ == 0 || differ > second.Pages/4 {
		t.Fatalf("%d of %d pages changed: the test wants a few", differ, second.Pages)
	}
	if hashed.Load() != differ {
		t.Errorf("hashed %d pages, want the %d that are not the base's at the same index", hashed.Load(), differ)
	}
	if got := contentDigest(t, out); got != want {
		t.Errorf("image content %s, database %s", got, want)
	}
	if err := Verify(ctx, st, second, t.TempDir()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestVerifyCatchesAPagePrintCollision forces every page's fingerprint to
// be the same, the one thing the reuse of the base's leaves and pages can
// miss: the capture after a change then lists the base's pages while its
// SHA-256 is the database's, and Verify, which the console runs after
// every capture, reports it.
func TestVerifyCatchesAPagePrintCollision(t *testing.T) {
	ctx := context.Background()
	path, db, st, first := capturedOrders(t)
	if _, err := db.Exec(`UPDATE orders SET status = 'disputed' WHERE id % 5000 < 50`); err != nil {
		t.Fatal(err)
	}
	real := printPage
	printPage = func([]byte) pagePrint { return pagePrint{1} }
	defer func() { printPage = real }()
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

// countPrints counts the calls of printPage and of hashPage until the
// test ends.
func countPrints(t *testing.T) (printed, hashed *atomic.Int64) {
	printed, hashed = new(atomic.Int64), new(atomic.Int64)
	realPrint, realHash := printPage, hashPage
	printPage = func(b []byte) pagePrint { printed.Add(1); return realPrint(b) }
	hashPage = func(b []byte) [32]byte { hashed.Add(1); return realHash(b) }
	t.Cleanup(func() { printPage, hashPage = realPrint, realHash })
	return printed, hashed
}

// differentPages counts the pages of b that are not a's page at the same
// index, those past a's end included.
func differentPages(t *testing.T, a, b string, pageSize int) int64 {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for off := 0; off < len(y); off += pageSize {
		if off+pageSize > len(x) || !bytes.Equal(x[off:off+pageSize], y[off:off+pageSize]) {
			n++
		}
	}
	return n
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

// TestRememberedPrintsStayWithinTheirBudget checks that the fingerprints
// remembered for the next capture of each file stay within maxPrintBytes:
// past it, those of the file captured longest ago go, and that file's next
// capture hashes every page again, while the newest keeps its own.
func TestRememberedPrintsStayWithinTheirBudget(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	var paths []string
	var images []Image
	for i := range 2 {
		path := filepath.Join(t.TempDir(), "a.sqlite")
		db := openDB(t, path)
		insertOrders(t, db, 5000, uint64(i+1))
		img, err := Capture(ctx, path, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ForgetFile(path) })
		paths, images = append(paths, path), append(images, img)
	}
	if printsOf(st, paths[0], images[0].Root, images[0].PageSize) == nil {
		t.Fatal("the first file's prints are not remembered under the default budget")
	}
	// Room for one file's prints: remembering the second file's next
	// capture drops the first's, the older.
	real := maxPrintBytes
	maxPrintBytes = images[1].Pages * int64(len(pagePrint{}))
	defer func() { maxPrintBytes = real }()
	db := openDB(t, paths[1])
	if _, err := db.Exec(`UPDATE orders SET status = 'disputed' WHERE id = 7`); err != nil {
		t.Fatal(err)
	}
	second, err := CaptureWithBase(ctx, paths[1], st, images[1].Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if printsOf(st, paths[0], images[0].Root, images[0].PageSize) != nil {
		t.Error("the prints of the file captured longest ago stayed past the budget")
	}
	if printsOf(st, paths[1], second.Root, second.PageSize) == nil {
		t.Error("the newest capture's prints were dropped though they fit the budget")
	}
	captures.mu.Lock()
	used := captures.printBytes
	captures.mu.Unlock()
	if used > maxPrintBytes {
		t.Errorf("%d bytes of prints remembered, budget %d", used, maxPrintBytes)
	}
	// The first file's next capture, without prints, hashes every page.
	db0 := openDB(t, paths[0])
	if _, err := db0.Exec(`UPDATE orders SET status = 'disputed' WHERE id = 7`); err != nil {
		t.Fatal(err)
	}
	_, hashed := countPrints(t)
	third, err := CaptureWithBase(ctx, paths[0], st, images[0].Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hashed.Load() != third.Pages {
		t.Errorf("hashed %d pages of the file whose prints were dropped, want all %d", hashed.Load(), third.Pages)
	}
}
