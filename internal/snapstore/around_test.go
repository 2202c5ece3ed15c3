package snapstore

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/snapdeck/snapdeck/internal/directio"
	"github.com/snapdeck/snapdeck/internal/pagecache"
)

// TestBatchBlobsWhole checks that a batch, which writes a blob's aligned
// part around the page cache and its tail through it, stores every size
// whole: empty, under one block, at and across block and write
// boundaries, from aligned buffers and from one that is not.
func TestBatchBlobsWhole(t *testing.T) {
	ctx := context.Background()
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const a = directio.Align
	sizes := []int{0, 1, a - 1, a, a + 1, 3*a + 17, directWriteSize, directWriteSize + a, directWriteSize + 5, 2*directWriteSize + 3*a + 1}
	rng := rand.New(rand.NewPCG(1, 2))
	b := l.NewBatch()
	want := map[string][]byte{}
	for i, n := range sizes {
		for _, aligned := range []bool{true, false} {
			data := directio.Buffer(n+1, n+1)
			if !aligned {
				data = data[1:] // off the alignment by a byte
			} else {
				data = data[:n]
			}
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			key := "packs/" + string(rune('a'+i)) + map[bool]string{true: "-aligned", false: "-shifted"}[aligned]
			if err := b.Put(ctx, key, data); err != nil {
				t.Fatalf("%d bytes: %v", n, err)
			}
			want[key] = data
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for key, data := range want {
		got, err := l.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes, want the %d written", key, len(got), len(data))
		}
	}
}

// TestBatchWritesAroundThePageCache checks that a batch's blob (a
// capture's pack) is not copied into the page cache as it is written.
func TestBatchWritesAroundThePageCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8<<20 + 123 // a pack and an unaligned tail
	data := directio.Buffer(size, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b := l.NewBatch()
	if err := b.Put(ctx, "packs/p1", data); err != nil {
		t.Fatal(err)
	}
	tmps, err := filepath.Glob(filepath.Join(dir, "packs", "*"+tmpSuffix))
	if err != nil || len(tmps) != 1 {
		t.Fatalf("temporary files %v (%v), want one", tmps, err)
	}
	st, err := pagecache.Of(tmps[0])
	if errors.Is(err, pagecache.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	probe, direct, err := directio.Create(filepath.Join(dir, "probe"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	if !direct {
		t.Skip("this file system does not write around the page cache")
	}
	// The tail, under one page, goes through the cache.
	if st.Cached > 1 {
		t.Errorf("%d of the pack's %d pages in the page cache right after it was written, want at most the tail's", st.Cached, size/4096+1)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Get(ctx, "packs/p1"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(data))
	}
}
