package upload

import (
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestParseContentRange reads the ranges a chunk may carry.
func TestParseContentRange(t *testing.T) {
	cases := []struct {
		v    string
		want ContentRange
		ok   bool
	}{
		{"bytes 0-9/10", ContentRange{0, 9, 10}, true},
		{"bytes 33554432-67108863/100000000", ContentRange{33554432, 67108863, 100000000}, true},
		{"bytes 5-4/10", ContentRange{5, 4, 10}, true}, // END before START is the caller's to refuse
		{"bytes=0-9/10", ContentRange{}, false},
		{"bytes 0-9", ContentRange{}, false},
		{"bytes 0/10", ContentRange{}, false},
		{"bytes -1-9/10", ContentRange{}, false},
		{"bytes 0-9/*", ContentRange{}, false},
		{"", ContentRange{}, false},
	}
	for _, tc := range cases {
		got, ok := ParseContentRange(tc.v)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: got %+v, %v; want %+v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
		if tc.ok && got.String() != tc.v {
			t.Errorf("%q: String gives %q back", tc.v, got.String())
		}
	}
}

// TestAnnounceHeaders: what the client sends, the console reads back;
// missing or malformed headers are refused naming the header.
func TestAnnounceHeaders(t *testing.T) {
	a := Announce{Size: 1 << 20, SHA256: strings.Repeat("ab", 32), Filename: "app.db", Overwrite: true}
	if got, err := ParseAnnounce(a.Header()); err != nil || got != a {
		t.Errorf("round trip: got %+v, %v; want %+v", got, err, a)
	}
	upper := a.Header()
	upper.Set(HeaderSHA256, strings.ToUpper(a.SHA256))
	upper.Del(HeaderOverwrite)
	if got, err := ParseAnnounce(upper); err != nil || got.SHA256 != a.SHA256 || got.Overwrite {
		t.Errorf("upper-case SHA-256, no overwrite: got %+v, %v", got, err)
	}
	for _, tc := range []struct{ header, value string }{
		{HeaderSize, ""}, {HeaderSize, "0"}, {HeaderSize, "-5"}, {HeaderSize, "1e6"},
		{HeaderSHA256, ""}, {HeaderSHA256, "abc"}, {HeaderSHA256, strings.Repeat("zz", 32)},
	} {
		h := a.Header()
		h.Set(tc.header, tc.value)
		_, err := ParseAnnounce(h)
		if e, ok := snapdeck.AsError(err); !ok || e.Code != snapdeck.Invalid || e.Field != tc.header {
			t.Errorf("%s %q: got %v, want Invalid on %s", tc.header, tc.value, err, tc.header)
		}
	}
	if h := (Announce{Size: 1, SHA256: a.SHA256}).Header(); h.Get(HeaderOverwrite) != "" || h.Get(HeaderFilename) != "" {
		t.Errorf("no overwrite, no name: got %v", h)
	}
	if p := UploadPath("a1b2/c3d4", "u1"); p != "/v1/instances/a1b2%2Fc3d4/import/u1" {
		t.Errorf("UploadPath: got %s", p)
	}
}
