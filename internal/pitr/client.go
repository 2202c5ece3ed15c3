package pitr

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// KeyPrefix is where every point-in-time file lives in the snapshot
// store's blobs; a database's files are under KeyPrefix + its id + "/".
const KeyPrefix = "pitr/"

// Client is a litestream.ReplicaClient that keeps one database's LTX files
// in snapdeck's storage seam (snapstore.Blobs), so that they follow the
// snapshots wherever those are kept. A file's key carries what Litestream
// asks of a listing, so a listing reads no file:
//
//	pitr/<database id>/l<level>/<min txid>-<max txid>-<created, unix ms>-<size>.ltx
//
// The creation time is the LTX header's timestamp: when Litestream read
// the transactions from the WAL, which is what a restore to a time compares.
type Client struct {
	blobs  snapstore.Blobs
	prefix string
	logger *slog.Logger

	// mu guards keys: the key of each file by level and TXID range, as
	// the last listing of its level and the writes since saw them, so
	// that opening a file lists nothing (a restore opens hundreds).
	mu   sync.Mutex
	keys map[fileRange]string
}

// fileRange names one file: its level and TXID range.
type fileRange struct {
	level            int
	minTXID, maxTXID ltx.TXID
}

var _ litestream.ReplicaClient = (*Client)(nil)

// NewClient returns the client of database dbID's files in blobs.
func NewClient(blobs snapstore.Blobs, dbID string, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{blobs: blobs, prefix: KeyPrefix + dbID + "/", logger: logger, keys: map[fileRange]string{}}
}

// Type names the client for Litestream's logs.
func (c *Client) Type() string { return "snapdeck" }

// Init needs nothing: the blobs are ready.
func (c *Client) Init(context.Context) error { return nil }

// SetLogger sets the logger.
func (c *Client) SetLogger(logger *slog.Logger) { c.logger = logger }

func (c *Client) levelPrefix(level int) string {
	return c.prefix + "l" + strconv.Itoa(level) + "/"
}

// fileKey is the key of one LTX file.
func (c *Client) fileKey(info *ltx.FileInfo) string {
	return fmt.Sprintf("%s%s-%s-%d-%d.ltx", c.levelPrefix(info.Level), info.MinTXID, info.MaxTXID, info.CreatedAt.UnixMilli(), info.Size)
}

// parseKey reads a file's metadata back from its key; ok is false for a
// key that is not an LTX file of level.
func parseKey(key, levelPrefix string, level int) (*ltx.FileInfo, bool) {
	name, found := strings.CutPrefix(key, levelPrefix)
	if !found || strings.Contains(name, "/") {
		return nil, false
	}
	name, found = strings.CutSuffix(name, ".ltx")
	parts := strings.Split(name, "-")
	if !found || len(parts) != 4 {
		return nil, false
	}
	minTXID, err1 := ltx.ParseTXID(parts[0])
	maxTXID, err2 := ltx.ParseTXID(parts[1])
	ms, err3 := strconv.ParseInt(parts[2], 10, 64)
	size, err4 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return nil, false
	}
	return &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: size, CreatedAt: time.UnixMilli(ms).UTC()}, true
}

