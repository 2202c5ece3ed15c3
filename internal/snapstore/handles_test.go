package snapstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// openFiles returns the files under dir this process has open, as
// /proc/self/fd shows them ("... (deleted)" once unlinked).
func openFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) {
			out = append(out, target)
		}
	}
	return out
}

func getRange(t *testing.T, l *Local, key string, n int) (string, error) {
	t.Helper()
	buf := make([]byte, n)
	err := l.GetRange(context.Background(), key, 0, buf)
	return string(buf), err
}

// A blob deleted or replaced is never read from a file kept open before:
// a read that starts after Delete or Put has returned sees what the key
// holds then.
func TestLocalReadsNoBlobItDeletedOrReplaced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Put(ctx, "packs/a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, err := getRange(t, l, "packs/a", 5); err != nil || got != "hello" {
		t.Fatalf("GetRange: got %q, %v", got, err)
	}
	if err := l.Delete(ctx, "packs/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := getRange(t, l, "packs/a", 5); snapdeck.ErrorCode(err) != snapdeck.NotFound {
		t.Errorf("GetRange after Delete: got %v, want NotFound", err)
	}
	if files := openFiles(t, dir); len(files) != 0 {
		t.Errorf("after Delete, files still open: %v", files)
	}

	// Replaced by Put, by a batch and by PutFile.
	replace := map[string]func(key, content string) error{
		"Put": func(key, content string) error { return l.Put(ctx, key, []byte(content)) },
		"Batch": func(key, content string) error {
			b := l.NewBatch()
			if err := b.Put(ctx, key, []byte(content)); err != nil {
				return err
			}
			return b.Commit(ctx)
		},
		"PutFile": func(key, content string) error {
			path := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			return l.PutFile(ctx, key, f)
		},
	}
	for how, put := range replace {
		key := "packs/" + strings.ToLower(how)
		if err := put(key, "first"); err != nil {
			t.Fatal(err)
		}
		if got, err := getRange(t, l, key, 5); err != nil || got != "first" {
			t.Fatalf("%s: GetRange: got %q, %v", how, got, err)
		}
		if err := put(key, "again"); err != nil {
			t.Fatal(err)
		}
		if got, err := getRange(t, l, key, 5); err != nil || got != "again" {
			t.Errorf("%s: GetRange after replacing the blob: got %q, %v, want again", how, got, err)
		}
	}
}

// Local keeps at most handleCacheSize files open however many blobs are
// read, and none after Close; reads after Close still work.
func TestLocalKeepsFewFilesOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * handleCacheSize
	for i := range n {
		if err := l.Put(ctx, fmt.Sprintf("packs/p%d", i), []byte(fmt.Sprintf("blob %4d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		for i := range n {
			if got, err := getRange(t, l, fmt.Sprintf("packs/p%d", i), 9); err != nil || got != fmt.Sprintf("blob %4d", i) {
				t.Fatalf("round %d, blob %d: got %q, %v", round, i, got, err)
			}
		}
	}
	if open := len(openFiles(t, dir)); open == 0 || open > handleCacheSize {
		t.Errorf("%d files open after reading %d blobs twice, want 1 to %d", open, n, handleCacheSize)
	}
	l.Close()
	if files := openFiles(t, dir); len(files) != 0 {
		t.Errorf("after Close, %d files still open: %v", len(files), files[:min(3, len(files))])
	}
	if got, err := getRange(t, l, "packs/p7", 9); err != nil || got != "blob    7" {
		t.Errorf("GetRange after Close: got %q, %v", got, err)
	}
	if files := openFiles(t, dir); len(files) != 0 {
		t.Errorf("a read after Close left %d files open: %v", len(files), files[:min(3, len(files))])
	}
}

// The packs a sweep deletes are closed, and a store's Close closes the
// rest: reading snapshots leaves no file of the store open.
func TestSweptPacksAreClosed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	s.now = func() time.Time { return clock }
	a, b := makeImage(3000, 1), makeImage(3000, 2)
	rootA, _ := mustPut(t, s, a)
	rootB, _ := mustPut(t, s, b)
	for _, root := range []string{rootA, rootB} {
		mustRead(t, s, root)
	}
	if len(openFiles(t, dir)) == 0 {
		t.Fatalf("no pack open after reading two snapshots: the test would prove nothing")
	}
	clock = clock.Add(2 * DefaultGrace)
	if _, err := s.Sweep(ctx, []string{rootB}); err != nil {
		t.Fatal(err)
	}
	for _, f := range openFiles(t, dir) {
		if strings.HasSuffix(f, "(deleted)") {
			t.Errorf("a swept pack is still open: %s", f)
		}
	}
	if got := mustRead(t, s, rootB); !bytes.Equal(got, b) {
		t.Errorf("live snapshot differs after the sweep")
	}
	s.Close(ctx)
	if files := openFiles(t, dir); len(files) != 0 {
		t.Errorf("after Close, %d files of the store still open: %v", len(files), files[:min(3, len(files))])
	}
}
