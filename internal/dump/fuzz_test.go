package dump

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// FuzzExtract feeds Extract arbitrary files: it must never panic, must
// refuse with a *snapdeck.Error or succeed, and must leave nothing behind
// but the extracted database on success.
//
//	go test ./internal/dump -run '^$' -fuzz FuzzExtract -fuzztime 30s
func FuzzExtract(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.dump"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, filepath.Join("testdata", "good.dump"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		dst := filepath.Join(dir, ImageName)
		m, err := Extract(context.Background(), bytes.NewReader(data), dst, Limits{MaxImageSize: hostileLimit})
		names := dirEntries(t, dir)
		if err != nil {
			if _, ok := snapdeck.AsError(err); !ok {
				t.Fatalf("Extract: got untyped error %v, want a *snapdeck.Error", err)
			}
			if len(names) != 0 {
				t.Fatalf("files after a refused Extract: got %v, want none", names)
			}
			return
		}
		if len(names) != 1 || names[0] != ImageName {
			t.Fatalf("files after Extract: got %v, want only %s", names, ImageName)
		}
		st, err := os.Stat(dst)
		if err != nil || st.Size() != m.Size {
			t.Fatalf("extracted size: got %v (%v), want %d", st, err, m.Size)
		}
	})
}

// FuzzIsDump checks that content detection never panics and agrees with
// what the reader accepts as a start.
func FuzzIsDump(f *testing.F) {
	for _, s := range [][]byte{nil, zstdMagic, {0x5e, 0x2a, 0x4d, 0x18}, []byte(sqliteMagic), {0x1f, 0x8b}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefix []byte) {
		is := IsDump(prefix)
		if is && len(prefix) < 4 {
			t.Fatalf("IsDump(% x): got true for fewer than 4 bytes", prefix)
		}
		if is != (checkPrefix(prefix) == nil) {
			t.Fatalf("IsDump(% x) = %v, but checkPrefix says %v", prefix, is, checkPrefix(prefix))
		}
	})
}
