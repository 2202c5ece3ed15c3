package pitr

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/superfly/ltx"
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
// its file has been read whole. A level-0 file is stored all the same, so
// that Litestream's close, which then uploads it again, finds it there. A
// compacted file is not: a stop for a swap does not wait for the store of
// a file as large as the database, which the next compaction makes again.
func TestWriteLTXFileStoresAFileReadWhole(t *testing.T) {
	for _, c := range []struct {
		level int
		kept  bool
	}{{0, true}, {1, false}} {
		file, cl := onePageLTX(t), localClient(t)
		ctx, cancel := context.WithCancel(context.Background())
		_, err := cl.WriteLTXFile(ctx, c.level, 1, 1, cancelAtEOF{bytes.NewReader(file.Bytes()), cancel})
		cancel()
		infos, _, lerr := cl.list(context.Background(), c.level, 0)
		if lerr != nil {
			t.Fatal(lerr)
		}
		switch {
		case c.kept && (err != nil || len(infos) != 1 || infos[0].Size != int64(file.Len())):
			t.Errorf("level %d: stored %v (%v), want the one file of %d bytes", c.level, infos, err, file.Len())
		case !c.kept && (err == nil || len(infos) != 0):
			t.Errorf("level %d: stored %v (%v), want nothing and the context's error", c.level, infos, err)
		}
	}
}

// onePageLTX is a level-0 LTX file of one transaction (TXID 1) that
// writes one zeroed page of 4 KiB.
func onePageLTX(t *testing.T) *bytes.Buffer {
	t.Helper()
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
	return &file
}

// localClient is the ReplicaClient of database db1 over a local store in
// a temporary directory.
func localClient(t *testing.T) *Client {
	t.Helper()
	return NewClient(localBlobs(t, t.TempDir()), "db1", nil)
}
