package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// TestSnapshotStoreFlags checks --snapshot-store and its S3 settings:
// local by default, an s3:// URL from the flag or SNAPDECK_SNAPSHOT_STORE,
// the S3 credentials from SNAPDECK_S3_* over AWS_*, and a wrong URL
// refused as wrong usage.
func TestSnapshotStoreFlags(t *testing.T) {
	parse := func(env map[string]string, args ...string) (*serveCommand, error) {
		c := &serveCommand{getenv: func(k string) string { return env[k] }, stdout: io.Discard, stderr: io.Discard}
		return c, c.parse(args)
	}
	c, err := parse(nil)
	if err != nil || c.snapshotStore != "" || c.s3.Region != "us-east-1" || c.s3.CacheSize != 0 {
		t.Errorf("defaults: store %q region %q cache %d, %v; want local, us-east-1, auto (0)", c.snapshotStore, c.s3.Region, c.s3.CacheSize, err)
	}
	for _, v := range []string{"auto", "AUTO"} {
		if c, err := parse(map[string]string{"SNAPDECK_SNAPSHOT_CACHE_SIZE": "4GiB"}, "--snapshot-cache-size", v); err != nil || c.s3.CacheSize != 0 {
			t.Errorf("--snapshot-cache-size %s over the variable's 4GiB: cache %d, %v; want auto (0)", v, c.s3.CacheSize, err)
		}
	}
	if c, err := parse(map[string]string{"SNAPDECK_SNAPSHOT_CACHE_SIZE": "auto"}); err != nil || c.s3.CacheSize != 0 {
		t.Errorf("SNAPDECK_SNAPSHOT_CACHE_SIZE=auto: cache %d, %v; want auto (0)", c.s3.CacheSize, err)
	}
	c, err = parse(map[string]string{"SNAPDECK_SNAPSHOT_STORE": "s3://b/p", "SNAPDECK_S3_ENDPOINT": "http://127.0.0.1:8333",
		"SNAPDECK_SNAPSHOT_CACHE_SIZE": "64MiB", "AWS_ACCESS_KEY_ID": "aws", "AWS_SECRET_ACCESS_KEY": "aws-secret"})
	if err != nil || c.snapshotStore != "s3://b/p" || c.s3.Endpoint != "http://127.0.0.1:8333" || c.s3.CacheSize != 64<<20 ||
		c.s3.AccessKeyID != "aws" || c.s3.SecretAccessKey != "aws-secret" {
		t.Errorf("from the environment: %+v %q, %v", c.s3, c.snapshotStore, err)
	}
	c, err = parse(map[string]string{"SNAPDECK_S3_ACCESS_KEY_ID": "mine", "SNAPDECK_S3_SECRET_ACCESS_KEY": "my-secret",
		"AWS_ACCESS_KEY_ID": "aws", "AWS_SECRET_ACCESS_KEY": "aws-secret"}, "--snapshot-store", "s3://b", "--s3-region", "eu-west-1")
	if err != nil || c.s3.AccessKeyID != "mine" || c.s3.SecretAccessKey != "my-secret" || c.s3.Region != "eu-west-1" || c.snapshotStore != "s3://b" {
		t.Errorf("SNAPDECK_S3_* over AWS_*: %+v, %v", c.s3, err)
	}
	for _, bad := range []string{"/var/snapshots", "s3://", "s3:///prefix", "https://bucket/prefix"} {
		if _, err := parse(nil, "--snapshot-store", bad); !isUsage(err) {
			t.Errorf("--snapshot-store %q: %v, want a usage error", bad, err)
		}
	}
	for _, bad := range []string{"0", "-1GiB", "lots"} {
		if _, err := parse(nil, "--snapshot-cache-size", bad); !isUsage(err) {
			t.Errorf("--snapshot-cache-size %s: %v, want a usage error", bad, err)
		}
		if _, err := parse(map[string]string{"SNAPDECK_SNAPSHOT_CACHE_SIZE": bad}); !isUsage(err) {
			t.Errorf("SNAPDECK_SNAPSHOT_CACHE_SIZE=%s: %v, want a usage error", bad, err)
		}
	}
}

func isUsage(err error) bool {
	_, ok := err.(usageError)
	return ok
}

// TestServeRefusesABadS3Store: serve stops before it listens, with the S3
// error in words, on wrong credentials, a missing bucket, an unreachable
// endpoint, and a prefix another live node holds; and a clean stop frees
// the prefix.
func TestServeRefusesABadS3Store(t *testing.T) {
	weed := s3test.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	good := func() map[string]string {
		return map[string]string{"SNAPDECK_SNAPSHOT_STORE": "s3://" + weed.Bucket + "/node", "SNAPDECK_S3_ENDPOINT": weed.Endpoint,
			"SNAPDECK_S3_ACCESS_KEY_ID": weed.AccessKeyID, "SNAPDECK_S3_SECRET_ACCESS_KEY": weed.SecretAccessKey,
			"SNAPDECK_ADMIN_EMAIL": "admin@x", "SNAPDECK_ADMIN_PASSWORD": "correct-horse-battery"}
	}
	refuse := func(name string, env map[string]string, want string) {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()},
			func(k string) string { return env[k] }, &out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: serve returned %v, want an error saying %q", name, err, want)
		}
		if strings.Contains(out.String(), "serving on") {
			t.Errorf("%s: serve listened before refusing: %s", name, out.String())
		}
	}
	env := good()
	env["SNAPDECK_S3_SECRET_ACCESS_KEY"] = "wrong"
	refuse("wrong secret", env, "signature we calculated does not match")
	env = good()
	env["SNAPDECK_SNAPSHOT_STORE"] = "s3://no-such-bucket/node"
	refuse("missing bucket", env, `bucket "no-such-bucket" does not exist`)
	env = good()
	env["SNAPDECK_S3_ENDPOINT"] = closed
	refuse("unreachable endpoint", env, "connection refused")

	_, stop := startConsole(t, good(), "--data", t.TempDir())
	refuse("second node", good(), "is in use by node")
	if err := stop(); err != nil {
		t.Fatalf("stop the first node: %v", err)
	}
	_, stop = startConsole(t, good(), "--data", t.TempDir())
	stop()
}
