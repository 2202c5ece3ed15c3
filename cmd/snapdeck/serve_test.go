package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --public-url and SNAPDECK_PUBLIC_URL are checked before anything starts,
// and a good one reaches the console's pages.
func TestServePublicURL(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--public-url", "ftp://console.example.com"}, nil},
		{[]string{"--public-url", "https://console.example.com/?x=1"}, nil},
		{[]string{"--public-url", "console.example.com"}, nil},
		{nil, map[string]string{"SNAPDECK_PUBLIC_URL": "https://"}},
	} {
		data := filepath.Join(t.TempDir(), "data")
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data}, tc.args...)
		// Cancelled: a console that took the value would stop at once
		// instead of serving on.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := run(ctx, args, func(k string) string { return tc.env[k] }, io.Discard, io.Discard)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("%v %v: got %v (exit %d), want a usage error about --public-url", tc.args, tc.env, err, exitCode(err))
		}
		if _, err := os.Stat(data); err == nil {
			t.Errorf("%v %v: the data directory was created", tc.args, tc.env)
		}
	}

	base, _ := startConsole(t, map[string]string{"SNAPDECK_DATA": t.TempDir(), "SNAPDECK_ADMIN_EMAIL": "ann@example.com",
		"SNAPDECK_ADMIN_PASSWORD": "a-long-password", "SNAPDECK_PUBLIC_URL": "https://console.example.com/"})
	cl := signIn(t, base, "ann@example.com", "a-long-password")
	res, err := cl.http.Get(base + "/import")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "push-to-cloud --url https://console.example.com --database") {
		t.Errorf("the Import page does not show the public URL in its command")
	}
}
