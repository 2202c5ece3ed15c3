package pitr

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// ltxFile writes an LTX file of pages random pages at dir/name, as
// Litestream's local copy, and returns it open for reading, its content
// and its header's timestamp.
func ltxFile(t *testing.T, dir string, pages int) (*os.File, []byte, time.Time) {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ltx.NewEncoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
	if err := enc.EncodeHeader(ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096, Commit: uint32(pages),
		MinTXID: 1, MaxTXID: 1, Timestamp: ts.UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for pgno := 1; pgno <= pages; pgno++ {
		rand.Read(page)
		if err := enc.EncodePage(ltx.PageHeader{Pgno: uint32(pgno)}, page); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, ltx.FormatFilename(1, 1))
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, buf.Bytes(), ts
}

// readBack opens the file of range 1-1 of level 0 through c and fails
// unless it is exactly want.
func readBack(t *testing.T, c *Client, want []byte) {
	t.Helper()
	rc, err := c.OpenLTXFile(context.Background(), 0, 1, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (%v), not the %d written", len(got), err, len(want))
	}
}

// plainBlobs hides every optional interface of the blobs it holds: Put
// only, as a store without FilePutter.
type plainBlobs struct{ snapstore.Blobs }

// TestWriteLTXFileTakesLocalFilesWhole stores Litestream's local level-0
// file as it comes, an *os.File: through local blobs it is the same file
// (a link) with the header's time and the file's size in its key, readable
// after the local copy is removed; through blobs without FilePutter it is
// read and put as before. Either way it reads back identical.
func TestWriteLTXFileTakesLocalFilesWhole(t *testing.T) {
	for _, linked := range []bool{true, false} {
		name := map[bool]string{true: "linked", false: "put"}[linked]
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			local, err := snapstore.NewLocal(filepath.Join(root, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			var blobs snapstore.Blobs = local
			if !linked {
				blobs = plainBlobs{local}
			}
			c := NewClient(blobs, "db1", nil)
			f, data, ts := ltxFile(t, root, 300)
			if linked {
				// The file is taken from its start, wherever its offset is.
				f.Read(make([]byte, 10))
			}
			info, err := c.WriteLTXFile(context.Background(), 0, 1, 1, f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(data)) || !info.CreatedAt.Equal(ts) {
				t.Fatalf("stored as %d bytes created %s, want %d bytes created %s", info.Size, info.CreatedAt, len(data), ts)
			}
			fi, _ := f.Stat()
			bi, err := os.Stat(filepath.Join(root, "blobs", filepath.FromSlash(c.fileKey(info))))
			if err != nil {
				t.Fatal(err)
			}
			if os.SameFile(fi, bi) != linked {
				t.Fatalf("the blob is the local file: %v, want %v", os.SameFile(fi, bi), linked)
			}
			readBack(t, c, data)
			os.Remove(f.Name())
			readBack(t, NewClient(blobs, "db1", nil), data)
		})
	}
}

// TestWriteLTXFileOfACancelledUpload: a local file whose upload's context
// has ended is stored all the same, as a file read whole is
// (TestWriteLTXFileStoresAFileReadWhole): Litestream's close would upload
// it again.
func TestWriteLTXFileOfACancelledUpload(t *testing.T) {
	root := t.TempDir()
	blobs, err := snapstore.NewLocal(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(blobs, "db1", nil)
	f, data, _ := ltxFile(t, root, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, f); err != nil {
		t.Fatalf("write with its context cancelled: %v", err)
	}
	readBack(t, c, data)
}

// TestWriteLTXFileStreamsToS3 stores a level-0 file of several upload
// parts through the S3 store's cache, on a real SeaweedFS server, from
// the file, and reads it back identical after the local copy is gone.
func TestWriteLTXFileStreamsToS3(t *testing.T) {
	weed := s3test.Start(t)
	remote, err := s3blobs.New(s3blobs.Config{Bucket: weed.Bucket, Prefix: "pitr-stream", Endpoint: weed.Endpoint,
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cache, err := s3blobs.NewCache(remote, filepath.Join(root, "cache"), 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	c := NewClient(cache, "db1", nil)
	f, data, _ := ltxFile(t, root, 5000) // about 20 MiB: two parts
	info, err := c.WriteLTXFile(context.Background(), 0, 1, 1, f)
	if err != nil {
		t.Fatal(err)
	}
	if size, err := remote.Size(context.Background(), c.fileKey(info)); err != nil || size != int64(len(data)) {
		t.Fatalf("the object has %d bytes (%v), want %d", size, err, len(data))
	}
	os.Remove(f.Name())
	readBack(t, NewClient(cache, "db1", nil), data)
}
