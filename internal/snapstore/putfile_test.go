package snapstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// sourceFile writes n random bytes to a new file in dir and returns it
// open for reading, as Litestream hands its local copy, and its content.
func sourceFile(t *testing.T, dir string, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	name := filepath.Join(dir, "0000000000000001-0000000000000001.ltx")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// getWhole reads key back and fails unless it is exactly want.
func getWhole(t *testing.T, b snapstore.Blobs, key string, want []byte) {
	t.Helper()
	got, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: %d bytes, not the %d put (equal prefix: %v)", key, len(got), len(want), bytes.HasPrefix(want, got))
	}
}

// tempFiles lists the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var tmps []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".tmp") {
			tmps = append(tmps, path)
		}
		return nil
	})
	return tmps
}

// TestLocalPutFileLinks stores a file by hard link: the blob is the
// source's file itself, reads back whole whatever the file's offset, and
// outlives the source's name.
func TestLocalPutFileLinks(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "ltx")
	os.Mkdir(src, 0o755)
	f, data := sourceFile(t, src, 3<<20+17)
	if _, err := f.Read(make([]byte, 1000)); err != nil { // moves the offset
		t.Fatal(err)
	}
	blobs, err := snapstore.NewLocal(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	const key = "pitr/db1/l0/a.ltx"
	if err := blobs.PutFile(ctx, key, f); err != nil {
		t.Fatal(err)
	}
	// Twice, as Litestream does after a cancelled upload: the same file
	// under the same key.
	if err := blobs.PutFile(ctx, key, f); err != nil {
		t.Fatal(err)
	}
	getWhole(t, blobs, key, data)
	srcInfo, _ := f.Stat()
	blobInfo, err := os.Stat(filepath.Join(root, "blobs", key))
	if err != nil || !os.SameFile(srcInfo, blobInfo) {
		t.Fatalf("the blob is not the source file (linked): %v", err)
	}
	if tmps := tempFiles(t, root); len(tmps) > 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	if err := os.Remove(f.Name()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	getWhole(t, blobs, key, data)
	var keys []string
	blobs.List(ctx, func(k string) error { keys = append(keys, k); return nil })
	if len(keys) != 1 || keys[0] != key {
		t.Fatalf("listed %v, want only %s", keys, key)
	}
}

// TestLocalPutFileCopiesWhenItCannotLink covers the copy: a source whose
// name is gone (linking fails), a source whose name now leads to another
// file (linking would take the wrong one), and, where the machine has one,
// a source on another filesystem (EXDEV).
func TestLocalPutFileCopiesWhenItCannotLink(t *testing.T) {
	ctx := context.Background()
	blobsDir := filepath.Join(t.TempDir(), "blobs")
	blobs, err := snapstore.NewLocal(blobsDir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, key string, f *os.File, data []byte) {
		t.Helper()
		if err := blobs.PutFile(ctx, key, f); err != nil {
			t.Fatal(err)
		}
		getWhole(t, blobs, key, data)
		srcInfo, _ := f.Stat()
		blobInfo, err := os.Stat(filepath.Join(blobsDir, key))
		if err != nil || os.SameFile(srcInfo, blobInfo) {
			t.Fatalf("the blob is the source file, want a copy (%v)", err)
		}
		if tmps := tempFiles(t, blobsDir); len(tmps) > 0 {
			t.Fatalf("temporary files left: %v", tmps)
		}
	}
	t.Run("removed", func(t *testing.T) {
		f, data := sourceFile(t, t.TempDir(), 1<<20+3)
		os.Remove(f.Name())
		check(t, "pitr/db1/l0/removed.ltx", f, data)
	})
	t.Run("replaced", func(t *testing.T) {
		f, data := sourceFile(t, t.TempDir(), 1<<20+5)
		other := f.Name() + ".new"
		if err := os.WriteFile(other, []byte("another file"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, f.Name()); err != nil {
			t.Fatal(err)
		}
		check(t, "pitr/db1/l0/replaced.ltx", f, data)
	})
	t.Run("other-filesystem", func(t *testing.T) {
		dir, err := os.MkdirTemp("/dev/shm", "snapdeck-putfile-")
		if err != nil {
			t.Skipf("no /dev/shm: %v", err)
		}
		defer os.RemoveAll(dir)
		var shm, here syscall.Stat_t
		if syscall.Stat(dir, &shm) != nil || syscall.Stat(blobsDir, &here) != nil || shm.Dev == here.Dev {
			t.Skip("/dev/shm is not another filesystem here")
		}
		f, data := sourceFile(t, dir, 1<<20+7)
		check(t, "pitr/db1/l0/shm.ltx", f, data)
	})
	t.Run("not-a-regular-file", func(t *testing.T) {
		// Not a case Litestream makes: PutFile fails and stores
		// nothing.
		d, err := os.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := blobs.PutFile(ctx, "pitr/db1/l0/dir.ltx", d); err == nil {
			t.Fatal("a directory was stored")
		}
		if _, err := blobs.Get(ctx, "pitr/db1/l0/dir.ltx"); snapdeck.ErrorCode(err) != snapdeck.NotFound {
			t.Fatalf("after a failed PutFile: %v, want NotFound", err)
		}
	})
}

// The crash test runs putFileCrashChild in a child process (this test
// binary again) that stores a file over an older blob of the same key and
// kills itself with SIGKILL at a fault point of PutFile.
const putFileCrashEnv = "SNAPDECK_PUTFILE_CRASH"

func TestKillDuringPutFile(t *testing.T) {
	for _, tc := range []struct {
		point   string
		wantNew bool
	}{
		{"putfile:staged", false},
		{"putfile:renamed", true},
	} {
		t.Run(strings.ReplaceAll(tc.point, ":", "_"), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestPutFileCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), putFileCrashEnv+"="+dir+"|"+tc.point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed at %s; output:\n%s", err, tc.point, out)
			}
			newData, err := os.ReadFile(filepath.Join(dir, "src", "new.ltx"))
			if err != nil {
				t.Fatal(err)
			}
			blobs, err := snapstore.NewLocal(filepath.Join(dir, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			want := []byte("the older blob")
			if tc.wantNew {
				want = newData
			}
			getWhole(t, blobs, crashKey, want)
			if tmps := tempFiles(t, filepath.Join(dir, "blobs")); len(tmps) > 0 {
				t.Fatalf("the reopen left temporary files: %v", tmps)
			}
			// The source is whole: the reopen removed the temporary link,
			// not the file.
			if len(newData) != 2<<20 {
				t.Fatalf("the source has %d bytes after the crash, want %d", len(newData), 2<<20)
			}
			if again, err := os.ReadFile(filepath.Join(dir, "src", "new.ltx")); err != nil || !bytes.Equal(again, newData) {
				t.Fatalf("the source after the reopen: %d bytes (%v), want it unchanged", len(again), err)
			}
		})
	}
}

const crashKey = "pitr/db1/l0/crash.ltx"

func TestPutFileCrashChild(t *testing.T) {
	env := os.Getenv(putFileCrashEnv)
	if env == "" {
		t.Skip("run by TestKillDuringPutFile")
	}
	dir, point, _ := strings.Cut(env, "|")
	ctx := context.Background()
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Put(ctx, crashKey, []byte("the older blob")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	data := make([]byte, 2<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(src, "new.ltx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(src, "new.ltx"))
	if err != nil {
		t.Fatal(err)
	}
	snapstore.FaultHook = func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	blobs.PutFile(ctx, crashKey, f)
	t.Fatalf("not killed at %s", point)
}
