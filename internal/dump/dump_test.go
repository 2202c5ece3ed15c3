package dump

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

func TestRoundTrip(t *testing.T) {
	for _, wal := range []bool{false, true} {
		t.Run(map[bool]string{false: "rollback", true: "wal"}[wal], func(t *testing.T) {
			src := mustCreateDB(t, t.TempDir(), 2000, wal)
			dump := mustWriteDump(t, src)
			want, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}

			dir := t.TempDir()
			dst := filepath.Join(dir, "database.sqlite")
			m, err := Extract(context.Background(), bytes.NewReader(dump), dst, Limits{})
			if err != nil {
				t.Fatalf("Extract: got error %v, want none", err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("extracted image: got %d bytes differing from the source's %d", len(got), len(want))
			}
			if names := dirEntries(t, dir); len(names) != 1 {
				t.Errorf("files after Extract: got %v, want only database.sqlite", names)
			}
			wantM := manifestFor(t, src)
			wantM.FormatVersion = FormatVersion
			wantM.PageSize = 4096
			if m != wantM {
				t.Errorf("manifest: got %+v, want %+v", m, wantM)
			}
		})
	}
}

// TestStandardTools opens a written dump the way SPEC §5 promises:
// tar --zstd -xf x.dump && sqlite3 database.sqlite.
func TestStandardTools(t *testing.T) {
	tarBin, sqliteBin := lookTools(t, "tar", "sqlite3")
	src := mustCreateDB(t, t.TempDir(), 3000, true)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.dump"), mustWriteDump(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, tarBin, "--zstd", "-xf", "x.dump")
	got := run(t, dir, sqliteBin, "database.sqlite",
		"SELECT count(*), sum(amount_cents) FROM orders; PRAGMA integrity_check;")
	want := run(t, dir, sqliteBin, src, "SELECT count(*), sum(amount_cents) FROM orders; SELECT 'ok';")
	if got != want {
		t.Errorf("sqlite3 on the extracted database: got %q, want %q", got, want)
	}
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.SHA256 != manifestFor(t, src).SHA256 {
		t.Errorf("manifest.json extracted by tar: got %+v (%v), want the source's checksum", m, err)
	}
}

// TestReadsManyFrames reads a dump whose zstd stream is many frames, as
// pzstd writes them: RFC 8878 makes concatenated frames one stream.
func TestReadsManyFrames(t *testing.T) {
	src := mustCreateDB(t, t.TempDir(), 2000, false)
	archive := archiveOf(t, mustWriteDump(t, src))
	enc, err := zstd.NewWriter(nil, encoderOptions...)
	if err != nil {
		t.Fatal(err)
	}
	const perFrame = 16 << 10
	var multi []byte
	for rest := archive; len(rest) > 0; rest = rest[min(perFrame, len(rest)):] {
		multi = enc.EncodeAll(rest[:min(perFrame, len(rest))], multi)
	}
	dst := filepath.Join(t.TempDir(), ImageName)
	if _, err := Extract(context.Background(), bytes.NewReader(multi), dst, Limits{}); err != nil {
		t.Fatalf("Extract of %d frames: got error %v, want none", (len(archive)+perFrame-1)/perFrame, err)
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, want) {
		t.Errorf("extracted image: got %d bytes (%v), want the source's %d", len(got), err, len(want))
	}
}

