package importfile

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// update regenerates testdata: go test ./internal/importfile -run TestHostileUploads -update
var update = flag.Bool("update", false, "regenerate testdata/hostile and the good uploads")

// testLimits are the limits the corpus is checked with: a bomb past 1 MiB
// stays a small file, and a runaway statement is stopped quickly.
var testLimits = Limits{MaxSize: 1 << 20, CheckTimeout: 2 * time.Second}

// hostileUpload is one file of the corpus and how Prepare must refuse it.
type hostileUpload struct {
	file   string
	build  func(t *testing.T) []byte
	code   snapdeck.Code
	want   string
	prefix bool // want is a prefix: the rest is SQLite's own wording
}

var hostileUploads = []hostileUpload{
	{"empty.bin", func(t *testing.T) []byte { return nil },
		snapdeck.Invalid, "the file is empty: " + Accepted, false},
	{"random-bytes.bin", func(t *testing.T) []byte {
		r := rand.New(rand.NewPCG(1, 2))
		b := make([]byte, 8192)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = 0x00
		return b
	}, snapdeck.Invalid, "this is not a file snapdeck can load (it is neither a .dump, a SQLite database nor SQL text): " + Accepted, false},
	{"gzipped.sql.gz", func(t *testing.T) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(goodSQL(t))
		zw.Close()
		return buf.Bytes()
	}, snapdeck.Invalid, "this file is gzip-compressed: decompress it first (gunzip), or " + Accepted, false},
	{"archive.zip", func(t *testing.T) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("database.sqlite")
		w.Write(goodSQLite(t))
		zw.Close()
		return buf.Bytes()
	}, snapdeck.Invalid, "this is a zip archive: extract the database from it first, or " + Accepted, false},
	{"notes.txt", func(t *testing.T) []byte { return []byte("Shopping list\n- eggs\n- milk\n") },
		snapdeck.Invalid, `this is a text file, but not SQL: it starts with "Shopping" rather than a statement such as CREATE or INSERT; ` + Accepted, false},
	{"utf16.sql", func(t *testing.T) []byte { return []byte("\xff\xfeC\x00R\x00E\x00") },
		snapdeck.Invalid, "this text is UTF-16: save it as UTF-8, or " + Accepted, false},
	{"sqlite-truncated.sqlite", func(t *testing.T) []byte { return goodSQLite(t)[:4096*2] },
		snapdeck.Invalid, "the file ends early: it looks truncated (its header says 8 pages, the file holds 2)", false},
	{"sqlite-header-only.sqlite", func(t *testing.T) []byte { return goodSQLite(t)[:64] },
		snapdeck.Invalid, "the file ends early: it looks truncated (a SQLite database is at least one page)", false},
	{"sqlite-partial-page.sqlite", func(t *testing.T) []byte { b := goodSQLite(t); return b[:len(b)-100] },
		snapdeck.Invalid, "the file is 32668 bytes, not a whole number of 4096-byte pages: it looks cut short or padded", false},
	{"sqlite-bad-page-size.sqlite", func(t *testing.T) []byte {
		b := goodSQLite(t)
		binary.BigEndian.PutUint16(b[16:18], 1000)
		return b
	}, snapdeck.Invalid, "the database header has an invalid page size (1000): SQLite pages are a power of two from 512 to 65536 bytes, so the file is damaged", false},
	{"sqlite-future-format.sqlite", func(t *testing.T) []byte {
		b := goodSQLite(t)
		b[18], b[19] = 3, 3
		return b
	}, snapdeck.Invalid, "the database header says file format 3, which this console's SQLite cannot read: the file is damaged or from a future SQLite", false},
	{"sqlite-corrupt-page.sqlite", func(t *testing.T) []byte {
		b := goodSQLite(t)
		// Scramble the cells of the table's b-tree page (page 2), leaving
		// the header intact: only the integrity check can tell.
		for i := 4096 + 8; i < 4096+4096; i += 7 {
			b[i] ^= 0x5a
		}
		return b
	}, snapdeck.Invalid, "the database is damaged: ", true},
	{"sqlite-too-large.sqlite", func(t *testing.T) []byte {
		b := goodSQLite(t)
		big := make([]byte, 3<<19)
		copy(big, b)
		binary.BigEndian.PutUint32(big[28:32], uint32(len(big)/4096))
		return big
	}, snapdeck.TooLarge, "the database is 1.5MiB, over this console's import limit of 1MiB", false},
	{"sql-attach.sql", func(t *testing.T) []byte {
		return []byte("CREATE TABLE t(n);\nATTACH DATABASE '/etc/passwd' AS secrets;\nINSERT INTO t SELECT * FROM secrets.x;\n")
	}, snapdeck.Invalid, `the SQL text is refused at line 2: it opens another database file ("/etc/passwd") with ATTACH or VACUUM INTO; ` + refusedHint, false},
	{"sql-vacuum-into.sql", func(t *testing.T) []byte {
		return []byte("CREATE TABLE t(n);\nINSERT INTO t VALUES (1);\nVACUUM INTO '/tmp/snapdeck-stolen.db';\n")
	}, snapdeck.Invalid, `the SQL text is refused at line 3: it opens another database file ("/tmp/snapdeck-stolen.db") with ATTACH or VACUUM INTO; ` + refusedHint, false},
	{"sql-load-extension.sql", func(t *testing.T) []byte {
		return []byte("-- loads code into the console\nSELECT load_extension('/tmp/evil.so');\n")
	}, snapdeck.Invalid, "the SQL text is refused at line 2: it calls load_extension(); " + refusedHint, false},
	{"sql-pragma.sql", func(t *testing.T) []byte {
		return []byte("PRAGMA foreign_keys=OFF;\nPRAGMA journal_mode=OFF;\nCREATE TABLE t(n);\n")
	}, snapdeck.Invalid, "the SQL text is refused at line 2: it sets PRAGMA journal_mode; " + refusedHint, false},
	{"sql-dbpage.sql", func(t *testing.T) []byte {
		return []byte("CREATE TABLE t(n);\nINSERT INTO sqlite_dbpage VALUES (1, zeroblob(4096));\n")
	}, snapdeck.Invalid, "the SQL text is refused at line 2: it writes raw database pages (sqlite_dbpage); " + refusedHint, false},
	{"sql-syntax-error.sql", func(t *testing.T) []byte {
		return []byte("CREATE TABLE t(n);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUS (2);\n")
	}, snapdeck.Invalid, `the SQL text fails at line 3: SQLite says near "VALUS": syntax error`, false},
	{"sql-truncated.sql", func(t *testing.T) []byte { s := goodSQL(t); return s[:bytes.LastIndex(s, []byte("'"))] },
		snapdeck.Invalid, "the SQL text ends inside a quoted string or a comment, in the statement at line 108: it looks truncated", false},
	{"sql-no-commit.sql", func(t *testing.T) []byte {
		s := goodSQL(t)
		return s[:bytes.LastIndex(s, []byte("COMMIT;"))]
	}, snapdeck.Invalid, "the SQL text ends inside a transaction it never commits: it looks truncated (sqlite3's .dump ends with COMMIT;)", false},
	{"sql-comments-only.sql", func(t *testing.T) []byte { return []byte("-- nothing to see\n/* still nothing */\n") },
		snapdeck.Invalid, "the file holds no SQL statements: " + Accepted, false},
	{"sql-bomb.sql", func(t *testing.T) []byte {
		return []byte("CREATE TABLE t(b);\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000)\n  INSERT INTO t SELECT randomblob(1000) FROM c;\n")
	}, snapdeck.TooLarge, "the database this SQL text builds grows past this console's import limit of 1MiB", false},
	{"sql-endless.sql", func(t *testing.T) []byte {
		return []byte("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c;\n")
	}, snapdeck.Invalid, "the SQL text ran longer than this console allows (2s) and was stopped at line 1", false},
}

