package snapstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// rangesBlobs is the store's local blobs read through the RangesGetter
// seam, as a remote store's cache is, recording each range it was asked
// to fill.
type rangesBlobs struct {
	*Local
	mu   sync.Mutex
	bufs [][]byte
}

func (b *rangesBlobs) GetRanges(ctx context.Context, ranges []Range) error {
	for _, r := range ranges {
		if err := b.GetRange(ctx, r.Key, r.Off, r.Buf); err != nil {
			return err
		}
		b.mu.Lock()
		b.bufs = append(b.bufs, r.Buf)
		b.mu.Unlock()
	}
	return nil
}

// takeInside returns how many bytes of the recorded ranges lie inside
// data, and forgets them.
func (b *rangesBlobs) takeInside(data []byte) int {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	hi := lo + uintptr(len(data))
	b.mu.Lock()
	defer b.mu.Unlock()
	n, kept := 0, b.bufs[:0]
	for _, buf := range b.bufs {
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(buf))); len(buf) > 0 && p >= lo && p+uintptr(len(buf)) <= hi {
			n += len(buf)
			continue
		}
		kept = append(kept, buf)
	}
	b.bufs = kept
	return n
}

// TestRemoteReadsLandInTheBatch checks that a read through a RangesGetter
// (a restore from S3) reads the runs of pages straight into the buffer it
// hands over, not into buffers of their own then copied (which cost a cold
// restore a copy of every page), and that it still reads images of pages
// and deltas back exactly and finds a flipped byte.
func TestRemoteReadsLandInTheBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	local, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	blobs := &rangesBlobs{Local: local}
	s, err := OpenBlobs(ctx, blobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	a := make([]byte, 5000*testPageSize)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(a); i += 8 {
		binary.LittleEndian.PutUint64(a[i:], rnd.Uint64())
	}
	rootA, _ := mustPut(t, s, a)
	b := changeRows(a, 20, 0x5a)
	rootB, _ := mustPutBase(t, s, b, rootA)
	if got := deltaCount(s); got == 0 {
		t.Fatalf("no deltas stored for the second image")
	}

	var got bytes.Buffer
	batches := 0
	err = s.ReadImagePages(ctx, rootA, CheckPagesAndSum, func(p Pages) error {
		defer p.Release()
		got.Write(p.Data)
		if n := blobs.takeInside(p.Data); n != len(p.Data) {
			t.Errorf("batch %d: %d of its %d bytes were read into it, want all (the rest were copied)", batches, n, len(p.Data))
		}
		batches++
		return nil
	})
	if err != nil {
		t.Fatalf("read the image of pages: %v", err)
	}
	if !bytes.Equal(got.Bytes(), a) {
		t.Errorf("the image of pages reads back differently")
	}
	if got := mustRead(t, s, rootB); !bytes.Equal(got, b) {
		t.Errorf("the image with deltas reads back differently")
	}

	packs, _ := filepath.Glob(filepath.Join(dir, "packs", "*"))
	for _, p := range packs {
		data, _ := os.ReadFile(p)
		if len(data) > 1000*testPageSize {
			data[700*testPageSize+3] ^= 1
			os.WriteFile(p, data, 0o644)
		}
	}
	for _, root := range []string{rootA, rootB} {
		err := s.ReadImage(ctx, root, CheckPages, func([]byte) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("reading %s from a corrupted pack: got %v, want a corruption error", root, err)
		}
	}
}
