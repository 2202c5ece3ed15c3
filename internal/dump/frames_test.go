package dump

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// mustCreateBlobDB creates a database of incompressible rows of about
// size bytes, as the console's benchmark fills it.
func mustCreateBlobDB(t testing.TB, dir string, size int) string {
	t.Helper()
	path := filepath.Join(dir, "blobs.sqlite")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (b BLOB);
		WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < ?)
		INSERT INTO t SELECT randomblob(4000) FROM s`, size/4096); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeDumpOf writes the dump of the database at path, described by m, to w.
func writeDumpOf(t testing.TB, path string, m Manifest, w io.Writer) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(context.Background(), w, m, f); err != nil {
		t.Fatal(err)
	}
}

// TestWriteReusesItsBuffers checks that a dump written after another
// compresses in the memory the one before used: a fresh zstd encoder per
// dump, with job buffers grown by append, cost every export 55-75 ms
// before its first byte and a third of its copying.
func TestWriteReusesItsBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	path := mustCreateBlobDB(t, t.TempDir(), 24<<20)
	m := manifestFor(t, path)
	// A GC in the middle of a dump may empty the buffer pool; the least
	// any of three dumps allocated is what a dump needs.
	least := uint64(1 << 62)
	for range 4 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		writeDumpOf(t, path, m, io.Discard)
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > 2<<20 {
		t.Errorf("a dump of a 24 MiB database after others allocated at least %d KiB, want at most 2048 KiB", least>>10)
	}
}

// TestToolsReadManyFrameDump checks that a dump of several frames reads as
// one stream with the zstd command and GNU tar: the image tar extracts is
// the source, byte for byte, as docs/dump-format.md promises.
func TestToolsReadManyFrameDump(t *testing.T) {
	tarBin, zstdBin := lookTools(t, "tar", "zstd")
	src := mustCreateBlobDB(t, t.TempDir(), 10<<20) // a small first frame and three more
	dir := t.TempDir()
	var b bytes.Buffer
	writeDumpOf(t, src, manifestFor(t, src), &b)
	if err := os.WriteFile(filepath.Join(dir, "x.dump"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, zstdBin, "-q", "-t", "x.dump")
	run(t, dir, tarBin, "--zstd", "-xf", "x.dump")
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, ImageName))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("image extracted by tar: got %d bytes (%v), want the source's %d, equal", len(got), err, len(want))
	}
	if _, err := Verify(context.Background(), bytes.NewReader(b.Bytes()), t.TempDir(), Limits{}); err != nil {
		t.Errorf("Verify: got error %v, want none", err)
	}
}

// TestFramesKeepTheRatio checks that cutting a dump into independent
// frames costs under 1% of its size against one frame of the same archive
// at the same level and window, on realistic rows.
func TestFramesKeepTheRatio(t *testing.T) {
	src := mustCreateDB(t, t.TempDir(), 160000, false)
	var ours bytes.Buffer
	writeDumpOf(t, src, manifestFor(t, src), &ours)
	archive := archiveOf(t, ours.Bytes())
	var one bytes.Buffer
	enc, err := zstd.NewWriter(&one, encoderOptions...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(archive); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if len(archive) <= 2*frameSize {
		t.Fatalf("the archive is %d bytes: too small to cut into several frames", len(archive))
	}
	if got, want := ours.Len(), one.Len(); float64(got) > 1.01*float64(want) {
		t.Errorf("dump of %d archive bytes: got %d compressed bytes in frames, want at most 1%% more than one frame's %d", len(archive), got, want)
	} else {
		t.Logf("archive %d bytes: %d in frames, %d in one frame", len(archive), got, want)
	}
}
