package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/web"
)

// Wrong passwords from one address lock that address out of the account
// with 429 and Retry-After, the user signs in from another address, and it
// is all in the activity log. X-Forwarded-For is believed only behind a
// proxy (a public URL set), and only from a proxy on a private address.
func TestLoginThrottleByAddress(t *testing.T) {
	c := mustConsole(t, func(cfg *web.Config) { cfg.PublicURL = "https://console.example.com" })
	from := func(addr string, password string) *http.Response {
		cl := c.newClient("")
		form := url.Values{"email": {"admin@x"}, "password": {password}, "_csrf": {cl.csrf}}
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", addr)
		res, _ := cl.do(req)
		return res
	}
	for i := range auth.MaxFailures {
		if res := from("203.0.113.9", "wrong"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i+1, res.StatusCode)
		}
	}
	res := from("203.0.113.9", testPassword)
	secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != http.StatusTooManyRequests || secs < 14*60 || secs > 15*60 {
		t.Fatalf("the stranger's address with the right password: got %d, Retry-After %q; want 429 with about 15 minutes",
			res.StatusCode, res.Header.Get("Retry-After"))
	}
	if res := from("198.51.100.7", testPassword); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the admin from another address: got %d, want 303", res.StatusCode)
	}
	events, err := c.store.FindEvents(context.Background(), snapdeck.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		if e.Action == "sign-in" {
			count[fmt.Sprintf("%s %s", e.Outcome, strings.SplitN(e.Detail, ":", 2)[0])]++
		}
	}
	want := map[string]int{"refused from 203.0.113.9": auth.MaxFailures + 1, "ok from 198.51.100.7": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("sign-in activity: got %v, want %v", count, want)
	}
}

// Without a public URL, X-Forwarded-For is anyone's to send and is not
// believed: rotating it does not get around the address limit.
func TestLoginThrottleIgnoresForwardedForWithoutProxy(t *testing.T) {
	c := mustConsole(t)
	var last *http.Response
	for i := range auth.MaxAddressFailures + 1 {
		cl := c.newClient("")
		email, password := fmt.Sprintf("random%d@example.com", i), "guess"
		if i == auth.MaxAddressFailures {
			email, password = "admin@x", testPassword
		}
		form := url.Values{"email": {email}, "password": {password}, "_csrf": {cl.csrf}}
		req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1))
		last, _ = cl.do(req)
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("after %d failures from one address: got %d, Retry-After %q; want 429 with Retry-After",
			auth.MaxAddressFailures, last.StatusCode, last.Header.Get("Retry-After"))
	}
}

// After a successful sign-in, next leads only to a path of this console:
// everything a browser could read as another host lands on the databases
// list. Each case goes through the real sign-in form, and the signed-in
// redirect of GET /login as well.
func TestLoginNextStaysOnConsole(t *testing.T) {
	c := mustConsole(t)
	signedIn := c.newClient("member@x")
	cases := []struct{ next, want string }{
		{"", "/databases"},
		{"/databases/abc123/snapshots?tab=1#top", "/databases/abc123/snapshots?tab=1#top"},
		{"/jobs/7", "/jobs/7"},
		{"//evil.example", "/databases"},
		{"///evil.example", "/databases"},
		{"/\\evil.example", "/databases"},
		{"\\/evil.example", "/databases"},
		{"/%2F/evil.example", "/databases"},
		{"/%2f/evil.example", "/databases"},
		{"/%5Cevil.example", "/databases"},
		{"/%09/evil.example", "/databases"},
		{"/\t/evil.example", "/databases"},
		{"/\n/evil.example", "/databases"},
		{"/\r\n/evil.example", "/databases"},
		{"/ /evil.example", "/databases"},
		{"/\x00/evil.example", "/databases"},
		{"/\u3000/evil.example", "/databases"},
		{"\t//evil.example", "/databases"},
		{" /databases", "/databases"},
		{"https://evil.example", "/databases"},
		{"https://evil.example/databases", "/databases"},
		{"http:/evil.example", "/databases"},
		{"//user@evil.example", "/databases"},
		{"javascript:alert(1)", "/databases"},
		{"JaVaScRiPt:alert(1)", "/databases"},
		{"data:text/html,hi", "/databases"},
		{"evil.example", "/databases"},
		{"databases", "/databases"},
	}
	for _, tc := range cases {
		cl := c.newClient("")
		res, _ := cl.post("/login", url.Values{"email": {"member@x"}, "password": {testPassword}, "next": {tc.next}}, true)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tc.want {
			t.Errorf("sign in with next %q: got %d to %q, want 303 to %q", tc.next, res.StatusCode, res.Header.Get("Location"), tc.want)
		}
		res, _ = signedIn.get("/login?next=" + url.QueryEscape(tc.next))
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tc.want {
			t.Errorf("signed in, GET /login?next=%q: got %d to %q, want 303 to %q", tc.next, res.StatusCode, res.Header.Get("Location"), tc.want)
		}
	}
	// The request as the attack sent it, escapes and all.
	res, _ := signedIn.get("/login?next=/%09/evil.example")
	if loc := res.Header.Get("Location"); loc != "/databases" {
		t.Errorf("GET /login?next=/%%09/evil.example: got Location %q, want /databases", loc)
	}
}

// A CSRF token is good for its own session only: a cookie and field pair
// that is valid elsewhere, planted in a signed-in victim's browser, is
// refused and changes nothing. Before sign-in, the sign-in form still
// works with its double-submit cookie.
func TestCSRFTokenBelongsToTheSession(t *testing.T) {
	c := mustConsole(t)
	srv, _ := url.Parse(c.srv.URL)
	victim := c.newClient("admin@x")
	strangerAnon := c.newClient("")
	strangerSignedIn := c.newClient("member@x")
	cookieOf := func(cl *client) string {
		for _, ck := range cl.http.Jar.Cookies(srv) {
			if ck.Name == "snapdeck_csrf" {
				return ck.Value
			}
		}
		t.Fatal("no snapdeck_csrf cookie")
		return ""
	}
	for _, planted := range []struct {
		what          string
		cookie, field string
	}{
		{"an anonymous double-submit pair", cookieOf(strangerAnon), strangerAnon.csrf},
		{"another signed-in session's pair", cookieOf(strangerSignedIn), strangerSignedIn.csrf},
		{"the victim's own cookie with a field equal to it", cookieOf(victim), cookieOf(victim)},
	} {
		victim.http.Jar.SetCookies(srv, []*http.Cookie{{Name: "snapdeck_csrf", Value: planted.cookie, Path: "/"}})
		form := url.Values{"name": {"planted"}, "plan": {"free"}, "_csrf": {planted.field}}
		res, _ := victim.post("/databases", form, false)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: got %d, want 403", planted.what, res.StatusCode)
		}
		dbs, err := c.store.FindDatabases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(dbs) != 0 {
			t.Fatalf("%s: a database was created: %+v", planted.what, dbs)
		}
	}
	// The victim's own token still works, whatever the cookie says.
	if res, _ := victim.post("/databases", url.Values{"name": {"mine"}, "plan": {"free"}}, true); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the session's own token: got %d, want 303", res.StatusCode)
	}
}
