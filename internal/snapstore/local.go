package snapstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/snapdeck/snapdeck/internal/directio"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Local is a Blobs on the local filesystem: one file per blob under a
// directory, written to a temporary name, fsynced, renamed into place and
// the directory fsynced, so a blob is durable and whole once Put returns.
// It keeps the files of recently read blobs open (handles.go); Close
// closes them.
type Local struct {
	dir   string
	files handles
}

// tmpSuffix marks files being written by Put; NewLocal removes leftovers of
// a crash, and List never shows them.
const tmpSuffix = ".tmp"

// NewLocal returns a Local keeping its blobs under dir, creating dir if
// needed and removing temporary files a crash left behind.
func NewLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot store directory: %w", err)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, tmpSuffix) {
			return os.Remove(path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("clean snapshot store directory: %w", err)
	}
	return &Local{dir: dir}, nil
}

func (l *Local) path(key string) (string, error) {
	if !validKey(key) {
		return "", snapdeck.Errorf(snapdeck.Invalid, "invalid blob key %q", key)
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

func validKey(key string) bool {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.HasSuffix(key, tmpSuffix) {
		return false
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '/') {
			return false
		}
	}
	return true
}

// Put writes data under key durably: temporary file, fsync, rename, fsync
// of the directory (a rename is not durable until its directory entry is).
func (l *Local) Put(ctx context.Context, key string, data []byte) error {
	path, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	tmp, err := fillTemp(path, func(f *os.File) error {
		if err := writeBehind(ctx, f, data); err != nil {
			return err
		}
		return f.Sync()
	})
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		l.files.forget(key) // renamed over: a later read opens the new file
		err = durable.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	return nil
}

// writeTemp writes data to a new temporary file next to path, calls
// finish on it before closing it, and returns its name. On error the file
// is removed.
func writeTemp(path string, data []byte, finish func(*os.File) error) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return fillTemp(path, func(f *os.File) error {
		for len(data) > 0 {
			n, err := f.Write(data[:min(len(data), blobWriteSize)])
			if err != nil {
				return err
			}
			data = data[n:]
		}
		return finish(f)
	})
}

// writeTempAround is writeTemp for a batch's blob (a capture's pack): the
// part of data that is aligned for it is written around the page cache
// (package directio), the short tail through it, and it returns once all
// of it has reached the disk, without an fsync.
//
// A capture writes a GiB of packs after a fill. Through the page cache the
// kernel copies every byte into memory it must first find, and on the
// benchmark machine, whose freed memory goes back to the host, that copy
// cost 1.1-1.3 CPU-seconds per GiB in the console (against 0.2 s when the
// memory was at hand): half the capture's CPU, on a machine of two cores.
// Written around the cache, the packs are not in it afterwards. The
// console verifies every snapshot in the background right after it is
// taken, reading its packs whole, which brings them into the cache for
// the next capture's delta bases and for restores, filled by the disk
// rather than copied by a core. Without that read (the engine's own
// benchmark) the next capture reads its bases from the disk: 1.0-1.3 s
// instead of 0.63 s after 1% of pages changed at 1 GiB. Reading them in
// from here (posix_fadvise WILLNEED after the commit) was tried: its
// gigabyte of reads queued ahead of the root's fsync made the capture
// itself 0.4-0.5 s slower.
func writeTempAround(path string, data []byte) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	var direct bool
	create := func(tmp string) (f *os.File, err error) {
		f, direct, err = directio.Create(tmp, 0o644)
		return f, err
	}
	return createTemp(path, create, func(f *os.File) error { return writeAround(f, direct, data) })
}