// goodSQLite is a small rollback-journal database: table t of 100 rows.
func goodSQLite(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "good.sqlite")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(DELETE)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE t (n INTEGER, s TEXT)",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100) INSERT INTO t SELECT x, 'row ' || x || hex(zeroblob(100)) FROM c",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goodSQL is SQL text as sqlite3's .dump writes it, with a string that
// holds a semicolon and a trigger whose body holds two.
func goodSQL(t *testing.T) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t (n INTEGER, s TEXT);\n")
	b.WriteString("CREATE TABLE log (msg TEXT);\n")
	b.WriteString("CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES ('insert; one');\n  INSERT INTO log VALUES ('end');\nEND;\n")
	b.WriteString("INSERT INTO t VALUES(0,'semi;colon ''quoted''');\n")
	for i := 1; i < 100; i++ {
		b.WriteString("INSERT INTO t VALUES(" + strconv.Itoa(i) + ",'row " + strconv.Itoa(i) + "');\n")
	}
	b.WriteString("COMMIT;\n")
	return []byte(b.String())
}

// TestHostileUploads refuses each file of the corpus with its own message
// and leaves nothing at the destination.
func TestHostileUploads(t *testing.T) {
	dir := filepath.Join("testdata", "hostile")
	if *update {
		os.MkdirAll(dir, 0o755)
		for _, tc := range hostileUploads {
			if err := os.WriteFile(filepath.Join(dir, tc.file), tc.build(t), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join("testdata", "good.sqlite"), goodSQLite(t), 0o644)
		os.WriteFile(filepath.Join("testdata", "good.sql"), goodSQL(t), 0o644)
	}
	if len(hostileUploads) < 20 {
		t.Errorf("corpus: got %d files, want at least 20", len(hostileUploads))
	}
	seen := map[string]string{}
	for _, tc := range hostileUploads {
		t.Run(tc.file, func(t *testing.T) {
			out := t.TempDir()
			dst := filepath.Join(out, "new.sqlite")
			_, err := Prepare(context.Background(), copyToTemp(t, filepath.Join(dir, tc.file)), dst, testLimits, nil)
			e, ok := snapdeck.AsError(err)
			if !ok {
				t.Fatalf("got %v, want a *snapdeck.Error", err)
			}
			if e.Code != tc.code {
				t.Errorf("code: got %s, want %s (%s)", e.Code, tc.code, e.Message)
			}
			if tc.prefix && !strings.HasPrefix(e.Message, tc.want) || !tc.prefix && e.Message != tc.want {
				t.Errorf("message:\n got %q\nwant %q", e.Message, tc.want)
			}
			if other, dup := seen[e.Message]; dup {
				t.Errorf("same message as %s: %q", other, e.Message)
			}
			seen[e.Message] = tc.file
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("files left behind: %v", entries)
			}
		})
	}
}

