package dump

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// copyBufferSize is the unit in which images are copied. 1 MiB keeps system
// calls and per-call overhead negligible while memory stays bounded.
const copyBufferSize = 1 << 20

// copyBuffers recycles copy buffers across dumps.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// Write streams a .dump of image to w: manifest.json made from m, then
// database.sqlite copied from image.
//
// m.Size and m.SHA256 come from the snapshot record, so they are written
// before the image is read; Write fails if the image does not match them.
// On failure the output is left without its end, so that no tool reads it as
// a complete dump; the caller must discard it. m.FormatVersion zero means
// FormatVersion; m.PageSize zero is filled in from the image's header, and
// m.SQLiteVersion empty from the version that last wrote the image.
func Write(ctx context.Context, w io.Writer, m Manifest, image io.Reader) error {
	return write(ctx, w, m, image, true)
}

// WriteChecked is Write for an image whose every byte the caller has
// already checked against m.SHA256 some other way: it does not hash the
// image again. snapdeck's export reads a verified snapshot, whose image
// was rebuilt and hashed after capture, page by page, each page checked
// against its hash and the snapshot's tree; a second SHA-256 of the whole
// image cost 0.7 CPU-seconds per GiB on the benchmark machine, on the path
// a user waits on, and can only agree. The length is still checked.
func WriteChecked(ctx context.Context, w io.Writer, m Manifest, image io.Reader) error {
	return write(ctx, w, m, image, false)
}

func write(ctx context.Context, w io.Writer, m Manifest, image io.Reader, hashImage bool) error {
	first := make([]byte, headerSize)
	n, err := io.ReadFull(image, first)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("dump: reading the image: %w", err)
	}
	first = first[:n]
	if err := completeManifest(&m, first); err != nil {
		return err
	}
	manifest, err := encodeManifest(m)
	if err != nil {
		return fmt.Errorf("dump: encoding the manifest: %w", err)
	}

	enc, err := newFrameWriter(w)
	if err != nil {
		return fmt.Errorf("dump: starting zstd: %w", err)
	}
	// A failed dump ends before the archive's image does: the frames still
	// being compressed, which hold its last bytes, are dropped.
	fail := func(err error) error {
		enc.abandon()
		return err
	}

	tw := tar.NewWriter(enc)
	mtime := m.SnapshotTime.UTC()
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: ManifestName, Size: int64(len(manifest)), Mode: 0o644, ModTime: mtime,
	}); err != nil {
		return fail(fmt.Errorf("dump: writing the manifest: %w", err))
	}
	if _, err := tw.Write(manifest); err != nil {
		return fail(fmt.Errorf("dump: writing the manifest: %w", err))
	}
	// The image is private data: extracted with tar, it is readable by its
	// owner only.
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: ImageName, Size: m.Size, Mode: 0o600, ModTime: mtime,
	}); err != nil {
		return fail(fmt.Errorf("dump: writing the image header: %w", err))
	}
	var h hash.Hash
	if hashImage {
		h = sha256.New()
	}
	err = copyImage(ctx, tw, first, image, m.Size, h)
	if err != nil {
		return fail(err)
	}
	if h != nil {
		if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
			return fail(fmt.Errorf("dump: the image's SHA-256 is %s, the snapshot record says %s", sum, m.SHA256))
		}
	}
	if err := tw.Close(); err != nil {
		return fail(fmt.Errorf("dump: ending the archive: %w", err))
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("dump: ending the compressed stream: %w", err)
	}
	return nil
}

// completeManifest fills in what Write can work out itself and checks that
// m describes a dump readers will accept.
func completeManifest(m *Manifest, first []byte) error {
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	h, ok := parseHeader(first)
	if !ok {
		return errors.New("dump: the image is not a SQLite database: it does not start with the SQLite header")
	}
	if m.PageSize == 0 {
		m.PageSize = h.PageSize
	}
	if m.SQLiteVersion == "" {
		m.SQLiteVersion = h.Version
	}
	switch {
	case m.FormatVersion != FormatVersion:
		return fmt.Errorf("dump: this package writes format %d, not %d", FormatVersion, m.FormatVersion)
	case m.PageSize != h.PageSize:
		return fmt.Errorf("dump: the manifest's page size is %d, the image's header says %d", m.PageSize, h.PageSize)
	case m.DatabaseID == "" || m.SnapshotID == "" || m.Engine == "" || m.SnapshotTime.IsZero():
		return errors.New("dump: the manifest needs the database id, snapshot id, snapshot time and engine")
	case !snapdeck.SnapshotType(m.SnapshotType).Valid():
		return fmt.Errorf("dump: unknown snapshot type %q", m.SnapshotType)
	}
	if err := checkManifest(*m); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	return nil
}

// copyImage copies exactly size bytes, first and then the rest of image,
// to w, hashing them into h unless it is nil. It fails if they are fewer
// or more. An image that can write itself out (io.WriterTo, as snapdeck's
// snapshot reader does with the runs of pages it reads) does, which saves
// copying every byte into a buffer of ours first.
func copyImage(ctx context.Context, w io.Writer, first []byte, image io.Reader, size int64, h hash.Hash) error {
	wt, ok := image.(io.WriterTo)
	if !ok {
		return copyImageBuffered(ctx, w, io.MultiReader(bytes.NewReader(first), image), size, h)
	}
	sink := &imageSink{ctx: ctx, w: w, h: h, size: size, left: size}
	if _, err := sink.Write(first); err != nil {
		return err
	}
	if _, err := wt.WriteTo(sink); err != nil {
		if sink.err != nil {
			return sink.err
		}
		return fmt.Errorf("dump: reading the image: %w", err)
	}
	if sink.left > 0 {
		return fmt.Errorf("dump: the image ended after %d bytes, the snapshot record says %d", size-sink.left, size)
	}
	return nil
}

// imageSink passes an image's bytes on to the archive, hashing and
// counting them, and refuses any past the size it expects.
type imageSink struct {
	ctx  context.Context
	w    io.Writer
	h    hash.Hash
	size int64 // the image's whole size
	left int64 // bytes of it still expected
	err  error // the sink's own failure, which ends the copy
}

func (s *imageSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return 0, err
	}
	if int64(len(p)) > s.left {
		s.err = fmt.Errorf("dump: the image is longer than the %d bytes the snapshot record says", s.size)
		return 0, s.err
	}
	if s.h != nil {
		s.h.Write(p)
	}
	n, err := s.w.Write(p)
	s.left -= int64(n)
	if err != nil {
		s.err = fmt.Errorf("dump: writing the image: %w", err)
		return n, s.err
	}
	return n, nil
}

// copyImageBuffered is copyImage for an image that is only an io.Reader.
func copyImageBuffered(ctx context.Context, w io.Writer, image io.Reader, size int64, h hash.Hash) error {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	var done int64
	for done < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(image, buf[:min(int64(len(buf)), size-done)])
		if n > 0 {
			if h != nil {
				h.Write(buf[:n])
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return fmt.Errorf("dump: writing the image: %w", werr)
			}
			done += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("dump: the image ended after %d bytes, the snapshot record says %d", done, size)
		}
		if err != nil {
			return fmt.Errorf("dump: reading the image: %w", err)
		}
	}
	switch n, err := io.ReadFull(image, buf[:1]); {
	case n > 0:
		return fmt.Errorf("dump: the image is longer than the %d bytes the snapshot record says", size)
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("dump: reading the image: %w", err)
	}
	return nil
}
