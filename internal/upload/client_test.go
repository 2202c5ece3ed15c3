package upload

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClient sends the three requests to a console stand-in that checks
// what arrives and answers as docs/api.md says: the upload object, an
// error envelope with its reason and headers, or a body that is no JSON.
func TestClient(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Authorization")+" "+
			r.Header.Get(HeaderSize)+r.Header.Get(HeaderContentRange))
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(map[string]any{"data": Reply{UploadID: "u1", Size: 10, Status: StatusReceiving}})
		case http.MethodPut:
			w.Header().Set(HeaderReceived, "4")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"errors":[{"message":"The console has 4 bytes","reason":"upload-offset-mismatch","status":"x"}]}`))
		case http.MethodGet:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("<html>proxy error</html>"))
		}
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), URL: srv.URL, Token: "tok"}
	ctx := context.Background()

	r, err := c.Announce(ctx, "a1b2c3d4", Announce{Size: 10, SHA256: strings.Repeat("0", 64)})
	if err != nil || r.UploadID != "u1" || r.Status != StatusReceiving {
		t.Errorf("Announce: got %+v, %v", r, err)
	}
	_, err = c.PutChunk(ctx, "a1b2c3d4", "u1", ContentRange{0, 9, 10}, strings.NewReader("0123456789"))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Reason != ReasonOffsetMismatch || ae.Header.Get(HeaderReceived) != "4" || ae.Transient() {
		t.Errorf("PutChunk: got %#v, want a 409 offset mismatch telling 4 bytes, not transient", err)
	}
	_, err = c.Status(ctx, "a1b2c3d4", "u1")
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !ae.Transient() || ae.Error() != "the console answered 503" {
		t.Errorf("Status: got %v, want a transient 503", err)
	}
	want := []string{
		"POST /v1/instances/a1b2c3d4/import Bearer tok 10",
		"PUT /v1/instances/a1b2c3d4/import/u1 Bearer tok bytes 0-9/10",
		"GET /v1/instances/a1b2c3d4/import/u1 Bearer tok ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
