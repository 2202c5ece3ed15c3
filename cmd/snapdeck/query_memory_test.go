package main

import (
	"bufio"
	"context"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// queryMemoryChildEnv, set, makes TestQueryMemoryChild serve a console for
// TestQueryMemoryIsBounded, in a process of its own whose memory it reads.
const queryMemoryChildEnv = "SNAPDECK_TEST_QUERY_MEMORY_CHILD"

// maxQueryRSS is the peak resident memory the console may reach while three
// users run the heaviest SQL they can at once (issue 12).
const maxQueryRSS = 512 << 20

// TestQueryMemoryIsBounded runs the console in a child process and sends
// it, three at a time, the Query-tab SQL that once took it past 2.7 GB: one
// huge value, a recursive CTE of 100 MB of text, and the largest values
// still allowed, several in a row. The child's peak RSS (VmHWM) must stay
// under maxQueryRSS.
func TestQueryMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a console and sends it memory-heavy SQL")
	}
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^TestQueryMemoryChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), queryMemoryChildEnv+"=1", "SNAPDECK_DATA="+data,
		"SNAPDECK_ADMIN_EMAIL=ann@example.com", "SNAPDECK_ADMIN_PASSWORD=a-long-password")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	serving := regexp.MustCompile(`serving on (http://\S+)`)
	var base string
	for base == "" && sc.Scan() {
		if m := serving.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatal("the console did not print its URL")
	}
	go io.Copy(io.Discard, out)
	waitHealthy(t, base)

	cl := signIn(t, base, "ann@example.com", "a-long-password")
	res := cl.post(t, base+"/databases", url.Values{"name": {"heavy"}, "plan": {"free"}})
	id := res.Request.URL.Path[len("/databases/"):]
	idle := peakRSS(t, cmd.Process.Pid)

	const cte = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) "
	for _, sql := range []string{
		"SELECT randomblob(300000000)",
		cte + "SELECT i, printf('%.*c', 100000, 'x') FROM n",
		// Just under the 16 MiB a value may have, three to a row.
		"SELECT randomblob(16000000), randomblob(16000000), randomblob(16000000)",
		"SELECT printf('%.*c', 16000000, 'y')",
	} {
		var wg sync.WaitGroup
		statuses := make([]int, 3)
		for i := range statuses {
			wg.Go(func() {
				form := url.Values{"sql": {sql}, "_csrf": {cl.csrf}}
				res, err := cl.http.PostForm(base+"/databases/"+id+"/query", form)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				statuses[i] = res.StatusCode
			})
		}
		wg.Wait()
		t.Logf("%.60s: statuses %v, peak RSS so far %d MiB", sql, statuses, peakRSS(t, cmd.Process.Pid)>>20)
	}
	if peak := peakRSS(t, cmd.Process.Pid); peak >= maxQueryRSS {
		t.Fatalf("peak RSS of the console: got %d MiB (%d MiB before the queries), want under %d MiB", peak>>20, idle>>20, maxQueryRSS>>20)
	}
}

// TestQueryMemoryChild is the console TestQueryMemoryIsBounded measures;
// alone it does nothing.
func TestQueryMemoryChild(t *testing.T) {
	if os.Getenv(queryMemoryChildEnv) == "" {
		t.Skip("the child of TestQueryMemoryIsBounded")
	}
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, os.Getenv, os.Stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
}

// peakRSS reads the peak resident memory of a process, VmHWM, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
