package pitr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

	// filesMu guards files: every file of the database in the blobs, by
	// key, from one listing of them all (loadFiles), then kept by this
	// client's own writes and deletes, the only ones under its prefix (the
	// replicator's uploads, its compactions, their retention and Drop all
	// go through it). The window's start and the history's size
	// (Replicators.Earliest and Bytes) are read from it: the SNAPSHOTS
	// tab, the restore form and every row of the database list ask for
	// them, and with a week of history on S3 each ask listed thousands of
	// keys. nil until loaded; filesMu is held through the listing, so
	// that a write meanwhile is added after it.
	filesMu sync.Mutex
	files   map[string]*ltx.FileInfo
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

// parseAnyKey reads a file's metadata back from a key under prefix, of
// any level.
func parseAnyKey(key, prefix string) (*ltx.FileInfo, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	dir, _, found := strings.Cut(rest, "/")
	if !ok || !found || !strings.HasPrefix(dir, "l") {
		return nil, false
	}
	level, err := strconv.Atoi(dir[1:])
	if err != nil {
		return nil, false
	}
	return parseKey(key, prefix+dir+"/", level)
}

// withFiles calls fn with every file of the database, listing the blobs
// the first time only.
func (c *Client) withFiles(ctx context.Context, fn func(files map[string]*ltx.FileInfo)) error {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	if c.files == nil {
		files := map[string]*ltx.FileInfo{}
		if err := snapstore.ListPrefix(ctx, c.blobs, c.prefix, func(key string) error {
			if info, ok := parseAnyKey(key, c.prefix); ok {
				files[key] = info
			}
			return nil
		}); err != nil {
			return err
		}
		c.files = files
	}
	fn(c.files)
	return nil
}

// fileStored and fileDeleted keep the files, once loaded, as the blobs
// are after a write or a delete of key.
func (c *Client) fileStored(key string, info *ltx.FileInfo) {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	if c.files != nil {
		c.files[key] = info
	}
}

func (c *Client) fileDeleted(key string) {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	delete(c.files, key)
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
		// A buffer no larger than what is read: a restore plan may hold
		// hundreds of level-0 files of a few KiB, and a page index is
		// read from a file's last KiBs.
		return io.NopCloser(bufio.NewReaderSize(io.NewSectionReader(blobReaderAt{ctx, rg, key}, offset, n), int(min(readPiece, max(n, 16))))), nil
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
//
// A level-0 file comes as Litestream's local copy, an *os.File (after a
// swap of a database, one about the database's size): when the blobs are a
// snapstore.FilePutter they take the file itself (local blobs by hard
// link, S3 streamed from it), without reading it here. Otherwise the whole
// file is held in memory: Blobs.Put takes bytes. A compaction's file comes
// as a reader and is read at the rate its context carries
// (Replicators.compactLevel), so the compaction producing it goes no
// faster.
func (c *Client) WriteLTXFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, r io.Reader) (*ltx.FileInfo, error) {
	start := time.Now()
	if f, ok := r.(*os.File); ok {
		if fp, ok := c.blobs.(snapstore.FilePutter); ok {
			return c.writeFile(ctx, level, minTXID, maxTXID, f, fp, start)
		}
	}
	data, err := readAll(ctx, paced(ctx, r), r)
	if err != nil {
		return nil, err
	}
	// A compaction read whole gives way to the console's jobs once more
	// before it writes: its file can be the size of the database, and a
	// write of 1 GiB through the page cache took about 1.4 CPU-seconds on
	// the benchmark machine, which landed in whatever step of
	// BenchmarkConsole ran then (docs/benchmarks.md, set N).
	if p, ok := ctx.Value(paceKey{}).(pace); ok && p.giveWay != nil {
		p.giveWay(ctx)
	}
	// Read whole, a level-0 file is stored even if ctx ends meanwhile:
	// when Litestream closes a database (a swap, a stop) it cancels the
	// upload under way and then uploads the same file again from the
	// start, so stopping here would only write it twice. A compacted file
	// (a compaction's, or a snapshot's) is not: its inputs stay, the next
	// compaction makes it again, and a stop for a swap (a restore) would
	// otherwise wait for the store of a file as large as the database (a
	// second per GiB here, half a minute on S3).
	if level == 0 {
		ctx = context.WithoutCancel(ctx)
	}
	hdr, _, err := ltx.PeekHeader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read the header of ltx file %s-%s: %w", minTXID, maxTXID, err)
	}
	info := &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: int64(len(data)),
		CreatedAt: time.UnixMilli(hdr.Timestamp).UTC()}
	return c.store(ctx, info, start, func(key string) error { return c.blobs.Put(ctx, key, data) })
}

