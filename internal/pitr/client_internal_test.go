package pitr

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/superfly/ltx"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// cancelAtEOF cancels its context once its reader is read to the end, as
// Litestream's close does to an upload under way.
type cancelAtEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelAtEOF) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

// TestWriteLTXFileStoresAFileReadWhole cancels an upload's context when
// its file has been read whole: the file is stored all the same, so that
// Litestream's close, which then uploads it again, finds it there.
func TestWriteLTXFileStoresAFileReadWhole(t *testing.T) {
	var file bytes.Buffer
	enc, err := ltx.NewEncoder(&file)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodeHeader(ltx.Header{Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: 4096, Commit: 1,
		MinTXID: 1, MaxTXID: 1, Timestamp: time.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	if err := enc.EncodePage(ltx.PageHeader{Pgno: 1}, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	blobs, err := snapstore.NewLocal(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(blobs, "db1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.WriteLTXFile(ctx, 0, 1, 1, cancelAtEOF{bytes.NewReader(file.Bytes()), cancel}); err != nil {
		t.Fatalf("write with its context cancelled once read: %v", err)
	}
	infos, _, err := c.list(context.Background(), 0, 0)
	if err != nil || len(infos) != 1 || infos[0].Size != int64(file.Len()) {
		t.Fatalf("stored %v (%v), want the one file of %d bytes", infos, err, file.Len())
	}
}