// TestReadsToolMadeDump reads a dump made by hand with GNU tar and the zstd
// command, as docs/dump-format.md describes.
func TestReadsToolMadeDump(t *testing.T) {
	tarBin, _ := lookTools(t, "tar", "zstd")
	src := mustCreateDB(t, t.TempDir(), 500, false)
	dir := t.TempDir()
	m := manifestFor(t, src)
	m.FormatVersion, m.PageSize = FormatVersion, 4096
	b, err := encodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{ManifestName: b, ImageName: img} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, tarBin, "--zstd", "-cf", "x.dump", ManifestName, ImageName)
	f, err := os.Open(filepath.Join(dir, "x.dump"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Verify(context.Background(), f, t.TempDir(), Limits{})
	if err != nil {
		t.Fatalf("Verify of a tar --zstd dump: got error %v, want none", err)
	}
	if got.SHA256 != m.SHA256 {
		t.Errorf("sha256: got %s, want %s", got.SHA256, m.SHA256)
	}
}

// lookTools finds binaries, skipping the test when one is missing, except
// on CI, where they must be there.
func lookTools(t *testing.T, names ...string) (string, string) {
	t.Helper()
	var paths []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed on CI: %v", n, err)
			}
			t.Skipf("%s is not installed: %v", n, err)
		}
		paths = append(paths, p)
	}
	return paths[0], paths[1]
}

// run runs a command in dir and returns its standard output.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}

func TestWriteRefusesMismatchedImage(t *testing.T) {
	src := mustCreateDB(t, t.TempDir(), 500, false)
	img, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	good := manifestFor(t, src)
	tests := []struct {
		name  string
		m     func(Manifest) Manifest
		image []byte
		want  string
	}{
		{"short image", nil, img[:len(img)-10], "the image ended after"},
		{"long image", nil, append(bytes.Clone(img), 1), "the image is longer than"},
		{"checksum", func(m Manifest) Manifest { m.SHA256 = sha256Hex(nil); return m }, img, "the image's SHA-256 is"},
		{"not sqlite", nil, bytes.Repeat([]byte("x"), len(img)), "not a SQLite database"},
		{"page size", func(m Manifest) Manifest { m.PageSize = 1024; return m }, img, "page size is 1024"},
		{"no snapshot id", func(m Manifest) Manifest { m.SnapshotID = ""; return m }, img, "needs the database id"},
		{"snapshot type", func(m Manifest) Manifest { m.SnapshotType = "Hourly"; return m }, img, `unknown snapshot type "Hourly"`},
	}
	// An image that writes itself out (io.WriterTo, as bytes.Reader and
	// snapdeck's snapshot reader do) and one that is only read.
	readers := map[string]func([]byte) io.Reader{
		"writer-to": func(b []byte) io.Reader { return bytes.NewReader(b) },
		"reader":    func(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} },
	}
	for kind, reader := range readers {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				m := good
				if tt.m != nil {
					m = tt.m(m)
				}
				var out bytes.Buffer
				err := Write(context.Background(), &out, m, reader(tt.image))
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Write: got error %v, want one containing %q", err, tt.want)
				}
				// Whatever was written must not pass for a dump.
				if _, err := Verify(context.Background(), &out, t.TempDir(), Limits{}); err == nil {
					t.Errorf("Verify of a failed Write's output: got no error, want one")
				}
			})
		}
		t.Run(kind+"/good", func(t *testing.T) {
			var out bytes.Buffer
			if err := Write(context.Background(), &out, good, reader(img)); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if _, err := Verify(context.Background(), &out, t.TempDir(), Limits{}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestWriteStopsOnCancel(t *testing.T) {
	src := mustCreateDB(t, t.TempDir(), 500, false)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, io.Discard, manifestFor(t, src), f); !errors.Is(err, context.Canceled) {
		t.Errorf("Write on a cancelled context: got %v, want context.Canceled", err)
	}
}

func TestInspect(t *testing.T) {
	src := mustCreateDB(t, t.TempDir(), 500, false)
	dump := mustWriteDump(t, src)
	m, err := Inspect(bytes.NewReader(dump))
	if err != nil {
		t.Fatalf("Inspect: got error %v, want none", err)
	}
	want := manifestFor(t, src)
	if m.SHA256 != want.SHA256 || m.Size != want.Size || m.DatabaseName != "orders" || !m.SnapshotTime.Equal(testTime) {
		t.Errorf("Inspect: got %+v, want %+v", m, want)
	}
	// Inspect reads the headers only, so a damaged image passes it, while
	// a wrong manifest does not.
	for _, tc := range []struct {
		file    string
		wantErr bool
	}{{"flipped-image-byte.dump", false}, {"future-version.dump", true}, {"symlink.dump", true}, {"empty.dump", true}} {
		data, err := os.ReadFile(filepath.Join("testdata", "hostile", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(bytes.NewReader(data)); (err != nil) != tc.wantErr {
			t.Errorf("Inspect(%s): got error %v, want error %v", tc.file, err, tc.wantErr)
		}
	}
}

func TestExtractKeepsExistingFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "database.sqlite")
	if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "hostile", "truncated.dump"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Extract(context.Background(), bytes.NewReader(data), dst, Limits{}); err == nil {
		t.Fatal("Extract of a truncated dump: got no error, want one")
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Errorf("existing file after a failed Extract: got %q, want %q", b, "old")
	}
	if names := dirEntries(t, dir); len(names) != 1 {
		t.Errorf("files after a failed Extract: got %v, want only database.sqlite", names)
	}
}

func TestExtractRefusesStaleWAL(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "database.sqlite")
	if err := os.WriteFile(dst+"-wal", []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "good.dump"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Extract(context.Background(), bytes.NewReader(data), dst, Limits{})
	if got := snapdeck.ErrorCode(err); got != snapdeck.Conflict {
		t.Errorf("Extract next to a stale -wal: got code %q (%v), want %q", got, err, snapdeck.Conflict)
	}
}

func TestExtractReportsReadErrors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "good.dump"))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom))
	_, err = Verify(context.Background(), r, t.TempDir(), Limits{})
	if !errors.Is(err, boom) || snapdeck.ErrorCode(err) != snapdeck.Internal {
		t.Errorf("Verify with a failing reader: got %v, want the read error, not a verdict on the file", err)
	}
}

