// Package snapstoretest is the test suite every snapstore.Blobs passes:
// the Blobs contract itself, and the snapshot store's round trips, deltas,
// reopening and sweeping on top of it. The local store runs it on a
// directory, the S3 store on a real SeaweedFS server.
package snapstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// Open returns an empty Blobs, the same one each time it is called within
// one subtest (a reopen), and a fresh one for each subtest.
type Open func(t *testing.T) (fresh func() snapstore.Blobs)

const pageSize = 4096

// image returns n pages derived from seed and the page number.
func image(n int, seed uint64) []byte {
	img := make([]byte, n*pageSize)
	for p := range n {
		binary.BigEndian.PutUint64(img[p*pageSize:], seed)
		binary.BigEndian.PutUint64(img[p*pageSize+8:], uint64(p))
		for i := 16; i < pageSize; i += 512 {
			img[p*pageSize+i] = byte(p * i)
		}
	}
	return img
}

func put(t *testing.T, s *snapstore.Store, img []byte, base string) (string, int64) {
	t.Helper()
	root, added, err := capture(s, img, base)
	if err != nil {
		t.Fatal(err)
	}
	return root, added
}

// capture stores img, with base as its base when not empty.
func capture(s *snapstore.Store, img []byte, base string) (string, int64, error) {
	w, err := s.NewWriter(context.Background())
	if err != nil {
		return "", 0, fmt.Errorf("NewWriter: %w", err)
	}
	defer w.Abort()
	if base != "" {
		w.UseBase(base)
	}
	for off := 0; off < len(img); off += pageSize {
		page := img[off : off+pageSize]
		if err := w.AddPage(sha256.Sum256(page), page); err != nil {
			return "", 0, fmt.Errorf("AddPage: %w", err)
		}
	}
	root, added, err := w.Finish(snapstore.Manifest{PageSize: pageSize, Pages: int64(len(img) / pageSize), Size: int64(len(img)), SHA256: sha256.Sum256(img)})
	if err != nil {
		return "", 0, fmt.Errorf("Finish: %w", err)
	}
	return root, added, nil
}

func read(t *testing.T, s *snapstore.Store, root string) []byte {
	t.Helper()
	var got bytes.Buffer
	if err := s.ReadImage(context.Background(), root, snapstore.CheckPagesAndSum, func(b []byte) error { got.Write(b); return nil }); err != nil {
		t.Fatalf("ReadImage(%s): %v", root, err)
	}
	return got.Bytes()
}

