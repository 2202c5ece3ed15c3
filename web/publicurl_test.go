package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/web"
)

// Behind a TLS-terminating proxy, the public URL makes the cookies Secure
// and is the address in the Import page's command, the API's
// connection_url and the Overview's data-plane URL. Without it, they
// follow the request, as before.
func TestPublicURL(t *testing.T) {
	for _, tc := range []struct {
		public, want string
		secure       bool
	}{
		{"https://console.example.com/", "https://console.example.com", true},
		{"http://console.internal:8080", "http://console.internal:8080", false},
		{"", "", false},
	} {
		c := mustConsole(t, func(cfg *web.Config) { cfg.PublicURL = tc.public })
		want := tc.want
		if want == "" {
			want = c.srv.URL
		}
		cl := c.newClient("")
		res, _ := cl.get("/login")
		res2, _ := cl.post("/login", url.Values{"email": {"member@x"}, "password": {testPassword}}, true)
		for _, ck := range append(res.Cookies(), res2.Cookies()...) {
			if ck.Secure != tc.secure {
				t.Errorf("public URL %q: cookie %s Secure=%v, want %v", tc.public, ck.Name, ck.Secure, tc.secure)
			}
		}
		if len(res2.Cookies()) == 0 {
			t.Errorf("public URL %q: sign-in set no cookie", tc.public)
		}
		_, body := cl.get("/import")
		if !strings.Contains(body, "push-to-cloud --url "+want+" --database") || !strings.Contains(body, "data-console-url>"+want+"<") {
			t.Errorf("public URL %q: the Import page does not use %s", tc.public, want)
		}
		a := c.mustAPI("member@x")
		inst := a.do("POST", "/v1/instances", `{"name":"orders","type":"free-db"}`).data()
		wantURL := want + "/db/" + fmt.Sprint(inst["id"]) + "/"
		if got := inst["connection_url"]; got != wantURL {
			t.Errorf("public URL %q: connection_url %v, want %s", tc.public, got, wantURL)
		}
		signedIn := c.newClient("member@x")
		_, body = signedIn.get("/databases/" + fmt.Sprint(inst["id"]))
		if !strings.Contains(body, `data-connection-url="`+wantURL+`"`) {
			t.Errorf("public URL %q: the Overview does not show %s", tc.public, wantURL)
		}
	}
}

func TestParsePublicURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://console.example.com", "https://console.example.com"},
		{"https://console.example.com/", "https://console.example.com"},
		{"http://10.0.0.5:8080", "http://10.0.0.5:8080"},
		{"https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"},
		{"console.example.com", ""},
		{"ftp://console.example.com", ""},
		{"https://", ""},
		{"https://:443", ""},
		{"https://console.example.com/snapdeck", ""},
		{"https://console.example.com/?a=b", ""},
		{"https://console.example.com?", ""},
		{"https://console.example.com#top", ""},
		{"https://ann:pw@console.example.com", ""},
		{"javascript:alert(1)", ""},
		{"https://console.example.com\n", ""},
	} {
		got, err := web.ParsePublicURL(tc.in)
		if tc.want == "" && err == nil {
			t.Errorf("%q: got %q, want refused", tc.in, got)
		}
		if tc.want != "" && (err != nil || got != tc.want) {
			t.Errorf("%q: got %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}
