package s3blobs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// TestPutFileOnSeaweedFS streams files to a real SeaweedFS server, on S3
// itself and through the cache: one below the part size (one PUT) and one
// of several parts (a multipart upload, read from the file by offset),
// each read back whole.
func TestPutFileOnSeaweedFS(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	s := remote(t, weed, prefixOf(t))
	cache, err := s3blobs.NewCache(remote(t, weed, prefixOf(t)), filepath.Join(dir, "cache"), 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	for i, tc := range []struct {
		name string
		b    snapstore.Blobs
		size int
	}{
		{"s3-small", s, 1<<20 + 3},
		{"s3-multipart", s, 40<<20 + 5},
		{"cache-multipart", cache, 20<<20 + 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			rand.Read(data)
			name := filepath.Join(dir, tc.name+".ltx")
			if err := os.WriteFile(name, data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Read(make([]byte, 100)); err != nil { // moves the offset
				t.Fatal(err)
			}
			key := "pitr/db1/l0/" + tc.name + ".ltx"
			if i == 2 {
				// An older blob of the key, read once so that the cache
				// holds it: PutFile must not leave it to be read.
				if err := tc.b.Put(ctx, key, []byte("older")); err != nil {
					t.Fatal(err)
				}
				if _, err := tc.b.Get(ctx, key); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.b.(snapstore.FilePutter).PutFile(ctx, key, f); err != nil {
				t.Fatal(err)
			}
			got, err := tc.b.Get(ctx, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes (%v), not the %d put", len(got), err, len(data))
			}
			if size, err := s.Size(ctx, key); err != nil || size != int64(len(data)) {
				t.Fatalf("the object has %d bytes (%v), want %d", size, err, len(data))
			}
		})
	}
}

// TestPutFileIsFenced has a node that lost its lease refuse PutFile as it
// refuses Put.
func TestPutFileIsFenced(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	mine, theirs := remote(t, weed, "fenced-file"), remote(t, weed, "fenced-file")
	a, err := s3blobs.AcquireLease(ctx, mine, s3blobs.Holder{Node: "node-a"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx)
	takeOver(t, ctx, a, theirs)
	name := filepath.Join(t.TempDir(), "f.ltx")
	if err := os.WriteFile(name, []byte("ltx"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := mine.PutFile(ctx, "pitr/db1/l0/f.ltx", f); snapdeck.ErrorCode(err) != snapdeck.Conflict {
		t.Fatalf("PutFile by the node that lost the prefix: %v, want Conflict", err)
	}
	if _, err := theirs.Get(ctx, "pitr/db1/l0/f.ltx"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Fatalf("the fenced file: %v, want NotFound", err)
	}
}