func openStore(t *testing.T, b snapstore.Blobs) *snapstore.Store {
	t.Helper()
	s, err := snapstore.OpenBlobs(context.Background(), b, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// Run runs the suite on the Blobs that open gives.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	t.Run("Blobs", func(t *testing.T) {
		b := open(t)()
		big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB: more than one part
		if err := b.Put(ctx, "packs/a", []byte("hello, world")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if err := b.Put(ctx, "pitr/db1/0001.ltx", big); err != nil {
			t.Fatalf("Put of 32 MiB: %v", err)
		}
		if got, err := b.Get(ctx, "packs/a"); err != nil || string(got) != "hello, world" {
			t.Errorf("Get: %q, %v", got, err)
		}
		if got, err := b.Get(ctx, "pitr/db1/0001.ltx"); err != nil || !bytes.Equal(got, big) {
			t.Errorf("Get of 32 MiB: %d bytes, %v; want them as put", len(got), err)
		}
		if err := b.Put(ctx, "packs/a", []byte("replaced")); err != nil {
			t.Fatalf("Put again: %v", err)
		}
		if got, err := b.Get(ctx, "packs/a"); err != nil || string(got) != "replaced" {
			t.Errorf("Get after replacing: %q, %v", got, err)
		}
		if rg, ok := b.(snapstore.RangeGetter); ok {
			buf := make([]byte, 4)
			if err := rg.GetRange(ctx, "packs/a", 2, buf); err != nil || string(buf) != "plac" {
				t.Errorf("GetRange(2, 4): %q, %v", buf, err)
			}
			if err := rg.GetRange(ctx, "packs/a", -3, buf[:3]); err != nil || string(buf[:3]) != "ced" {
				t.Errorf("GetRange(-3, 3): %q, %v", buf[:3], err)
			}
			far := make([]byte, 100)
			if err := rg.GetRange(ctx, "pitr/db1/0001.ltx", 17<<20+5, far); err != nil || !bytes.Equal(far, big[17<<20+5:17<<20+105]) {
				t.Errorf("GetRange inside the second part: %v", err)
			}
			if err := rg.GetRange(ctx, "packs/a", 6, buf); err == nil {
				t.Errorf("GetRange beyond the end: no error")
			}
			if err := rg.GetRange(ctx, "packs/missing", 0, buf); snapdeck.ErrorCode(err) != snapdeck.NotFound {
				t.Errorf("GetRange of a missing key: %v, want NotFound", err)
			}
		}
		if _, err := b.Get(ctx, "packs/missing"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("Get of a missing key: %v, want NotFound", err)
		}
		var keys []string
		if err := b.List(ctx, func(k string) error { keys = append(keys, k); return nil }); err != nil {
			t.Fatalf("List: %v", err)
		}
		slices.Sort(keys)
		if want := []string{"packs/a", "pitr/db1/0001.ltx"}; !slices.Equal(keys, want) {
			t.Errorf("List: %q, want %q", keys, want)
		}
		if err := b.Delete(ctx, "packs/a"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := b.Delete(ctx, "packs/a"); err != nil {
			t.Errorf("Delete of a missing key: %v", err)
		}
		if _, err := b.Get(ctx, "packs/a"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("Get after Delete: %v, want NotFound", err)
		}
	})
	t.Run("RoundTripDedupAndReopen", func(t *testing.T) {
		blobs := open(t)
		s := openStore(t, blobs())
		img := image(5000, 1) // 20 MiB: three packs
		root, added := put(t, s, img, "")
		if added < int64(len(img)) {
			t.Errorf("first image added %d bytes, want at least %d", added, len(img))
		}
		if got := read(t, s, root); !bytes.Equal(got, img) {
			t.Fatalf("image read back differs")
		}
		if root2, added2 := put(t, s, img, ""); root2 != root || added2 != 0 {
			t.Errorf("same image again: root %s added %d, want %s and 0", root2, added2, root)
		}
		changed := bytes.Clone(img)
		for _, p := range []int{3, 2500, 4999} {
			changed[p*pageSize+100] ^= 0xff
		}
		root3, added3 := put(t, s, changed, root)
		if added3 > 64<<10 {
			t.Errorf("3 changed pages added %d bytes, want deltas of a few KiB", added3)
		}
		s.Close(ctx)
		s2 := openStore(t, blobs())
		if got := read(t, s2, root); !bytes.Equal(got, img) {
			t.Errorf("first image after reopen differs")
		}
		if got := read(t, s2, root3); !bytes.Equal(got, changed) {
			t.Errorf("changed image after reopen differs")
		}
		if _, err := s2.ReadManifest(ctx, snapstore.RootString(sha256.Sum256([]byte("nothing")))); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("missing root: %v, want NotFound", err)
		}
	})
	t.Run("Sweep", func(t *testing.T) {
		s := openStore(t, open(t)())
		s.SetGrace(0)
		keep, _ := put(t, s, image(1000, 2), "")
		drop, _ := put(t, s, image(1000, 3), "")
		_, before, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reclaimed, err := s.Sweep(ctx, []string{keep})
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		_, after, _ := s.Stats(ctx)
		if reclaimed < 1000*pageSize || after >= before {
			t.Errorf("Sweep reclaimed %d bytes (store %d -> %d), want at least %d", reclaimed, before, after, 1000*pageSize)
		}
		if got := read(t, s, keep); !bytes.Equal(got, image(1000, 2)) {
			t.Errorf("kept image differs after Sweep")
		}
		if _, err := s.ReadManifest(ctx, drop); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Errorf("dropped image after Sweep: %v, want NotFound", err)
		}
	})
	t.Run("ConcurrentCaptures", func(t *testing.T) {
		s := openStore(t, open(t)())
		errs := make(chan error, 3)
		roots := make([]string, 3)
		for i := range 3 {
			go func() {
				var err error
				roots[i], _, err = capture(s, image(800, uint64(10+i)), "")
				errs <- err
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent capture: %v", err)
			}
		}
		for i, root := range roots {
			if got := read(t, s, root); !bytes.Equal(got, image(800, uint64(10+i))) {
				t.Errorf("capture %d read back differs", i)
			}
		}
	})
}
