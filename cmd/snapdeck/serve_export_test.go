package main

import (
	"io"
	"strings"
	"testing"
)

// TestExportCacheSizeFlag checks --export-cache-size: 2 GiB by default,
// SNAPDECK_EXPORT_CACHE_SIZE, the flag over the variable, and no cap of
// zero.
func TestExportCacheSizeFlag(t *testing.T) {
	cases := []struct {
		args    []string
		env     string
		want    int64
		wantErr string
	}{
		{want: 2 << 30},
		{env: "64MiB", want: 64 << 20},
		{args: []string{"--export-cache-size", "1GB"}, env: "64MiB", want: 1_000_000_000},
		{env: "lots", wantErr: "SNAPDECK_EXPORT_CACHE_SIZE"},
		{args: []string{"--export-cache-size", "0"}, wantErr: "--export-cache-size must be positive"},
	}
	for _, tc := range cases {
		env := map[string]string{"SNAPDECK_EXPORT_CACHE_SIZE": tc.env}
		c := &serveCommand{getenv: func(k string) string { return env[k] }, stdout: io.Discard, stderr: io.Discard}
		err := c.parse(tc.args)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v %q: got error %v, want one containing %q", tc.args, tc.env, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v %q: %v", tc.args, tc.env, err)
		case c.exportCache != tc.want:
			t.Errorf("%v %q: got %d, want %d", tc.args, tc.env, c.exportCache, tc.want)
		}
	}
}
