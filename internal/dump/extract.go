package dump

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// maxTrailer bounds the zero padding accepted after the end-of-archive
// marker. GNU tar pads archives to 10 KiB records; 1 MiB is generous and
// still keeps a stream of zeros from being decompressed forever.
const maxTrailer = 1 << 20

// Messages shared by several checks. Each problem has its own message, so a
// user (and a test) can tell them apart.
const (
	msgTruncated = "the file ends early: it looks truncated (was a download or upload interrupted?)"
	msgDamaged   = "the compressed data is damaged: the file was changed or corrupted after it was written"
	msgExpected  = "a .dump holds only manifest.json, then database.sqlite"
)

// Extract reads a .dump from r and writes its database to dstPath.
//
// Everything is checked before Extract returns success: the zstd framing,
// the tar structure, the entry names, types and order, the manifest and its
// format version, the sizes, the decompressed-size limit, the SHA-256, the
// SQLite header and PRAGMA integrity_check. The image is written to a
// temporary file next to dstPath, fsynced, and renamed to dstPath only once
// it passed every check, so on failure nothing is left behind and an
// existing dstPath is untouched; on success an existing dstPath is replaced.
//
// A bad dump yields a *snapdeck.Error with code snapdeck.Invalid, or
// snapdeck.TooLarge when the image is over lim, whose message says what was
// wrong and what a .dump should be. Other errors (I/O, ctx) are returned as
// they are.
func Extract(ctx context.Context, r io.Reader, dstPath string, lim Limits) (Manifest, error) {
	// A stale write-ahead log next to the new file would be replayed over it
	// on the first open, corrupting it.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Lstat(dstPath + suffix); err == nil {
			return Manifest{}, &snapdeck.Error{Code: snapdeck.Conflict,
				Message: fmt.Sprintf("%s exists; remove it before extracting to %s", filepath.Base(dstPath+suffix), filepath.Base(dstPath))}
		}
	}
	dir, base := filepath.Split(dstPath)
	m, tmp, err := extractTemp(ctx, r, dir, base, lim, true)
	if err != nil {
		return Manifest{}, err
	}
	if err := os.Rename(tmp, dstPath); err != nil {
		os.Remove(tmp)
		return Manifest{}, fmt.Errorf("dump: %w", err)
	}
	// fsync the directory as well: a rename is not durable until its entry is.
	if err := durable.SyncDir(dir); err != nil {
		os.Remove(dstPath)
		return Manifest{}, fmt.Errorf("dump: %w", err)
	}
	return m, nil
}

// Verify checks a .dump from r as thoroughly as Extract does, using a
// temporary file in tmpDir that it removes before returning.
func Verify(ctx context.Context, r io.Reader, tmpDir string, lim Limits) (Manifest, error) {
	m, tmp, err := extractTemp(ctx, r, tmpDir, ImageName, lim, false)
	if err != nil {
		return Manifest{}, err
	}
	if err := os.Remove(tmp); err != nil {
		return Manifest{}, fmt.Errorf("dump: %w", err)
	}
	return m, nil
}