func TestIsDump(t *testing.T) {
	tests := []struct {
		prefix []byte
		want   bool
	}{
		{[]byte{0x28, 0xB5, 0x2F, 0xFD}, true},
		{[]byte{0x28, 0xB5, 0x2F, 0xFD, 0x04}, true},
		{[]byte{0x50, 0x2A, 0x4D, 0x18}, true}, // skippable frame, as pzstd writes first
		{[]byte{0x28, 0xB5, 0x2F}, false},
		{[]byte("SQLite format 3\x00"), false},
		{[]byte{0x1f, 0x8b, 0x08, 0x00}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsDump(tt.prefix); got != tt.want {
			t.Errorf("IsDump(% x): got %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

// TestWriteCheckedHashesNothingButKeepsTheLength checks that WriteChecked
// writes the same dump as Write, does not hash the image (a wrong SHA-256
// in the manifest goes unnoticed: the caller vouches for it), and still
// refuses an image of the wrong length.
func TestWriteCheckedHashesNothingButKeepsTheLength(t *testing.T) {
	ctx := context.Background()
	src := mustCreateDB(t, t.TempDir(), 500, false)
	img, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	m := manifestFor(t, src)
	var plain, checked bytes.Buffer
	if err := Write(ctx, &plain, m, bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
	if err := WriteChecked(ctx, &checked, m, bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), checked.Bytes()) {
		t.Errorf("WriteChecked wrote %d bytes that differ from Write's %d", checked.Len(), plain.Len())
	}
	wrong := m
	wrong.SHA256 = sha256Hex(nil)
	if err := WriteChecked(ctx, io.Discard, wrong, bytes.NewReader(img)); err != nil {
		t.Errorf("WriteChecked with a SHA-256 it does not check: %v", err)
	}
	if err := WriteChecked(ctx, io.Discard, m, bytes.NewReader(img[:len(img)-10])); err == nil || !strings.Contains(err.Error(), "the image ended after") {
		t.Errorf("WriteChecked of a short image: got %v, want the length refused", err)
	}
}
