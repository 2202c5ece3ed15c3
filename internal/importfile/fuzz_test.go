package importfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/dump"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// fuzzSeeds returns the first 4 KiB of every file of both hostile corpora
// and of the good uploads.
func fuzzSeeds(f *testing.F) [][]byte {
	var files []string
	for _, pattern := range []string{
		filepath.Join("testdata", "hostile", "*"), filepath.Join("testdata", "good.*"),
		filepath.Join("..", "dump", "testdata", "hostile", "*.dump"), filepath.Join("..", "dump", "testdata", "good.dump"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	var seeds [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b[:min(len(b), detectSize)])
	}
	return seeds
}

// FuzzDetect feeds format detection arbitrary prefixes: it must never
// panic, must agree with the .dump reader and the SQLite magic, and must
// refuse with a *snapdeck.Error.
//
//	go test ./internal/importfile -run '^$' -fuzz FuzzDetect -fuzztime 30s
func FuzzDetect(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefix []byte) {
		format, err := Detect(prefix)
		if err != nil {
			if _, ok := snapdeck.AsError(err); !ok {
				t.Fatalf("Detect: got untyped error %v", err)
			}
			if format != "" {
				t.Fatalf("Detect: got format %q with error %v", format, err)
			}
		}
		if (format == FormatDump) != dump.IsDump(prefix) {
			t.Fatalf("Detect(% x) = %q, but dump.IsDump says %v", prefix[:min(len(prefix), 8)], format, dump.IsDump(prefix))
		}
		if format == FormatSQLite && !bytes.HasPrefix(prefix, []byte(sqliteMagic)) {
			t.Fatalf("Detect: SQLite without the magic: % x", prefix[:min(len(prefix), 16)])
		}
		if format == FormatSQL && !isText(prefix) {
			t.Fatalf("Detect: SQL text that is not text: %q", prefix)
		}
	})
}

// FuzzSplit feeds the statement splitter arbitrary text: it must never
// panic, and the statements it returns must be the text's own bytes, in
// order, without overlap.
func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if isText(s) {
			f.Add(string(s))
		}
	}
	f.Add("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END; SELECT 'a;b'; -- c")
	f.Fuzz(func(t *testing.T, text string) {
		sp := newSplitter(strings.NewReader(text))
		rest := text
		for {
			stmt, _, err := sp.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, errUnterminated) {
				return
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			i := strings.Index(rest, stmt)
			if stmt == "" || i < 0 {
				t.Fatalf("statement %q is not the next part of the text %q", stmt, rest)
			}
			rest = rest[i+len(stmt):]
		}
	})
}
