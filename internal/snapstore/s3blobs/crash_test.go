package s3blobs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// The crash test runs crashChild in a child process (this test binary,
// re-executed) that captures one image, then kills itself with SIGKILL at
// a fault point of a second capture, on a real SeaweedFS server.
const (
	crashEnv      = "SNAPDECK_S3_CRASH"
	crashPointEnv = "SNAPDECK_S3_CRASH_POINT"
)

func TestKillDuringCaptureOnS3(t *testing.T) {
	weed := s3test.Start(t)
	for _, point := range []string{"capture:pack-written", "capture:before-root", "capture:root-written"} {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			dir := t.TempDir()
			prefix := prefixOf(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringCaptureChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+strings.Join([]string{dir, prefix, weed.Endpoint, weed.Bucket, weed.AccessKeyID, weed.SecretAccessKey}, "|"),
				crashPointEnv+"="+point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child: %v, want killed at %s; output:\n%s", err, point, out)
			}
			root, err := os.ReadFile(filepath.Join(dir, "root"))
			if err != nil {
				t.Fatal(err)
			}
			// What a restart finds: a new cache on the old one's directory,
			// and the first image whole.
			c, err := s3blobs.NewCache(remote(t, weed, prefix), filepath.Join(dir, "cache"), 64<<20, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st, err := snapstore.OpenBlobs(context.Background(), c, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close(context.Background())
			if got := restore(t, st, string(root)); !bytes.Equal(got, testImage(3000)) {
				t.Fatal("the first image differs after the crash")
			}
			st.SetGrace(0)
			if _, err := st.Sweep(context.Background(), []string{string(root)}); err != nil {
				t.Fatalf("Sweep after the crash: %v", err)
			}
			if got := restore(t, st, string(root)); !bytes.Equal(got, testImage(3000)) {
				t.Fatal("the first image differs after the crash and a sweep")
			}
		})
	}
}

// TestKillDuringCaptureChild is the child side of TestKillDuringCaptureOnS3;
// it does nothing in a normal test run.
func TestKillDuringCaptureChild(t *testing.T) {
	env := os.Getenv(crashEnv)
	if env == "" {
		t.Skip("run by TestKillDuringCaptureOnS3")
	}
	f := strings.Split(env, "|")
	dir, point := f[0], os.Getenv(crashPointEnv)
	s, err := s3blobs.New(s3blobs.Config{Prefix: f[1], Endpoint: f[2], Bucket: f[3], AccessKeyID: f[4], SecretAccessKey: f[5]})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s3blobs.NewCache(s, filepath.Join(dir, "cache"), 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapstore.OpenBlobs(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := capture(t, st, testImage(3000), "")
	if err := os.WriteFile(filepath.Join(dir, "root"), []byte(root), 0o600); err != nil {
		t.Fatal(err)
	}
	snapstore.FaultHook = func(p string) {
		if p == point {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	changed := testImage(3000)
	for p := 0; p < 3000; p += 7 {
		changed[p*pageSize+9] ^= 0x5a
	}
	capture(t, st, changed, root)
	t.Fatalf("not killed at %s", point)
}
