package snapstore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomPage returns a page of random bytes.
func randomPage(r *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// moveCell returns base with the bytes [from, from+n) moved to the end of
// the page's free area, as SQLite does with a cell that grew: the rest of
// the page shifts, and a few bytes of header change.
func moveCell(base []byte, from, n int, grow []byte) []byte {
	cell := append(bytes.Clone(base[from:from+n]), grow...)
	page := append(bytes.Clone(base[:from]), base[from+n:]...)
	page = append(page[:len(page)-len(grow)-len(cell)+n], cell...)
	page = page[:len(base)]
	page[3] ^= 0x5a // header bytes
	page[5] ^= 0x11
	return page
}

func TestCopyDeltaRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 4096
	base := randomPage(r, n)
	shifted := moveCell(base, 1000, 120, []byte("refunded"))
	inPlace := bytes.Clone(base)
	inPlace[2000] ^= 1
	cases := map[string][]byte{
		"same":             bytes.Clone(base),
		"one byte changed": inPlace,
		"cell moved":       shifted,
		"all new":          randomPage(r, n),
		"zeros":            make([]byte, n),
	}
	for name, page := range cases {
		d := makeCopyDelta(nil, page, base)
		got, err := applyCopyDelta(base, d)
		if err != nil || !bytes.Equal(got, page) {
			t.Errorf("%s: copy delta of %d bytes rebuilds wrongly (%v)", name, len(d), err)
		}
		sd, kind := smallerDelta(nil, page, base)
		apply := applyDelta
		if kind == KindCopyDelta {
			apply = applyCopyDelta
		}
		if got, err := apply(base, sd); err != nil || !bytes.Equal(got, page) {
			t.Errorf("%s: the smaller delta (kind %d, %d bytes) rebuilds wrongly (%v)", name, kind, len(sd), err)
		}
	}
	// A moved cell is what copy deltas are for: a few dozen bytes where
	// runs at the same offsets need most of the page.
	runs := makeDelta(nil, shifted, base)
	copies, kind := smallerDelta(nil, shifted, base)
	if kind != KindCopyDelta || len(copies) > 64 || len(runs) < n/2 {
		t.Errorf("moved cell: runs %d bytes, smaller delta %d bytes of kind %d; want a copy delta under 64 bytes", len(runs), len(copies), kind)
	}
	// A byte changed in place stays a runs delta.
	if d, kind := smallerDelta(nil, inPlace, base); kind != KindDelta || len(d) > 8 {
		t.Errorf("one byte changed: %d bytes of kind %d, want a runs delta of a few bytes", len(d), kind)
	}
}

func TestCopyDeltaRefusesMalformedDeltas(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	base := randomPage(r, 4096)
	page := moveCell(base, 300, 90, []byte("xx"))
	good := makeCopyDelta(nil, page, base)
	for i := range 20000 {
		d := bytes.Clone(good)
		switch i % 3 {
		case 0:
			d[r.IntN(len(d))] ^= byte(1 + r.IntN(255))
		case 1:
			d = d[:r.IntN(len(d))]
		case 2:
			d = randomPage(r, 1+r.IntN(64))
		}
		got, err := applyCopyDelta(base, d)
		if err == nil && len(got) != len(base) {
			t.Fatalf("malformed delta %x rebuilt %d bytes without an error", d, len(got))
		}
	}
}

// TestCopyDeltasAreStoredAndChecked stores an image whose pages had cells
// moved, checks it is stored as copy deltas, reads it back, and checks that
// damage to a copy delta is caught.
func TestCopyDeltasAreStoredAndChecked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	r := rand.New(rand.NewPCG(7, 8))
	const pages = 200
	a := make([]byte, 0, pages*testPageSize)
	for range pages {
		a = append(a, randomPage(r, testPageSize)...)
	}
	rootA, _ := mustPut(t, s, a)
	b := bytes.Clone(a)
	for p := 0; p < pages; p += 10 { // 20 pages
		copy(b[p*testPageSize:], moveCell(a[p*testPageSize:(p+1)*testPageSize], 200, 100, []byte("grown")))
	}
	rootB, added := mustPutBase(t, s, b, rootA)
	copies := 0
	var target [32]byte
	s.mu.RLock()
	for h, l := range s.index {
		if l.kind == KindCopyDelta {
			copies++
			target = h
		}
	}
	s.mu.RUnlock()
	if copies != 20 {
		t.Fatalf("copy deltas stored: got %d, want 20", copies)
	}
	if added > 20*200+20*(2+32*leafFanout)+3*(2+32*innerFanout)+4096 {
		t.Errorf("20 pages with a moved cell added %d bytes", added)
	}
	if got := mustRead(t, s, rootB); !bytes.Equal(got, b) {
		t.Fatalf("image stored with copy deltas reads back differently")
	}
	s.mu.RLock()
	n := s.index[target].n
	s.mu.RUnlock()
	detected := 0
	for at := range n {
		flipPiece(t, s, dir, target, at)
		var got bytes.Buffer
		err := s.ReadImage(context.Background(), rootB, CheckPages, func(p []byte) error { got.Write(p); return nil })
		switch {
		case err != nil && strings.Contains(err.Error(), "corrupt"):
			detected++
		case err != nil:
			t.Errorf("copy delta flipped at %d: got %v, want a corruption error", at, err)
		case !bytes.Equal(got.Bytes(), b):
			t.Errorf("copy delta flipped at %d: read a wrong image without an error", at)
		}
		flipPiece(t, s, dir, target, at)
	}
	if detected == 0 {
		t.Errorf("no flip of a copy delta was detected")
	}
}
