// Package s3test starts a real SeaweedFS server (`weed mini`) for the tests
// of the S3 snapshot store: its S3 gateway on free loopback ports, with a
// bucket and credentials, stopped at the test's end.
//
// The weed binary is built by .ci/weed.sh and cached outside the
// repository. Outside CI a test skips, saying so, when it is missing; with
// CI=true a missing binary is built here, and a failure fails the test.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running weed mini.
type Server struct {
	// Endpoint is the S3 gateway's URL, http://127.0.0.1:PORT.
	Endpoint string
	// Bucket exists; AccessKeyID and SecretAccessKey may use it.
	Bucket                       string
	AccessKeyID, SecretAccessKey string
	// Dir holds the server's data.
	Dir string

	cmd  *exec.Cmd
	args []string
	env  []string
	logs *bytes.Buffer
	done chan struct{}
}

// Binary returns the path of the weed binary: $SNAPDECK_WEED, or the one
// .ci/weed.sh caches. Outside CI it skips t when there is none; in CI it
// builds it.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SNAPDECK_WEED"); p != "" {
		return p
	}
	script, err := weedScript()
	if err != nil {
		t.Fatalf("find .ci/weed.sh: %v", err)
	}
	// With --check the script only prints the cached binary's path, or
	// fails when it is not built yet.
	if out, err := exec.Command("bash", script, "--check").Output(); err == nil {
		return lastLine(out)
	}
	if os.Getenv("CI") != "true" {
		t.Skip("weed (SeaweedFS) is not built: run .ci/weed.sh (about 5 minutes) to test against a real S3 server; CI always does")
	}
	t.Log("building weed with .ci/weed.sh (about 5 minutes)")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		t.Fatalf(".ci/weed.sh: %v\n%s", err, out)
	}
	return lastLine(out)
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// weedScript finds .ci/weed.sh above the working directory.
func weedScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".ci", "weed.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no .ci/weed.sh in any parent directory")
		}
		dir = parent
	}
}

// freePorts returns n loopback ports free right now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// Start starts weed mini in a temporary directory with a fresh bucket and
// credentials, waits for its S3 gateway to answer, and stops it when t
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	s := &Server{Bucket: "snapdeck-test", AccessKeyID: "snapdeck" + hex.EncodeToString(rnd[:4]),
		SecretAccessKey: hex.EncodeToString(rnd[:]) + "secret", Dir: t.TempDir()}
	p := freePorts(t, 10)
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(p[0])
	s.args = []string{"mini", "-dir=" + s.Dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port=" + strconv.Itoa(p[0]), "-s3.port.grpc=" + strconv.Itoa(p[1]),
		"-master.port=" + strconv.Itoa(p[2]), "-master.port.grpc=" + strconv.Itoa(p[3]),
		"-volume.port=" + strconv.Itoa(p[4]), "-volume.port.grpc=" + strconv.Itoa(p[5]),
		"-filer.port=" + strconv.Itoa(p[6]), "-filer.port.grpc=" + strconv.Itoa(p[7]),
		"-admin.port=" + strconv.Itoa(p[8]), "-admin.port.grpc=" + strconv.Itoa(p[9]),
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.port.legacy=0", "-admin.ui=false", "-webdav=false"}
	s.env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+s.SecretAccessKey, "S3_BUCKET="+s.Bucket)
	s.cmd = exec.Command(bin, s.args...)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("weed mini output:\n%s", s.logs.String())
		}
	})
	return s
}

// startTimeout bounds the wait for the S3 gateway: it answers after about
// 4 s on an idle machine, longer on a loaded one.
const startTimeout = 90 * time.Second

func (s *Server) start() error {
	s.logs = new(bytes.Buffer)
	s.cmd = exec.Command(s.cmd.Path, s.args...)
	s.cmd.Env = s.env
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start weed mini: %w", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// Any HTTP answer (a 403 for an unsigned request) means the gateway
	// is up; S3 answers nothing useful without a signature.
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return s.waitBucket(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("weed mini exited before its S3 gateway answered:\n%s", s.logs.String())
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("weed mini's S3 gateway did not answer within %s:\n%s", startTimeout, s.logs.String())
		case <-tick.C:
		}
	}
}

// waitBucket waits until the bucket from S3_BUCKET is there (weed makes it
// just after its gateway starts answering).
func (s *Server) waitBucket(ctx context.Context) error {
	u, _ := url.Parse(s.Endpoint)
	client, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKeyID, s.SecretAccessKey, ""),
		BucketLookup: minio.BucketLookupPath, Region: "us-east-1"})
	if err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := client.BucketExists(ctx, s.Bucket)
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("bucket %s did not appear within %s (last: %v, %v):\n%s", s.Bucket, startTimeout, ok, err, s.logs.String())
		case <-tick.C:
		}
	}
}

// Stop stops the server (SIGKILL, as a crash would) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Restart starts the server again on the same ports and data after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}