// Inspect reads the manifest of a .dump from r and checks it, with the
// header of the database.sqlite entry that follows (name, type and size),
// without reading the image itself. It is quick whatever the dump's size,
// and proves nothing about the image: use Verify for that.
func Inspect(r io.Reader) (Manifest, error) {
	// One decoder goroutine: only the first blocks are needed, so decoding
	// ahead would be wasted.
	s, err := openStream(context.Background(), r, 1)
	if err != nil {
		return Manifest{}, err
	}
	defer s.close()
	m, err := s.readManifest()
	if err != nil {
		return Manifest{}, err
	}
	if _, err := s.imageEntry(m, -1); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// extractTemp does Extract's work into a new temporary file in dir and
// returns its name. sync says whether to fsync it.
func extractTemp(ctx context.Context, r io.Reader, dir, base string, lim Limits, sync bool) (_ Manifest, _ string, err error) {
	s, err := openStream(ctx, r, 2)
	if err != nil {
		return Manifest{}, "", err
	}
	defer s.close()
	m, err := s.readManifest()
	if err != nil {
		return Manifest{}, "", err
	}
	limit := lim.maxImageSize()
	if m.Size > limit {
		return Manifest{}, "", &snapdeck.Error{Code: snapdeck.TooLarge,
			Message: fmt.Sprintf("the database in this dump is %s (manifest.json), over the limit of %s", bytesize.Format(m.Size), bytesize.Format(limit))}
	}
	hdr, err := s.imageEntry(m, limit)
	if err != nil {
		return Manifest{}, "", err
	}
	// The header says how large the database is: a body that does not fit
	// it (a gigabyte of zeros behind a small manifest) is refused before
	// a byte of it is written.
	first, err := s.readHeader(hdr.Size)
	if err != nil {
		return Manifest{}, "", err
	}
	if err := checkImageHeader(first, hdr.Size, m); err != nil {
		return Manifest{}, "", err
	}

	f, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return Manifest{}, "", fmt.Errorf("dump: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum, err := s.copyImage(f, first, hdr.Size)
	if err != nil {
		return Manifest{}, "", err
	}
	if err := s.end(); err != nil {
		return Manifest{}, "", err
	}
	// The checksum is compared only once the stream has been read to its
	// end: if the compressed data was damaged, zstd's own checksum at the end
	// of the frame says so, which is the better diagnosis.
	if sum != m.SHA256 {
		return Manifest{}, "", invalid(nil, "checksum mismatch: the file was changed or damaged (database.sqlite does not match the SHA-256 in manifest.json)")
	}
	if sync {
		if err := f.Sync(); err != nil {
			return Manifest{}, "", fmt.Errorf("dump: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return Manifest{}, "", fmt.Errorf("dump: %w", err)
	}
	if err := checkIntegrity(ctx, f.Name()); err != nil {
		return Manifest{}, "", err
	}
	return m, f.Name(), nil
}

// stream reads the layers of a .dump: the caller's reader, zstd, tar. Each
// layer records its first error, so that a failure seen by tar can be
// reported as what it really is (a read error, damaged compression, a
// truncated file).
type stream struct {
	ctx context.Context
	src *sourceReader
	dec *zstd.Decoder
	out *decodedReader
	tr  *tar.Reader
}

// openStream checks that r starts like a .dump and sets up the readers.
// concurrency is the number of zstd decoder goroutines.
func openStream(ctx context.Context, r io.Reader, concurrency int) (*stream, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	prefix, _ := br.Peek(512)
	if src.err != nil {
		return nil, fmt.Errorf("dump: reading the file: %w", src.err)
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(br,
		zstd.WithDecoderConcurrency(concurrency),
		zstd.WithDecoderMaxWindow(uint64(maxWindow)),
		zstd.WithDecoderMaxMemory(uint64(maxWindow)),
	)
	if err != nil {
		return nil, fmt.Errorf("dump: starting zstd: %w", err)
	}
	out := &decodedReader{r: dec, ctx: ctx}
	return &stream{ctx: ctx, src: src, dec: dec, out: out, tr: tar.NewReader(out)}, nil
}

// checkPrefix tells a .dump from the files most often mistaken for one.
func checkPrefix(p []byte) error {
	const expected = "a .dump is a zstd-compressed tar archive (tar --zstd)"
	switch {
	case len(p) == 0:
		return invalid(nil, "the file is empty: %s", expected)
	case IsDump(p):
		return nil
	case bytes.HasPrefix(p, []byte(sqliteMagic)):
		return invalid(nil, "this is a plain SQLite database, not a .dump: %s", expected)
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		return invalid(nil, "this file is gzip-compressed, not zstd-compressed: %s", expected)
	case len(p) >= 262 && string(p[257:262]) == "ustar":
		return invalid(nil, "this is an uncompressed tar archive: %s", expected)
	}
	return invalid(nil, "this is not a .dump file (it is not zstd-compressed): %s", expected)
}

// close stops the decoder's goroutines.
func (s *stream) close() { s.dec.Close() }

// fail explains err, an error from the tar layer, by the first error of the
// layers below it.
func (s *stream) fail(err error) error {
	if cerr := s.ctx.Err(); cerr != nil {
		return cerr
	}
	if s.src.err != nil {
		return fmt.Errorf("dump: reading the file: %w", s.src.err)
	}
	if derr := s.out.err; derr != nil {
		switch {
		case errors.Is(derr, io.ErrUnexpectedEOF) && s.src.eof:
			return invalid(derr, msgTruncated)
		case errors.Is(derr, zstd.ErrWindowSizeExceeded), errors.Is(derr, zstd.ErrDecoderSizeExceeded):
			return invalid(derr, "the file was compressed with a window over %s, more than this console accepts: compress it without --long or --ultra", bytesize.Format(maxWindow))
		case errors.Is(derr, zstd.ErrMagicMismatch):
			return invalid(derr, "the file has extra bytes after the end of its compressed data: it was changed or joined with something else")
		}
		return invalid(derr, msgDamaged)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return invalid(err, msgTruncated)
	}
	return invalid(err, "the archive inside the file is damaged (%v): %s", err, msgExpected)
}

// next returns the next entry's header after checking that it is a regular
// file with a plain name; nil at the end of the archive.
func (s *stream) next() (*tar.Header, error) {
	hdr, err := s.tr.Next()
	if errors.Is(err, io.EOF) && s.out.err == nil {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(err)
	}
	if err := checkEntry(hdr); err != nil {
		return nil, err
	}
	return hdr, nil
}

// checkEntry refuses anything but a regular file with a plain name: links,
// directories, devices and paths are how archives attack their extractors.
func checkEntry(hdr *tar.Header) error {
	name := truncate(hdr.Name, 100)
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00': // '\x00' is the pre-POSIX spelling of a regular file
	case tar.TypeSymlink:
		return invalid(nil, "entry %q is a symbolic link (to %q): %s, both regular files", name, truncate(hdr.Linkname, 100), msgExpected)
	case tar.TypeLink:
		return invalid(nil, "entry %q is a hard link (to %q): %s, both regular files", name, truncate(hdr.Linkname, 100), msgExpected)
	case tar.TypeDir:
		return invalid(nil, "entry %q is a directory: %s, both regular files", name, msgExpected)
	default:
		return invalid(nil, "entry %q is a special file (tar type %q): %s, both regular files", name, string(hdr.Typeflag), msgExpected)
	}
	clean := strings.ReplaceAll(hdr.Name, `\`, "/")
	switch {
	case strings.HasPrefix(clean, "/"):
		return invalid(nil, "unsafe entry %q: absolute paths are not allowed; %s, as plain names", name, msgExpected)
	case clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(clean, "/../") || strings.HasSuffix(clean, "/.."):
		return invalid(nil, "unsafe entry %q: paths that climb out with \"..\" are not allowed; %s, as plain names", name, msgExpected)
	case strings.Contains(clean, "/"):
		return invalid(nil, "entry %q is inside a directory: %s, as plain names at the top of the archive", name, msgExpected)
	}
	return nil
}

// readManifest reads and checks the first entry, manifest.json.
func (s *stream) readManifest() (Manifest, error) {
	hdr, err := s.next()
	if err != nil {
		return Manifest{}, err
	}
	if hdr == nil {
		return Manifest{}, invalid(nil, "the archive is empty: %s", msgExpected)
	}
	if hdr.Name != ManifestName {
		return Manifest{}, invalid(nil, "manifest.json must be the first entry, but the archive starts with %q: %s", truncate(hdr.Name, 100), msgExpected)
	}
	if hdr.Size > maxManifestSize {
		return Manifest{}, invalid(nil, "manifest.json is %s, far more than a manifest needs (at most %s): this is not a snapdeck dump", bytesize.Format(hdr.Size), bytesize.Format(maxManifestSize))
	}
	b, err := io.ReadAll(s.tr)
	if err != nil {
		return Manifest{}, s.fail(err)
	}
	return decodeManifest(b)
}

// imageEntry reads the second entry's header and checks that it is
// database.sqlite, with the manifest's size and within limit (negative: no
// limit).
func (s *stream) imageEntry(m Manifest, limit int64) (*tar.Header, error) {
	hdr, err := s.next()
	if err != nil {
		return nil, err
	}
	switch {
	case hdr == nil:
		return nil, invalid(nil, "database.sqlite is missing: the archive ends after manifest.json")
	case hdr.Name == ManifestName:
		return nil, invalid(nil, "manifest.json appears twice: %s", msgExpected)
	case hdr.Name != ImageName:
		return nil, invalid(nil, "unexpected entry %q after manifest.json: %s", truncate(hdr.Name, 100), msgExpected)
	case limit >= 0 && hdr.Size > limit:
		return nil, &snapdeck.Error{Code: snapdeck.TooLarge,
			Message: fmt.Sprintf("database.sqlite is %s uncompressed, over the limit of %s", bytesize.Format(hdr.Size), bytesize.Format(limit))}
	case hdr.Size != m.Size:
		return nil, invalid(nil, "size mismatch: manifest.json says database.sqlite is %d bytes, but the archive holds %d bytes", m.Size, hdr.Size)
	}
	return hdr, nil
}

// readHeader reads the first bytes of the current entry, of size bytes:
// the database header, or all of a shorter entry.
func (s *stream) readHeader(size int64) ([]byte, error) {
	first := make([]byte, min(size, headerSize))
	if _, err := io.ReadFull(s.tr, first); err != nil {
		return nil, s.fail(err)
	}
	return first, nil
}

// copyImage writes first, the entry's bytes readHeader read, then the rest
// of the current entry, size bytes in all, to w. It returns the entry's
// hex SHA-256.
func (s *stream) copyImage(w io.Writer, first []byte, size int64) (string, error) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	h := sha256.New()
	h.Write(first)
	if _, err := w.Write(first); err != nil {
		return "", fmt.Errorf("dump: writing the database: %w", err)
	}
	done := int64(len(first))
	for done < size {
		n, err := io.ReadFull(s.tr, buf[:min(int64(len(buf)), size-done)])
		h.Write(buf[:n])
		if _, werr := w.Write(buf[:n]); werr != nil {
			return "", fmt.Errorf("dump: writing the database: %w", werr)
		}
		done += int64(n)
		if err != nil {
			return "", s.fail(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// end checks that the archive ends after database.sqlite with a proper
// end-of-archive marker, and that the compressed stream ends there too,
// with only zero padding in between.
func (s *stream) end() error {
	dataEnd := s.out.n
	hdr, err := s.next()
	if err != nil {
		return err
	}
	if hdr != nil {
		if hdr.Name == ImageName {
			return invalid(nil, "database.sqlite appears twice: %s", msgExpected)
		}
		return invalid(nil, "unexpected entry %q after database.sqlite: %s", truncate(hdr.Name, 100), msgExpected)
	}
	// Go's tar reader accepts an archive that stops without its two zero
	// blocks; a .dump must have them, or it may have been cut.
	if s.out.n < (dataEnd+511)/512*512+1024 {
		return invalid(nil, "the archive has no end-of-archive marker: it looks truncated")
	}
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	var padding int64
	for {
		n, err := s.out.Read(buf)
		padding += int64(n)
		if n > 0 && (padding > maxTrailer || !isZero(buf[:n])) {
			return invalid(nil, "unexpected data after the end of the archive: %s", msgExpected)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return s.fail(err)
		}
	}
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// sourceReader records the first error of the caller's reader and whether
// it reached its end.
type sourceReader struct {
	r   io.Reader
	err error
	eof bool
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if errors.Is(err, io.EOF) {
		s.eof = true
	} else if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

// decodedReader counts the decompressed bytes, records the decoder's first
// error and stops when ctx is done.
type decodedReader struct {
	r   io.Reader
	ctx context.Context
	n   int64
	err error
}

func (d *decodedReader) Read(p []byte) (int, error) {
	if err := d.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && d.err == nil {
		d.err = err
	}
	return n, err
}
