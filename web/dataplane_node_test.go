package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeClient finds node and the @libsql/client package that .ci/run
// installs (SNAPDECK_NODE_MODULES, else ~/.cache/snapdeck-node). Outside CI
// a missing one skips the test with what to install; in CI it fails.
func nodeClient(t *testing.T) (node, entry string) {
	t.Helper()
	modules := os.Getenv("SNAPDECK_NODE_MODULES")
	if modules == "" {
		home, _ := os.UserHomeDir()
		modules = filepath.Join(home, ".cache", "snapdeck-node", "node_modules")
	}
	entry = filepath.Join(modules, "@libsql", "client", "lib-esm", "node.js")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(entry)
	}
	if err != nil {
		msg := "libSQL's JavaScript client is not installed (" + err.Error() + "): run the @libsql/client block of .ci/run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, entry
}

// TestNodeClient runs @libsql/client 0.18.0 under Node, unchanged, against
// the console's router (testdata/libsql_client.mjs): execute with values at
// their extremes, batch("write"), transaction() rolled back and committed,
// executeMultiple and errors, with the URL given with and without its
// trailing slash.
func TestNodeClient(t *testing.T) {
	node, entry := nodeClient(t)
	c, d, token, _ := goClientConsole(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "libsql_client.mjs"))
	cmd.Env = append(os.Environ(), "LIBSQL_CLIENT_ENTRY="+entry, "DB_URL="+c.srv.URL+"/db/"+d.ID, "DB_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("node client: %v\n%s", err, out)
	}
}
