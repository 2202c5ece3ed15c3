package durable_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/snapdeck/snapdeck/internal/durable"
)

func TestSync(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, dir} {
		if err := durable.Sync(p); err != nil {
			t.Errorf("Sync(%s): got %v, want nil", p, err)
		}
	}
	if err := durable.SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing directory: got nil, want an error")
	}
}
