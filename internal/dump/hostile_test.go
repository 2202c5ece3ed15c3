package dump

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// update regenerates testdata/hostile: go test ./internal/dump -run TestHostile -update
var update = flag.Bool("update", false, "regenerate the hostile corpus in testdata/hostile")

// hostileLimit is the decompressed-size limit the corpus is checked with, so
// that a decompression bomb past it stays a small file.
const hostileLimit = 1 << 20

// hostileCase is one file of the corpus: how to make it, and how Extract
// must refuse it.
type hostileCase struct {
	file   string
	build  func(t *testing.T, g *corpusGen) []byte
	code   snapdeck.Code
	want   string // the exact message
	prefix bool   // want is a prefix: the rest is SQLite's own wording
}

var hostileCases = []hostileCase{
	{"empty.dump", func(t *testing.T, g *corpusGen) []byte { return nil },
		snapdeck.Invalid, "the file is empty: a .dump is a zstd-compressed tar archive (tar --zstd)", false},
	{"random-bytes.dump", func(t *testing.T, g *corpusGen) []byte { return g.random(4096) },
		snapdeck.Invalid, "this is not a .dump file (it is not zstd-compressed): a .dump is a zstd-compressed tar archive (tar --zstd)", false},
	{"plain-sqlite.dump", func(t *testing.T, g *corpusGen) []byte { return g.image },
		snapdeck.Invalid, "this is a plain SQLite database, not a .dump: a .dump is a zstd-compressed tar archive (tar --zstd)", false},
	{"gzip.dump", func(t *testing.T, g *corpusGen) []byte { return g.gzipped(g.tarball(g.good()...)) },
		snapdeck.Invalid, "this file is gzip-compressed, not zstd-compressed: a .dump is a zstd-compressed tar archive (tar --zstd)", false},
	{"uncompressed-tar.dump", func(t *testing.T, g *corpusGen) []byte { return g.tarball(g.good()...) },
		snapdeck.Invalid, "this is an uncompressed tar archive: a .dump is a zstd-compressed tar archive (tar --zstd)", false},
	{"truncated.dump", func(t *testing.T, g *corpusGen) []byte { d := g.dump(g.good()...); return d[:len(d)/2] },
		snapdeck.Invalid, msgTruncated, false},
	{"flipped-compressed-byte.dump", func(t *testing.T, g *corpusGen) []byte {
		d := g.dump(g.good()...)
		d[len(d)/2] ^= 0x40
		return d
	}, snapdeck.Invalid, msgDamaged, false},
	{"trailing-garbage.dump", func(t *testing.T, g *corpusGen) []byte {
		return append(g.dump(g.good()...), []byte("#!/bin/sh\necho appended\n")...)
	}, snapdeck.Invalid, "the file has extra bytes after the end of its compressed data: it was changed or joined with something else", false},
	{"large-window.dump", func(t *testing.T, g *corpusGen) []byte { return g.largeWindow(g.tarball(g.good()...)) },
		snapdeck.Invalid, "the file was compressed with a window over 32MiB, more than this console accepts: compress it without --long or --ultra", false},
	{"flipped-image-byte.dump", func(t *testing.T, g *corpusGen) []byte {
		img := bytes.Clone(g.image)
		img[len(img)-100] ^= 0x01
		return g.dump(g.manifest(g.imageManifest()), g.file(ImageName, img))
	}, snapdeck.Invalid, "checksum mismatch: the file was changed or damaged (database.sqlite does not match the SHA-256 in manifest.json)", false},
	{"wrong-size.dump", func(t *testing.T, g *corpusGen) []byte {
		m := g.imageManifest()
		m.Size += 4096
		return g.dump(g.manifest(m), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "size mismatch: manifest.json says database.sqlite is 36864 bytes, but the archive holds 32768 bytes", false},
	{"future-version.dump", func(t *testing.T, g *corpusGen) []byte {
		m := g.imageManifest()
		m.FormatVersion = 2
		return g.dump(g.manifest(m), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "this dump was written by a newer snapdeck (format 2); this console reads format 1", false},
	{"zero-version.dump", func(t *testing.T, g *corpusGen) []byte {
		m := g.imageManifest()
		m.FormatVersion = 0
		return g.dump(g.manifest(m), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "manifest.json has format_version 0, which no snapdeck writes; this console reads format 1", false},
	{"manifest-no-version.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.file(ManifestName, []byte(`{"size": 32768}`)), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "manifest.json has no format_version: it is not a snapdeck dump manifest", false},
	{"manifest-not-json.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.file(ManifestName, []byte("format_version = 1\n")), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "manifest.json is not valid JSON: a .dump starts with a JSON object describing the database", false},
	{"manifest-wrong-type.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.file(ManifestName, []byte(`{"format_version": 1, "size": "32768"}`)), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "manifest.json has a key of the wrong type: size should be a int64", false},
	{"manifest-bad-sha256.dump", func(t *testing.T, g *corpusGen) []byte {
		m := g.imageManifest()
		m.SHA256 = "not-a-checksum"
		return g.dump(g.manifest(m), g.file(ImageName, g.image))
	}, snapdeck.Invalid, `manifest.json has an invalid sha256 "not-a-checksum": it should be 64 lowercase hexadecimal digits`, false},
	{"manifest-huge.dump", func(t *testing.T, g *corpusGen) []byte {
		huge := append([]byte(`{"format_version": 1, "padding": "`), bytes.Repeat([]byte("x"), 1<<20)...)
		return g.dump(g.file(ManifestName, append(huge, `"}`...)), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "manifest.json is 1.0MiB, far more than a manifest needs (at most 64KiB): this is not a snapdeck dump", false},
	{"empty-archive.dump", func(t *testing.T, g *corpusGen) []byte { return g.dump() },
		snapdeck.Invalid, "the archive is empty: a .dump holds only manifest.json, then database.sqlite", false},
	{"manifest-not-first.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.file(ImageName, g.image), g.manifest(g.imageManifest()))
	}, snapdeck.Invalid, `manifest.json must be the first entry, but the archive starts with "database.sqlite": a .dump holds only manifest.json, then database.sqlite`, false},
	{"image-missing.dump", func(t *testing.T, g *corpusGen) []byte { return g.dump(g.manifest(g.imageManifest())) },
		snapdeck.Invalid, "database.sqlite is missing: the archive ends after manifest.json", false},
	{"duplicate-manifest.dump", func(t *testing.T, g *corpusGen) []byte {
		m := g.manifest(g.imageManifest())
		return g.dump(m, m, g.file(ImageName, g.image))
	}, snapdeck.Invalid, "manifest.json appears twice: a .dump holds only manifest.json, then database.sqlite", false},
	{"duplicate-image.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(append(g.good(), g.file(ImageName, g.image))...)
	}, snapdeck.Invalid, "database.sqlite appears twice: a .dump holds only manifest.json, then database.sqlite", false},
	{"extra-entry-between.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.file("README.txt", []byte("hello\n")), g.file(ImageName, g.image))
	}, snapdeck.Invalid, `unexpected entry "README.txt" after manifest.json: a .dump holds only manifest.json, then database.sqlite`, false},
	{"extra-entry-after.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(append(g.good(), g.file("notes.txt", []byte("hello\n")))...)
	}, snapdeck.Invalid, `unexpected entry "notes.txt" after database.sqlite: a .dump holds only manifest.json, then database.sqlite`, false},
	{"data-after-archive.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dumpRaw(append(g.tarball(g.good()...), bytes.Repeat([]byte("junk"), 512)...))
	}, snapdeck.Invalid, "unexpected data after the end of the archive: a .dump holds only manifest.json, then database.sqlite", false},
	{"no-end-marker.dump", func(t *testing.T, g *corpusGen) []byte {
		tb := g.tarball(g.good()...)
		return g.dumpRaw(tb[:len(tb)-1024])
	}, snapdeck.Invalid, "the archive has no end-of-archive marker: it looks truncated", false},
	{"dotdot-path.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.file("../database.sqlite", g.image))
	}, snapdeck.Invalid, `unsafe entry "../database.sqlite": paths that climb out with ".." are not allowed; a .dump holds only manifest.json, then database.sqlite, as plain names`, false},
	{"absolute-path.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.file("/tmp/manifest.json", g.manifestJSON(g.imageManifest())), g.file(ImageName, g.image))
	}, snapdeck.Invalid, `unsafe entry "/tmp/manifest.json": absolute paths are not allowed; a .dump holds only manifest.json, then database.sqlite, as plain names`, false},
	{"subdirectory-path.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.file("data/database.sqlite", g.image))
	}, snapdeck.Invalid, `entry "data/database.sqlite" is inside a directory: a .dump holds only manifest.json, then database.sqlite, as plain names at the top of the archive`, false},
	{"symlink.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.entry(&tar.Header{Typeflag: tar.TypeSymlink, Name: ImageName, Linkname: "/etc/passwd"}, nil))
	}, snapdeck.Invalid, `entry "database.sqlite" is a symbolic link (to "/etc/passwd"): a .dump holds only manifest.json, then database.sqlite, both regular files`, false},
	{"hardlink.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.entry(&tar.Header{Typeflag: tar.TypeLink, Name: ImageName, Linkname: ManifestName}, nil))
	}, snapdeck.Invalid, `entry "database.sqlite" is a hard link (to "manifest.json"): a .dump holds only manifest.json, then database.sqlite, both regular files`, false},
	{"directory.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.entry(&tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}, nil), g.manifest(g.imageManifest()), g.file(ImageName, g.image))
	}, snapdeck.Invalid, `entry "data/" is a directory: a .dump holds only manifest.json, then database.sqlite, both regular files`, false},
	{"device.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.entry(&tar.Header{Typeflag: tar.TypeChar, Name: ImageName, Devmajor: 1, Devminor: 3}, nil))
	}, snapdeck.Invalid, `entry "database.sqlite" is a special file (tar type "3"): a .dump holds only manifest.json, then database.sqlite, both regular files`, false},
	{"bomb.dump", func(t *testing.T, g *corpusGen) []byte {
		// 64 MiB of zeros compress to a few kilobytes.
		zeros := make([]byte, 64<<20)
		m := g.imageManifest()
		m.Size, m.SHA256 = int64(len(zeros)), sha256Hex(zeros)
		return g.dump(g.manifest(m), g.file(ImageName, zeros))
	}, snapdeck.TooLarge, "the database in this dump is 64MiB (manifest.json), over the limit of 1MiB", false},
	{"bomb-lying-manifest.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.manifest(g.imageManifest()), g.file(ImageName, make([]byte, 64<<20)))
	}, snapdeck.TooLarge, "database.sqlite is 64MiB uncompressed, over the limit of 1MiB", false},
	{"not-sqlite.dump", func(t *testing.T, g *corpusGen) []byte {
		text := bytes.Repeat([]byte("this is not a database, just text.\n"), 4096)[:8192]
		m := g.imageManifest()
		m.Size, m.SHA256 = int64(len(text)), sha256Hex(text)
		return g.dump(g.manifest(m), g.file(ImageName, text))
	}, snapdeck.Invalid, `database.sqlite is not a SQLite database: it does not start with the header "SQLite format 3"`, false},
	{"bad-page-size.dump", func(t *testing.T, g *corpusGen) []byte {
		img := bytes.Clone(g.image)
		binary.BigEndian.PutUint16(img[16:], 1000)
		return g.dump(g.withImage(img)...)
	}, snapdeck.Invalid, "database.sqlite has an invalid page size (1000) in its header: SQLite pages are a power of two from 512 to 65536 bytes", false},
	{"page-size-mismatch.dump", func(t *testing.T, g *corpusGen) []byte {
		m := g.imageManifest()
		m.PageSize = 1024
		return g.dump(g.manifest(m), g.file(ImageName, g.image))
	}, snapdeck.Invalid, "page size mismatch: manifest.json says 1024 bytes, the header of database.sqlite says 4096", false},
	{"header-lies-size.dump", func(t *testing.T, g *corpusGen) []byte {
		// A real header of 8 pages, then zeros up to the limit: the
		// manifest and checksum match, the integrity check would read
		// the 8 pages only; the header alone tells.
		img := make([]byte, hostileLimit)
		copy(img, g.image)
		return g.dump(g.withImage(img)...)
	}, snapdeck.Invalid, "database.sqlite's header says it is 8 pages of 4096 bytes (32768 bytes), but the archive holds 1048576 bytes", false},
	{"header-size-unknown.dump", func(t *testing.T, g *corpusGen) []byte {
		img := bytes.Clone(g.image)
		img[95] ^= 0xff // version-valid-for no longer matches the change counter
		return g.dump(g.withImage(img)...)
	}, snapdeck.Invalid, "database.sqlite's header does not give its size in pages, as every SQLite since 3.7.0 does: it was not written by snapdeck", false},
	{"partial-page.dump", func(t *testing.T, g *corpusGen) []byte {
		return g.dump(g.withImage(append(bytes.Clone(g.image), make([]byte, 100)...))...)
	}, snapdeck.Invalid, "database.sqlite is 32868 bytes, not a whole number of 4096-byte pages: it looks cut short or padded", false},
	{"corrupt-btree.dump", func(t *testing.T, g *corpusGen) []byte {
		// Scribble over the b-tree header of the last page: the checksum
		// in the manifest matches, only SQLite can tell.
		img := bytes.Clone(g.image)
		last := len(img) - 4096
		copy(img[last:last+12], []byte{0x0d, 0xff, 0xff, 0x7f, 0x7f, 0x00, 0x00, 0x01, 0, 0, 0, 0})
		return g.dump(g.withImage(img)...)
	}, snapdeck.Invalid, "database.sqlite is damaged: SQLite cannot read it (", true},
	{"corrupt-page.dump", func(t *testing.T, g *corpusGen) []byte {
		// Change one customer name inside a table row, leaving its index
		// entry as it was: every page is well formed, but the table and its
		// index disagree, which only integrity_check sees.
		img := bytes.Clone(g.image)
		i := bytes.Index(img, []byte("ann smithann.smith"))
		if i < 0 {
			t.Fatal("corpus image: no row of ann smith to corrupt")
		}
		img[i] = 'b'
		return g.dump(g.withImage(img)...)
	}, snapdeck.Invalid, "database.sqlite fails PRAGMA integrity_check: ", true},
}