// list returns the files of a level from seek on, one per TXID range: a
// range written twice (an upload repeated after a crash) counts once, the
// later copy.
func (c *Client) list(ctx context.Context, level int, seek ltx.TXID) ([]*ltx.FileInfo, map[[2]ltx.TXID][]string, error) {
	lp := c.levelPrefix(level)
	byRange := map[[2]ltx.TXID]*ltx.FileInfo{}
	keys := map[[2]ltx.TXID][]string{}
	err := snapstore.ListPrefix(ctx, c.blobs, lp, func(key string) error {
		info, ok := parseKey(key, lp, level)
		if !ok || info.MinTXID < seek {
			return nil
		}
		r := [2]ltx.TXID{info.MinTXID, info.MaxTXID}
		keys[r] = append(keys[r], key)
		if prev, ok := byRange[r]; !ok || info.CreatedAt.After(prev.CreatedAt) {
			byRange[r] = info
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	infos := make([]*ltx.FileInfo, 0, len(byRange))
	c.mu.Lock()
	defer c.mu.Unlock()
	for fr := range c.keys {
		if fr.level == level && fr.minTXID >= seek {
			delete(c.keys, fr)
		}
	}
	for _, info := range byRange {
		infos = append(infos, info)
		c.keys[fileRange{level, info.MinTXID, info.MaxTXID}] = c.fileKey(info)
	}
	return infos, keys, nil
}

// LTXFiles lists the files of a level in TXID order, from seek on. The
// creation time comes from the key, exact either way, so useMetadata
// changes nothing.
func (c *Client) LTXFiles(ctx context.Context, level int, seek ltx.TXID, useMetadata bool) (ltx.FileIterator, error) {
	infos, _, err := c.list(ctx, level, seek)
	if err != nil {
		return nil, err
	}
	return ltx.NewFileInfoSliceIterator(infos), nil
}

// find returns the key of the file of a level holding exactly
// minTXID..maxTXID: the one last seen, else the one a listing finds.
func (c *Client) find(ctx context.Context, level int, minTXID, maxTXID ltx.TXID) (string, error) {
	c.mu.Lock()
	key, ok := c.keys[fileRange{level, minTXID, maxTXID}]
	c.mu.Unlock()
	if ok {
		return key, nil
	}
	infos, _, err := c.list(ctx, level, minTXID)
	if err != nil {
		return "", err
	}
	for _, info := range infos {
		if info.MinTXID == minTXID && info.MaxTXID == maxTXID {
			return c.fileKey(info), nil
		}
	}
	return "", os.ErrNotExist
}

// OpenLTXFile returns a reader of a file, from offset on and size bytes
// long (the rest when size is 0). A missing file is os.ErrNotExist, as
// Litestream expects.
func (c *Client) OpenLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, offset, size int64) (io.ReadCloser, error) {
	key, err := c.find(ctx, level, minTXID, maxTXID)
	if err != nil {
		return nil, litestream.NewLTXError("open", key, level, uint64(minTXID), uint64(maxTXID), err)
	}
	info, parsed := parseKey(key, c.levelPrefix(level), level)
	if rg, ok := c.blobs.(snapstore.RangeGetter); ok && parsed {
		// Read in pieces rather than whole: a snapshot file is about
		// the size of the database.
		n := info.Size - offset
		if size > 0 && size < n {
			n = size
		}
		if n < 0 {
			return nil, fmt.Errorf("open ltx file %s: offset %d beyond its %d bytes", key, offset, info.Size)
		}
		return io.NopCloser(bufio.NewReaderSize(io.NewSectionReader(blobReaderAt{ctx, rg, key}, offset, n), readPiece)), nil
	}
	data, err := c.blobs.Get(ctx, key)
	if err != nil {
		return nil, notExist(err)
	}
	if offset > int64(len(data)) {
		return nil, fmt.Errorf("open ltx file %s: offset %d beyond its %d bytes", key, offset, len(data))
	}
	data = data[offset:]
	if size > 0 && size < int64(len(data)) {
		data = data[:size]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// readPiece is how much of an LTX file one read of the blobs takes.
const readPiece = 1 << 20

// blobReaderAt reads a blob through a RangeGetter.
type blobReaderAt struct {
	ctx context.Context
	rg  snapstore.RangeGetter
	key string
}

func (b blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := b.rg.GetRange(b.ctx, b.key, off, p); err != nil {
		return 0, notExist(err)
	}
	return len(p), nil
}

// notExist turns the blobs' NotFound into os.ErrNotExist.
func notExist(err error) error {
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return err
}

// WriteLTXFile stores a file durably under a key carrying its header's
// timestamp and its size, then removes an earlier copy of the same range.
// The whole file is held in memory: Blobs.Put takes bytes (a snapshot file
// is about the size of the database, compressed).
func (c *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	hdr, _, err := ltx.PeekHeader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read the header of ltx file %s-%s: %w", minTXID, maxTXID, err)
	}
	info := &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: int64(len(data)),
		CreatedAt: time.UnixMilli(hdr.Timestamp).UTC()}
	key := c.fileKey(info)
	_, keys, err := c.list(ctx, level, minTXID)
	if err != nil {
		return nil, err
	}
	if err := c.blobs.Put(ctx, key, data); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.keys[fileRange{level, minTXID, maxTXID}] = key
	c.mu.Unlock()
	for _, old := range keys[[2]ltx.TXID{minTXID, maxTXID}] {
		if old != key {
			if err := c.blobs.Delete(ctx, old); err != nil {
				c.logger.Warn("remove an earlier copy of an ltx file", "key", old, "err", err)
			}
		}
	}
	return info, nil
}

// DeleteLTXFiles deletes files, every copy of each range.
func (c *Client) DeleteLTXFiles(ctx context.Context, a []*ltx.FileInfo) error {
	byLevel := map[int][]*ltx.FileInfo{}
	for _, info := range a {
		byLevel[info.Level] = append(byLevel[info.Level], info)
	}
	for level, infos := range byLevel {
		_, keys, err := c.list(ctx, level, 0)
		if err != nil {
			return err
		}
		for _, info := range infos {
			for _, key := range keys[[2]ltx.TXID{info.MinTXID, info.MaxTXID}] {
				if err := c.blobs.Delete(ctx, key); err != nil {
					return err
				}
			}
			c.mu.Lock()
			delete(c.keys, fileRange{level, info.MinTXID, info.MaxTXID})
			c.mu.Unlock()
		}
	}
	return nil
}

// DeleteAll deletes every file of the database.
func (c *Client) DeleteAll(ctx context.Context) error {
	var keys []string
	if err := snapstore.ListPrefix(ctx, c.blobs, c.prefix, func(key string) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		return err
	}
	for _, key := range keys {
		if err := c.blobs.Delete(ctx, key); err != nil {
			return err
		}
	}
	c.mu.Lock()
	clear(c.keys)
	c.mu.Unlock()
	return nil
}

// Bytes is how many bytes the database's files take.
func (c *Client) Bytes(ctx context.Context) (int64, error) {
	var n int64
	err := snapstore.ListPrefix(ctx, c.blobs, c.prefix, func(key string) error {
		if i := strings.LastIndex(key, "-"); i > 0 {
			size, _ := strconv.ParseInt(strings.TrimSuffix(key[i+1:], ".ltx"), 10, 64)
			n += size
		}
		return nil
	})
	return n, err
}
