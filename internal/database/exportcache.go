package database

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultExportCacheSize is how much disk prepared exports may take when
// Snapshots.ExportCacheSize is zero: about ten exports of a 200 MiB
// database, while 26 exports once took 4.8 GB with no cap at all.
const DefaultExportCacheSize = 2 << 30

// dumpExt ends the name of every prepared export; files being written
// have other names and are never removed by the cache.
const dumpExt = ".dump"

// exportCache keeps the prepared .dump files of one directory: under a cap
// on their total size (the oldest prepared go first) and for at most a
// time to live. It never removes a file a download is reading: every
// download holds a lease on its file until it ends. Files being prepared
// count towards the size but are never removed.
//
// The cap can be passed only by files under lease: a download of an
// export larger than the cap is served, and the file goes when the
// download ends.
type exportCache struct {
	dir    string
	limit  int64
	ttl    time.Duration
	now    func() time.Time
	logger *slog.Logger

	// mu guards leases and every change to the directory's .dump files.
	mu     sync.Mutex
	leases map[string]int // file name -> downloads reading it
}

// Export is a prepared .dump opened for one download. Close ends the
// download, and with it the file's lease.
type Export struct {
	*os.File
	// Name is the download's file name, e.g. orders-20260102T030405Z.dump.
	Name string
	// ModTime is when the export was prepared.
	ModTime time.Time
	// JobID is the job preparing an export that is not prepared yet.
	JobID string

	once    sync.Once
	release func()

	// following is the preparation this export is still being written
	// by, nil once it is prepared; off is how far a follower has read.
	following *preparation
	reader    *followReader
	off       int64
}

// Prepared reports whether the export is whole: it then has a size and
// can be read from anywhere. Otherwise it is read once, from its start, as
// it is written, and its size is known only at the end.
func (e *Export) Prepared() bool { return e.following == nil }

// WriteTo copies the export to w: a prepared one with the file's own
// WriteTo (sendfile where it can), one being prepared as it is handed
// over, from the preparation's memory without a copy.
func (e *Export) WriteTo(w io.Writer) (int64, error) {
	if e.following == nil {
		return e.File.WriteTo(w)
	}
	// For the reads of the file by a download that fell behind: io.Copy's
	// 32 KiB made 32,768 reads and writes per GiB.
	buf := make([]byte, followBufferSize)
	var total int64
	for {
		b, err := e.following.next(e.reader, e.File, buf, e.off)
		if len(b) > 0 {
			n, werr := w.Write(b)
			e.off += int64(n)
			total += int64(n)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// followBufferSize is how much of a followed export one read of the file
// hands over.
const followBufferSize = 1 << 20

// Wait waits until an export being prepared is whole, and from then on it
// reads as a prepared one, from where its reader was. It returns the
// preparation's error if that failed.
func (e *Export) Wait() error {
	if e.following == nil {
		return nil
	}
	e.following.leave(e.reader)
	if err := e.following.wait(); err != nil {
		return err
	}
	fi, err := e.File.Stat()
	if err != nil {
		return err
	}
	if _, err := e.File.Seek(e.off, io.SeekStart); err != nil {
		return err
	}
	e.following, e.ModTime = nil, fi.ModTime()
	return nil
}

// Read reads the export; one still being prepared is read as it is
// written, and a failure of its preparation ends the read in an error.
func (e *Export) Read(b []byte) (int, error) {
	if e.following == nil {
		return e.File.Read(b)
	}
	got, err := e.following.next(e.reader, e.File, b, e.off)
	n := copy(b, got)
	e.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Close closes the file and ends its lease.
func (e *Export) Close() error {
	if e.following != nil {
		e.following.leave(e.reader)
	}
	err := e.File.Close()
	e.once.Do(e.release)
	return err
}

// open returns the prepared file of name under a new lease, or false when
// there is none fresh enough.
func (c *exportCache) open(name, download string) (*Export, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.Open(c.path(name))
	if err != nil {
		return nil, false
	}
	fi, err := f.Stat()
	if err != nil || c.now().Sub(fi.ModTime()) >= c.ttl {
		f.Close()
		return nil, false
	}
	return c.lease(f, name, download, fi.ModTime()), true
}

// path is where the prepared export name is kept.
func (c *exportCache) path(name string) string { return filepath.Join(c.dir, name) }

// install moves a written export, tmp, into place as name and returns it
// under a lease; then it trims the cache back under its cap.
func (c *exportCache) install(tmp, name, download string) (*Export, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	path := c.path(name)
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	e := c.lease(f, name, download, fi.ModTime())
	c.trim(0)
	return e, nil
}

// lease counts one more download of name; c.mu is held.
func (c *exportCache) lease(f *os.File, name, download string, mod time.Time) *Export {
	return &Export{File: f, Name: download, ModTime: mod, release: c.holdLocked(name)}
}

// holdLocked counts one more download of name, which need not exist yet
// (a download that follows its preparation), and returns what ends it;
// c.mu is held.
func (c *exportCache) holdLocked(name string) func() {
	c.leases[name]++
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.leases[name]--; c.leases[name] <= 0 {
			delete(c.leases, name)
			// What was kept past the cap for this download goes now.
			c.trim(0)
		}
	}
}

// hold is holdLocked for callers that do not hold c.mu.
func (c *exportCache) hold(name string) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holdLocked(name)
}

// makeRoom removes the oldest exports until need more bytes fit under the
// cap, or only leased ones are left.
func (c *exportCache) makeRoom(need int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trim(need)
}

// cached is one file in the export directory.
type cached struct {
	name string
	size int64
	mod  time.Time
}

// trim removes unleased exports, oldest first, until the directory plus
// need bytes is under the cap; c.mu is held.
func (c *exportCache) trim(need int64) {
	files, used := c.list()
	for _, f := range files {
		if used+need <= c.limit {
			return
		}
		if c.remove(f) {
			used -= f.size
			c.logger.Info("prepared export removed to stay under the export cache size", "snapshot_id",
				strings.TrimSuffix(f.name, dumpExt), "bytes", f.size, "cache_size", c.limit)
		}
	}
}

// expire removes the unleased exports older than the time to live, and
// files left by preparations that ended without cleaning up.
func (c *exportCache) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		fi, err := e.Info()
		if err == nil && c.now().Sub(fi.ModTime()) > c.ttl {
			c.remove(cached{name: e.Name()})
		}
	}
}

// list returns the prepared exports, oldest first, and the bytes the whole
// directory takes; c.mu is held.
func (c *exportCache) list() ([]cached, int64) {
	entries, _ := os.ReadDir(c.dir)
	var files []cached
	var used int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		used += fi.Size()
		if strings.HasSuffix(e.Name(), dumpExt) {
			files = append(files, cached{name: e.Name(), size: fi.Size(), mod: fi.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b cached) int { return a.mod.Compare(b.mod) })
	return files, used
}

// remove deletes an unleased file; c.mu is held.
func (c *exportCache) remove(f cached) bool {
	if c.leases[f.name] > 0 {
		return false
	}
	if err := os.Remove(c.path(f.name)); err != nil && !os.IsNotExist(err) {
		c.logger.Warn("remove prepared export", "file", f.name, "err", err)
		return false
	}
	return true
}
