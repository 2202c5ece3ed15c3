package snapstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"
)

// TestWriterKeepsItsPackBuffers writes ten packs with two garbage
// collections after each page leaf, as a capture of a GiB sees several:
// the writer makes a buffer for each pack it can have in flight at most,
// not one per pack once the collections have emptied the pool.
func TestWriterKeepsItsPackBuffers(t *testing.T) {
	s := mustOpen(t, "")
	w, err := s.NewWriter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	const pageSize = 4096
	const packs = 10
	pages := int64(packs * packTarget / pageSize)
	page := make([]byte, pageSize)
	made := packBuffersMade.Load()
	for i := range pages {
		binary.BigEndian.PutUint64(page, uint64(i))
		if err := w.AddPage(sha256.Sum256(page), page); err != nil {
			t.Fatal(err)
		}
		if i%(packTarget/pageSize) == 0 {
			runtime.GC()
			runtime.GC()
		}
	}
	if _, _, err := w.Finish(Manifest{PageSize: pageSize, Pages: pages, Size: pages * pageSize}); err != nil {
		t.Fatal(err)
	}
	if n := packBuffersMade.Load() - made; n > int64(s.flushers()+4) {
		t.Errorf("%d packs made %d pack buffers, want at most %d (one per pack in flight)", packs, n, s.flushers()+4)
	}
}