// writeFile stores Litestream's local file f through fp, its header read
// from the file and its size from Stat. It is stored even if ctx ends, as
// a file read whole is (WriteLTXFile): the file is already whole on disk,
// and Litestream's close would only upload it again.
func (c *Client) writeFile(ctx context.Context, level int, minTXID, maxTXID ltx.TXID, f *os.File, fp snapstore.FilePutter, start time.Time) (*ltx.FileInfo, error) {
	ctx = context.WithoutCancel(ctx)
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ltx file %s-%s: %w", minTXID, maxTXID, err)
	}
	hdr, _, err := ltx.PeekHeader(io.NewSectionReader(f, 0, fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("read the header of ltx file %s-%s: %w", minTXID, maxTXID, err)
	}
	info := &ltx.FileInfo{Level: level, MinTXID: minTXID, MaxTXID: maxTXID, Size: fi.Size(),
		CreatedAt: time.UnixMilli(hdr.Timestamp).UTC()}
	return c.store(ctx, info, start, func(key string) error { return fp.PutFile(ctx, key, f) })
}

// store puts a file under its key through put, then removes the earlier
// copies of its range.
func (c *Client) store(ctx context.Context, info *ltx.FileInfo, start time.Time, put func(key string) error) (*ltx.FileInfo, error) {
	level, minTXID, maxTXID := info.Level, info.MinTXID, info.MaxTXID
	key := c.fileKey(info)
	_, keys, err := c.list(ctx, level, minTXID)
	if err != nil {
		return nil, err
	}
	c.logger.Debug("ltx file storing", "level", level, "min_txid", minTXID.String(), "max_txid", maxTXID.String(),
		"bytes", info.Size, "read_in", time.Since(start))
	if err := put(key); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.keys[fileRange{level, minTXID, maxTXID}] = key
	c.mu.Unlock()
	c.fileStored(key, info)
	c.logger.Debug("ltx file stored", "level", level, "min_txid", minTXID.String(), "max_txid", maxTXID.String(),
		"bytes", info.Size, "took", time.Since(start))
	for _, old := range keys[[2]ltx.TXID{minTXID, maxTXID}] {
		if old != key {
			if err := c.blobs.Delete(ctx, old); err != nil {
				c.logger.Warn("remove an earlier copy of an ltx file", "key", old, "err", err)
			} else {
				c.fileDeleted(old)
			}
		}
	}
	return info, nil
}

// readAll reads r whole into a buffer made, at once, the size expected:
// that of src when it is a file (an upload of level 0: after a swap, the
// whole database), else the size ctx carries (a compaction's, the sum of
// its inputs). io.ReadAll grows its buffer by a quarter at a time from
// 512 bytes, which for a file of 1 GiB copies about four times its size
// and holds twice it until the collector runs.
func readAll(ctx context.Context, r, src io.Reader) ([]byte, error) {
	size, _ := ctx.Value(sizeKey{}).(int64)
	if f, ok := src.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	// A little more, so that a file that grew, or a compaction's headers,
	// need not grow the buffer.
	buf := make([]byte, 0, size+64<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		} else if err != nil {
			return nil, err
		}
	}
}

// sizeKey carries, in a compaction's context, the size of the file it
// writes, as far as is known before: the sum of its inputs' sizes.
type sizeKey struct{}

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
				c.fileDeleted(key)
			}
			c.mu.Lock()
			delete(c.keys, fileRange{level, info.MinTXID, info.MaxTXID})
			c.mu.Unlock()
		}
	}
	return nil
}

// DeleteAll deletes every file of the database, whatever the blobs hold
// under its prefix (listed afresh, not taken from the files kept).
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
		c.fileDeleted(key)
	}
	c.mu.Lock()
	clear(c.keys)
	c.mu.Unlock()
	return nil
}

// Bytes is how many bytes the database's files take.
func (c *Client) Bytes(ctx context.Context) (int64, error) {
	var n int64
	err := c.withFiles(ctx, func(files map[string]*ltx.FileInfo) {
		for _, info := range files {
			n += info.Size
		}
	})
	return n, err
}

// Earliest is the creation time of the oldest file that can start a
// restore (Replicators.Earliest says which), and false when there is
// none.
func (c *Client) Earliest(ctx context.Context) (time.Time, bool, error) {
	var earliest time.Time
	err := c.withFiles(ctx, func(files map[string]*ltx.FileInfo) {
		// A range written twice counts as its later copy, as list and so
		// a restore's plan take it.
		byRange := map[fileRange]*ltx.FileInfo{}
		for _, info := range files {
			fr := fileRange{info.Level, info.MinTXID, info.MaxTXID}
			if prev, ok := byRange[fr]; !ok || info.CreatedAt.After(prev.CreatedAt) {
				byRange[fr] = info
			}
		}
		for _, info := range byRange {
			starts := info.Level == litestream.SnapshotLevel || (info.Level <= 1 && info.MinTXID == 1)
			if starts && (earliest.IsZero() || info.CreatedAt.Before(earliest)) {
				earliest = info.CreatedAt
			}
		}
	})
	return earliest, !earliest.IsZero() && err == nil, err
}
