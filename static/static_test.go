package static

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, url string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHashedPathServesTheBytes(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		name, ctype string
	}{
		{"css/app.css", "text/css; charset=utf-8"},
		{"js/htmx.min.js", "text/javascript; charset=utf-8"},
		{"icons/favicon.svg", "image/svg+xml"},
	} {
		want, err := files.ReadFile(tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		url := Path(tc.name)
		if url == Prefix+tc.name || !strings.HasPrefix(url, Prefix) {
			t.Fatalf("Path(%q) = %q, want a hashed URL under %s", tc.name, url, Prefix)
		}
		res := get(t, h, url)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: got status %d, want 200", url, res.StatusCode)
		}
		if !bytes.Equal(body, want) {
			t.Errorf("%s: got %d bytes, want the %d embedded bytes", url, len(body), len(want))
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: got Content-Type %q, want %q", url, got, tc.ctype)
		}
		if got := res.Header.Get("Cache-Control"); got != cacheImmutable {
			t.Errorf("%s: got Cache-Control %q, want %q", url, got, cacheImmutable)
		}

		// Mounted behind http.StripPrefix the handler sees the bare name.
		stripped := http.StripPrefix("/static", h)
		if res := get(t, stripped, url); res.StatusCode != http.StatusOK {
			t.Errorf("%s behind StripPrefix: got status %d, want 200", url, res.StatusCode)
		}

		// The plain name is served with a short cache.
		res = get(t, h, Prefix+tc.name)
		if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != cacheShort {
			t.Errorf("%s: got %d %q, want 200 %q", Prefix+tc.name, res.StatusCode, res.Header.Get("Cache-Control"), cacheShort)
		}

		// A revalidation with the ETag is answered 304.
		res = get(t, h, url, "If-None-Match", res.Header.Get("ETag"))
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: got %d, want 304", url, res.StatusCode)
		}
	}
}

func TestWrongHashIsNotFound(t *testing.T) {
	h := Handler()
	for _, url := range []string{
		"/static/css/app.00000000.css",
		"/static/css/app.deadbeef.css",
		"/static/js/htmx.min.0badf00d.js",
		"/static/css/missing.css",
		"/static/",
		"/static/../static.go",
	} {
		if res := get(t, h, url); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: got status %d, want 404", url, res.StatusCode)
		}
	}
}

func TestPathIsStable(t *testing.T) {
	a, b := Path("css/app.css"), Path("/css/app.css")
	if a != b {
		t.Errorf("Path with and without a leading slash: got %q and %q, want equal", a, b)
	}
	if got := Path("nope.css"); got != "/static/nope.css" {
		t.Errorf("Path of an unknown file: got %q, want /static/nope.css", got)
	}
}

func TestOtherMethodsAreRefused(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, Path("css/app.css"), nil)
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: got %d, want 405", rec.Code)
	}
}