// TestHostileCorpus checks that Extract and Verify refuse every file of
// testdata/hostile, each with its own message, and leave nothing behind.
func TestHostileCorpus(t *testing.T) {
	if *update {
		generateCorpus(t)
	}
	seen := map[string]string{}
	for _, tc := range hostileCases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "hostile", tc.file))
			if err != nil {
				t.Fatalf("corpus file missing (run with -update): %v", err)
			}
			dir := t.TempDir()
			dst := filepath.Join(dir, "database.sqlite")
			_, err = Extract(context.Background(), bytes.NewReader(data), dst, Limits{MaxImageSize: hostileLimit})
			checkRefusal(t, "Extract", tc, err)
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Errorf("files left after Extract: got %v, want none", names)
			}
			_, err = Verify(context.Background(), bytes.NewReader(data), dir, Limits{MaxImageSize: hostileLimit})
			checkRefusal(t, "Verify", tc, err)
			if names := dirEntries(t, dir); len(names) != 0 {
				t.Errorf("files left after Verify: got %v, want none", names)
			}
			if msg := snapdeck.ErrorMessage(err); seen[msg] != "" {
				t.Errorf("message %q: got it for both %s and %s, want one message per problem", msg, seen[msg], tc.file)
			} else {
				seen[msg] = tc.file
			}
		})
	}
	files, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.dump"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(hostileCases) {
		t.Errorf("corpus files: got %d, want %d (one per case; stale files?)", len(files), len(hostileCases))
	}
}

