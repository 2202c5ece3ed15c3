package snapstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/snapdeck/snapdeck/internal/durable"
)

// PutFile stores f's file under key durably (FilePutter) without copying
// it when it can: f is fsynced, hard-linked to a temporary name next to
// the blob, renamed into place, and the directory fsynced. The blob and
// the caller's file are then one file on disk, so the caller must never
// write to it again (FilePutter's contract). Where linking fails (f on
// another filesystem, EXDEV; a filesystem without hard links, EPERM; f's
// name already removed or replaced) PutFile copies f's content instead,
// as Put writes data.
//
// The one caller, point-in-time replication, hands Litestream's local
// level-0 files, which Litestream never changes once they have their name
// (Litestream v0.5.18, db.go): it writes each to "<name>.tmp", fsyncs it
// and renames it into place (DB.sync, and the fetch of a replica's newest
// file); every later open of one is os.Open, read only (the position, the
// WAL check, the replica upload); and it removes them with os.Remove or
// os.RemoveAll (retention, DB.ResetLocalState), as pruneLocalCopy in
// internal/pitr does. A rename of a new file over the same name replaces
// the name, not the linked file. So the link's content never changes after
// PutFile; removing the local name only removes a name, and the disk space
// is the store's from then on.
func (l *Local) PutFile(ctx context.Context, key string, f *os.File) error {
	path, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("put blob %s from %s: %w", key, f.Name(), err) }
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(errors.New("not a regular file"))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fail(err)
	}
	tmp, err := linkTemp(path, f, fi)
	if err != nil {
		// Not linkable here: copy, as Put would write it.
		tmp, err = copyTemp(path, f, fi.Size())
	}
	if err != nil {
		return fail(err)
	}
	fault("putfile:staged")
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	l.files.forget(key) // renamed over: a later read opens the new file
	// A rename between two names of the same file (the same file put
	// twice under a key) leaves both: the temporary one goes here.
	os.Remove(tmp)
	fault("putfile:renamed")
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	return nil
}

// tempName returns a new temporary name next to path.
func tempName(path string) string {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return path + "." + hex.EncodeToString(rnd[:]) + tmpSuffix
}

// linkTemp fsyncs f (the link shares its data, which must be durable
// before the blob has a name) and hard-links it to a new temporary name
// next to path, which it returns. The link is made by f's name, so it
// checks that the name still led to f's file; otherwise it removes the
// link and fails.
func linkTemp(path string, f *os.File, fi os.FileInfo) (string, error) {
	if err := f.Sync(); err != nil {
		return "", err
	}
	tmp := tempName(path)
	if err := os.Link(f.Name(), tmp); err != nil {
		return "", err
	}
	if ti, err := os.Stat(tmp); err != nil || !os.SameFile(fi, ti) || ti.Size() != fi.Size() {
		os.Remove(tmp)
		return "", fmt.Errorf("%s is no longer the file put", f.Name())
	}
	return tmp, nil
}

// copyTemp writes the first size bytes of f to a new temporary file next
// to path, fsynced, and returns its name; a file shorter than size is an
// error, never a shorter blob.
func copyTemp(path string, f *os.File, size int64) (string, error) {
	return fillTemp(path, func(out *os.File) error {
		buf := make([]byte, blobWriteSize)
		n, err := io.CopyBuffer(struct{ io.Writer }{out}, io.NewSectionReader(f, 0, size), buf)
		if err == nil && n != size {
			err = fmt.Errorf("copied %d of its %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return err
		}
		return out.Sync()
	})
}

var _ FilePutter = (*Local)(nil)