// TestHostileDumps refuses every hostile .dump of the dump reader's corpus,
// except the plain SQLite file, which an import accepts for what it is.
func TestHostileDumps(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "dump", "testdata", "hostile", "*.dump"))
	if len(files) < 20 {
		t.Fatalf("dump corpus: got %d files", len(files))
	}
	for _, f := range files {
		_, err := Prepare(context.Background(), copyToTemp(t, f), filepath.Join(t.TempDir(), "new.sqlite"), testLimits, nil)
		if filepath.Base(f) == "plain-sqlite.dump" {
			if err != nil {
				t.Errorf("%s: a SQLite file is accepted whatever its name; got %v", filepath.Base(f), err)
			}
			continue
		}
		if _, ok := snapdeck.AsError(err); !ok {
			t.Errorf("%s: got %v, want a refusal", filepath.Base(f), err)
		}
	}
}

// TestGoodUploads loads each accepted format and checks the rows arrive.
func TestGoodUploads(t *testing.T) {
	cases := []struct {
		file   string
		format Format
		want   string
	}{
		{filepath.Join("..", "dump", "testdata", "good.dump"), FormatDump, ""},
		{filepath.Join("testdata", "good.sqlite"), FormatSQLite, "100:5050"},
		{filepath.Join("testdata", "good.sql"), FormatSQL, "100:4950"},
	}
	for _, tc := range cases {
		src := copyToTemp(t, tc.file)
		dst := filepath.Join(t.TempDir(), "new.sqlite")
		var last int64
		res, err := Prepare(context.Background(), src, dst, testLimits, func(done, total int64) { last = done })
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		fi, _ := os.Stat(dst)
		if res.Format != tc.format || fi == nil || res.Size != fi.Size() || last == 0 {
			t.Errorf("%s: got %+v (file %v, progress %d), want format %s and the file's size", tc.file, res, fi, last, tc.format)
		}
		if tc.want == "" {
			continue
		}
		db, _ := sql.Open("sqlite", "file:"+dst+"?mode=ro")
		var got string
		err = db.QueryRow("SELECT count(*) || ':' || sum(n) FROM t").Scan(&got)
		db.Close()
		if err != nil || got != tc.want {
			t.Errorf("%s: rows got %q (%v), want %s", tc.file, got, err, tc.want)
		}
	}
}

// TestSplitterMatchesSQLite checks statements end where sqlite3_complete
// says, through strings, identifiers, comments and trigger bodies.
func TestSplitterMatchesSQLite(t *testing.T) {
	text := "-- lead\nCREATE TABLE \"a;b\" (x);/* c; */INSERT INTO [a;b] VALUES ('x;y');\n" +
		"CREATE TEMP TRIGGER tr AFTER INSERT ON \"a;b\" BEGIN SELECT 1; SELECT 2; END;\n" +
		"EXPLAIN SELECT `q;`;\nSELECT 1 -- tail"
	want := []string{
		"-- lead\nCREATE TABLE \"a;b\" (x);",
		"/* c; */INSERT INTO [a;b] VALUES ('x;y');",
		"\nCREATE TEMP TRIGGER tr AFTER INSERT ON \"a;b\" BEGIN SELECT 1; SELECT 2; END;",
		"\nEXPLAIN SELECT `q;`;",
		"\nSELECT 1 -- tail",
	}
	sp := newSplitter(strings.NewReader(text))
	var got []string
	var lines []int
	for {
		s, line, err := sp.Next()
		if err != nil {
			break
		}
		got, lines = append(got, s), append(lines, line)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("statements:\n got %q\nwant %q", got, want)
	}
	if wantLines := []int{2, 2, 3, 4, 5}; !slices.Equal(lines, wantLines) {
		t.Errorf("lines: got %v, want %v", lines, wantLines)
	}
}

// copyToTemp copies a corpus file to a temporary directory: Prepare may
// rename a SQLite upload away.
func copyToTemp(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "upload")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}