// writeAround writes data to f directly where f is direct and data
// aligned, and the rest through a second descriptor of f's file.
func writeAround(f *os.File, direct bool, data []byte) error {
	body := 0
	if direct {
		body = len(data) / directio.Align * directio.Align
		if body > 0 && !directio.Aligned(data[:body]) {
			body = 0
		}
	}
	for off := 0; off < body; {
		n, err := f.WriteAt(data[off:min(body, off+directWriteSize)], int64(off))
		if err != nil {
			return err
		}
		off += n
	}
	if body == len(data) {
		return nil
	}
	rest := f
	if direct {
		g, err := os.OpenFile(f.Name(), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer g.Close()
		rest = g
	}
	for off := body; off < len(data); {
		n, err := rest.WriteAt(data[off:min(len(data), off+blobWriteSize)], int64(off))
		if err != nil {
			return err
		}
		off += n
	}
	return writeOut(rest)
}

// directWriteSize is how much writeAround writes directly at once: on the
// benchmark machine's disk, 4 MiB direct writes ran at 2.4 GB/s, 128 KiB
// ones at 1 GB/s (dd, 1 GiB).
const directWriteSize = 4 << 20

// fillTemp creates a new temporary file next to path, calls fill on it
// before closing it, and returns its name. On error the file is removed.
func fillTemp(path string, fill func(*os.File) error) (string, error) {
	create := func(tmp string) (*os.File, error) {
		return os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	return createTemp(path, create, fill)
}

// createTemp is fillTemp with the temporary file made by create.
func createTemp(path string, create func(tmp string) (*os.File, error), fill func(*os.File) error) (string, error) {
	tmp := tempName(path)
	f, err := create(tmp)
	if err != nil {
		return "", err
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// blobWriteSize is how much writeTemp writes at once. On the benchmark
// machine a pack written in one 8 MiB write cost 120-840 ms of CPU per
// 256 MiB (mostly the kernel finding large pieces of memory for the page
// cache), in 128 KiB writes a steady 160 ms.
const blobWriteSize = 128 << 10

// writeBehindPiece is how much of a blob Put writes before it starts that
// piece's writeback (writeBehind): at most twice this is dirty at once.
// BenchmarkPutBesideSmallFsyncs, 256 MiB on the 2-core machine (shared):
// the worst fsync of a small file beside the put went from 225-305 ms
// (the blob written whole, then fsynced) to 49-162 ms; what is left is the
// disk's own cache flush, which each small fsync orders after the pieces
// already sent.
const writeBehindPiece = 1 << 20

// NewBatch starts a batch of blobs written to temporary files (which List
// never shows and NewLocal removes after a crash) and renamed into place by
// Commit.
func (l *Local) NewBatch() Batch { return &localBatch{l: l} }

// localBatch is Local's Batch. Put writes each blob to a temporary file and
// waits for its data to reach the disk without an fsync; Commit fsyncs them
// all (each fsync then has only metadata left, and the first one commits
// the journal for the others), renames them into place and fsyncs their
// directories once.
type localBatch struct {
	l     *Local
	mu    sync.Mutex
	files []stagedFile
}

type stagedFile struct{ key, tmp, path string }

// Put writes data to a temporary file for key.
func (b *localBatch) Put(ctx context.Context, key string, data []byte) error {
	path, err := b.l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := writeTempAround(path, data)
	if err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	b.mu.Lock()
	b.files = append(b.files, stagedFile{key: key, tmp: tmp, path: path})
	b.mu.Unlock()
	return nil
}

// Commit fsyncs every file, then renames them into place, then fsyncs
// their directories. A file is renamed only once its data is durable, so a
// crash at any point leaves each blob absent (a temporary file NewLocal
// removes) or whole under its key.
func (b *localBatch) Commit(ctx context.Context) error {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	fail := func(err error) error {
		for _, f := range files {
			os.Remove(f.tmp)
		}
		return fmt.Errorf("commit blobs: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := durable.Sync(f.tmp); err != nil {
			return fail(err)
		}
		fault("batch:synced")
	}
	dirs := make(map[string]bool)
	for i, f := range files {
		if err := os.Rename(f.tmp, f.path); err != nil {
			return fail(err)
		}
		files[i].tmp = "" // renamed: no longer ours to remove on failure
		b.l.files.forget(f.key)
		dirs[filepath.Dir(f.path)] = true
		fault("batch:renamed")
	}
	for dir := range dirs {
		if err := durable.SyncDir(dir); err != nil {
			return fmt.Errorf("commit blobs: %w", err)
		}
	}
	return nil
}

// Discard removes the temporary files of blobs not committed.
func (b *localBatch) Discard() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.files {
		os.Remove(f.tmp)
	}
	b.files = nil
}

// Get reads the whole blob under key.
func (l *Local) Get(ctx context.Context, key string) ([]byte, error) {
	path, err := l.path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &snapdeck.Error{Code: snapdeck.NotFound, Message: "blob " + key + " not found", Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, err)
	}
	return data, nil
}

// GetRange reads len(buf) bytes at off of the blob under key (off < 0:
// from the end), through the file kept open for key when there is one.
func (l *Local) GetRange(ctx context.Context, key string, off int64, buf []byte) error {
	path, err := l.path(key)
	if err != nil {
		return err
	}
	h, err := l.files.acquire(key, path)
	if errors.Is(err, fs.ErrNotExist) {
		return &snapdeck.Error{Code: snapdeck.NotFound, Message: "blob " + key + " not found", Err: err}
	}
	if err != nil {
		return fmt.Errorf("get blob %s: %w", key, err)
	}
	defer l.files.release(h)
	if off < 0 {
		off += h.size
		if off < 0 {
			return fmt.Errorf("get blob %s: range %d bytes from the end of a %d-byte blob", key, len(buf), h.size)
		}
	}
	if _, err := h.f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("get blob %s [%d, +%d): %w", key, off, len(buf), err)
	}
	return nil
}

// Delete removes the blob under key.
func (l *Local) Delete(ctx context.Context, key string) error {
	path, err := l.path(key)
	if err != nil {
		return err
	}
	// Forgotten before, so that a file nobody reads is closed before its
	// name goes, and after, for a read that opened it in between.
	l.files.forget(key)
	err = os.Remove(path)
	l.files.forget(key)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// Close closes the files kept open for reading (those in use as their
// reads end). The blobs stay usable: later reads open their file each
// time.
func (l *Local) Close() error {
	l.files.close()
	return nil
}

// List calls fn with every blob's key.
func (l *Local) List(ctx context.Context, fn func(key string) error) error {
	return l.walk(ctx, l.dir, fn)
}

// ListPrefix lists the keys under prefix, walking only the directory that
// holds them (PrefixLister).
func (l *Local) ListPrefix(ctx context.Context, prefix string, fn func(key string) error) error {
	root := l.dir
	if i := strings.LastIndex(prefix, "/"); i > 0 {
		root = filepath.Join(l.dir, filepath.FromSlash(prefix[:i]))
	}
	err := l.walk(ctx, root, func(key string) error {
		if strings.HasPrefix(key, prefix) {
			return fn(key)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing stored under the prefix yet
	}
	return err
}

// walk calls fn with the key of every blob under root, a directory of l.
func (l *Local) walk(ctx context.Context, root string, fn func(key string) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(path, tmpSuffix) {
			return nil
		}
		rel, err := filepath.Rel(l.dir, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !validKey(key) {
			return nil // not ours: leave foreign files alone
		}
		return fn(key)
	})
}