// TestExtractStopsAtHeader checks that a body which does not fit its
// header is refused from its first bytes: Extract stops reading the file
// there, so nothing more of it is decompressed or written.
func TestExtractStopsAtHeader(t *testing.T) {
	g := newCorpusGen(t)
	// Random bytes do not compress, so how much of the file Extract
	// reads follows how much of the body it copies.
	const size = 32 << 20
	body := g.random(size)
	cases := map[string][]byte{
		"zeros for a header":  make([]byte, headerSize),
		"8 pages in a header": g.image[:headerSize],
	}
	for name, head := range cases {
		img := append(bytes.Clone(head), body[headerSize:]...)
		file := g.dump(g.withImage(img)...)
		dir := t.TempDir()
		src := &countReader{r: bytes.NewReader(file)}
		_, err := Extract(context.Background(), src, filepath.Join(dir, "database.sqlite"), Limits{MaxImageSize: 1 << 30})
		if snapdeck.ErrorCode(err) != snapdeck.Invalid {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
		// The zstd decoder reads ahead a few blocks of at most 128 KiB.
		if src.n > 4<<20 {
			t.Errorf("%s: Extract read %d of the file's %d bytes before refusing it, want at most 4 MiB", name, src.n, len(file))
		}
		if names := dirEntries(t, dir); len(names) != 0 {
			t.Errorf("%s: files left: %v", name, names)
		}
	}
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkRefusal checks that err refuses tc with its code and message.
func checkRefusal(t *testing.T, op string, tc hostileCase, err error) {
	t.Helper()
	e, ok := snapdeck.AsError(err)
	if !ok {
		t.Fatalf("%s: got error %v, want a *snapdeck.Error", op, err)
	}
	if e.Code != tc.code {
		t.Errorf("%s: got code %q, want %q (%v)", op, e.Code, tc.code, err)
	}
	if got := e.Message; got != tc.want && !(tc.prefix && strings.HasPrefix(got, tc.want)) {
		t.Errorf("%s: got message\n\t%q\nwant\n\t%q", op, got, tc.want)
	}
}

// generateCorpus writes testdata/hostile from hostileCases.
func generateCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "hostile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.dump"))
	for _, f := range old {
		os.Remove(f)
	}
	g := newCorpusGen(t)
	for _, tc := range hostileCases {
		if err := os.WriteFile(filepath.Join(dir, tc.file), tc.build(t, g), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join("testdata", "good.dump"), g.dump(g.good()...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// corpusGen builds archives around one small, valid database image.
type corpusGen struct {
	t     *testing.T
	rng   *rand.Rand
	image []byte // a small real SQLite database: 8 pages of 4 KiB
}

func newCorpusGen(t *testing.T) *corpusGen {
	path := mustCreateDB(t, t.TempDir(), 200, false)
	image, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(image) != 32768 {
		// The messages above name this size.
		t.Fatalf("corpus image: got %d bytes, want 32768", len(image))
	}
	return &corpusGen{t: t, rng: rand.New(rand.NewPCG(1, 2)), image: image}
}

// corpusEntry is one tar entry to write.
type corpusEntry struct {
	hdr  *tar.Header
	body []byte
}

func (g *corpusGen) entry(hdr *tar.Header, body []byte) corpusEntry {
	hdr.Size = int64(len(body))
	hdr.ModTime = testTime
	return corpusEntry{hdr, body}
}

func (g *corpusGen) file(name string, body []byte) corpusEntry {
	return g.entry(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, body)
}

// imageManifest describes g.image.
func (g *corpusGen) imageManifest() Manifest {
	return Manifest{
		FormatVersion: FormatVersion, DatabaseName: "orders", DatabaseID: "a1b2c3d4",
		SnapshotID: "0b6a1a4e-9c1e-4c35-9a51-2f1f8f1c2d3e", SnapshotType: "On-demand",
		SnapshotTime: testTime, Engine: "snapdeck test", SQLiteVersion: "3.50.0",
		Size: int64(len(g.image)), SHA256: sha256Hex(g.image), PageSize: 4096,
	}
}

func (g *corpusGen) manifestJSON(m Manifest) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

func (g *corpusGen) manifest(m Manifest) corpusEntry { return g.file(ManifestName, g.manifestJSON(m)) }

// good is the entries of a valid dump of g.image.
func (g *corpusGen) good() []corpusEntry { return g.withImage(g.image) }

// withImage is a dump of img whose manifest matches it exactly.
func (g *corpusGen) withImage(img []byte) []corpusEntry {
	m := g.imageManifest()
	m.Size, m.SHA256 = int64(len(img)), sha256Hex(img)
	return []corpusEntry{g.manifest(m), g.file(ImageName, img)}
}

// tarball is an uncompressed tar of entries, with its end marker.
func (g *corpusGen) tarball(entries ...corpusEntry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			g.t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			g.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		g.t.Fatal(err)
	}
	return b.Bytes()
}

func (g *corpusGen) dump(entries ...corpusEntry) []byte { return g.dumpRaw(g.tarball(entries...)) }

// dumpRaw compresses data as Write does.
func (g *corpusGen) dumpRaw(data []byte, opts ...zstd.EOption) []byte {
	var b bytes.Buffer
	enc, err := zstd.NewWriter(&b, append(encoderOptions, opts...)...)
	if err != nil {
		g.t.Fatal(err)
	}
	if _, err := enc.Write(data); err != nil {
		g.t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		g.t.Fatal(err)
	}
	return b.Bytes()
}

// largeWindow stores data in a zstd frame that declares a 64 MiB window, as
// zstd --long does on a stream. The frame is built by hand (raw blocks) so
// that no encoder shrinks the window to fit the small input.
func (g *corpusGen) largeWindow(data []byte) []byte {
	// Frame header descriptor 0: no content size, no checksum, no
	// dictionary. Window descriptor: exponent 16, mantissa 0, so 2^(10+16).
	b := append(bytes.Clone(zstdMagic), 0x00, 16<<3)
	for len(data) > 0 {
		n := min(len(data), 128<<10)
		last := 0
		if n == len(data) {
			last = 1
		}
		// Block header: last-block bit, type 0 (raw), size, little endian.
		h := uint32(last) | uint32(n)<<3
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
		b = append(b, data[:n]...)
		data = data[n:]
	}
	return b
}

func (g *corpusGen) gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		g.t.Fatal(err)
	}
	return b.Bytes()
}

func (g *corpusGen) random(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	b[0] = 'x' // never a zstd magic by chance
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
