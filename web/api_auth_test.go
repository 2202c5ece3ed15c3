package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

func TestAPITokenEndpoint(t *testing.T) {
	c := mustConsole(t)
	id, secret := c.mustAPIKey("member@x", "ci")
	grant := url.Values{"grant_type": {"client_credentials"}}

	r := requestToken(t, c.srv.URL, id, secret, grant)
	if r.status != http.StatusOK || r.body["token_type"] != "bearer" || r.body["expires_in"] != float64(3600) || r.body["access_token"] == "" {
		t.Fatalf("good credentials: got %d %s, want 200 with a bearer token for 3600 s", r.status, r.raw)
	}
	cases := []struct {
		name          string
		id, secret    string
		form          url.Values
		status        int
		reason, field string
	}{
		{"wrong secret", id, secret + "x", grant, 401, "unauthorized", ""},
		{"unknown client", "sd_nobody", secret, grant, 401, "unauthorized", ""},
		{"no credentials", "", "", grant, 401, "unauthorized", ""},
		{"missing grant_type", id, secret, url.Values{}, 400, "invalid-request", "grant_type"},
		{"other grant_type", id, secret, url.Values{"grant_type": {"password"}}, 400, "unsupported-grant-type", "grant_type"},
	}
	for _, tc := range cases {
		r := requestToken(t, c.srv.URL, tc.id, tc.secret, tc.form)
		e := r.firstError()
		if r.status != tc.status || e["reason"] != tc.reason || (tc.field != "" && e["field"] != tc.field) {
			t.Errorf("%s: got %d %s, want %d reason %s field %q", tc.name, r.status, r.raw, tc.status, tc.reason, tc.field)
		}
	}

	// Form credentials work as well as HTTP Basic (RFC 6749 §2.3.1).
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/oauth/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := callAPI(t, req); r.status != http.StatusOK {
		t.Errorf("form credentials: got %d %s, want 200", r.status, r.raw)
	}
}

func TestAPIBearerTokens(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	if r := a.do("GET", "/v1/instances", ""); r.status != http.StatusOK {
		t.Fatalf("good token: got %d %s", r.status, r.raw)
	}

	// A token signed an hour and a bit ago has expired, even though it was
	// signed with the console's own key.
	id, secret := c.mustAPIKey("member@x", "old")
	past, err := apikey.NewManager(ctx, c.store, activity.New(c.store, nil, nil), nil, func() time.Time { return time.Now().Add(-61 * time.Minute) })
	if err != nil {
		t.Fatal(err)
	}
	k, err := past.Authenticate(ctx, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := past.IssueToken(k)

	for name, tok := range map[string]string{"no token": "", "garbage": "abc.def", "expired": expired, "forged": a.token[:len(a.token)-3] + "AAA"} {
		b := &apiClient{t: t, base: c.srv.URL, token: tok}
		if r := b.do("GET", "/v1/instances", ""); r.status != http.StatusUnauthorized {
			t.Errorf("%s: got %d %s, want 401", name, r.status, r.raw)
		}
	}

	// Revoking the key ends its tokens at once.
	keys, err := c.store.FindAPIKeys(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := c.store.RevokeAPIKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	if r := a.do("GET", "/v1/instances", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked key: got %d %s, want 401", r.status, r.raw)
	}
}

func TestAPIKeyActsWithItsOwnersRole(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	member, err := c.store.FindUserByEmail(ctx, "member@x")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetUserRole(ctx, member.ID, snapdeck.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if r := a.do("GET", "/v1/instances", ""); r.status != http.StatusOK {
		t.Errorf("viewer reads: got %d, want 200", r.status)
	}
	if r := a.do("POST", "/v1/instances", `{"name":"x","type":"free-db"}`); r.status != http.StatusForbidden {
		t.Errorf("viewer creates: got %d %s, want 403", r.status, r.raw)
	}
	if err := c.store.SetUserDisabled(ctx, member.ID, true); err != nil {
		t.Fatal(err)
	}
	if r := a.do("GET", "/v1/instances", ""); r.status != http.StatusUnauthorized {
		t.Errorf("disabled owner: got %d, want 401", r.status)
	}
}

func TestAPIRateLimit(t *testing.T) {
	c := mustConsole(t)
	a := c.mustAPI("member@x")
	for i := 0; i < apikey.DefaultRate; i++ {
		if r := a.do("GET", "/v1/tenants", ""); r.status != http.StatusOK {
			t.Fatalf("request %d: got %d %s, want 200", i+1, r.status, r.raw)
		}
	}
	r := a.do("GET", "/v1/tenants", "")
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != http.StatusTooManyRequests || err != nil || retry < 1 {
		t.Fatalf("request %d: got %d, Retry-After %q; want 429 with seconds", apikey.DefaultRate+1, r.status, r.header.Get("Retry-After"))
	}
	// Another key has its own allowance.
	if r := c.mustAPI("admin@x").do("GET", "/v1/tenants", ""); r.status != http.StatusOK {
		t.Fatalf("another key: got %d, want 200", r.status)
	}
}

func TestAPIBodyLimitIs400(t *testing.T) {
	c := mustConsole(t)
	a := c.mustAPI("member@x")
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `","type":"free-db"}`
	for _, size := range []string{"announced", "chunked"} {
		req, _ := http.NewRequest("POST", c.srv.URL+"/v1/instances", strings.NewReader(big))
		if size == "chunked" {
			req.ContentLength = -1
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		if r := callAPI(t, req); r.status != http.StatusBadRequest {
			t.Errorf("%s oversize body: got %d %s, want 400", size, r.status, r.raw)
		}
	}
	// Past the console-wide 1 MiB limit too: still 400, never 413.
	req, _ := http.NewRequest("POST", c.srv.URL+"/v1/instances", strings.NewReader(strings.Repeat("x", 2<<20)))
	req.Header.Set("Authorization", "Bearer "+a.token)
	if r := callAPI(t, req); r.status != http.StatusBadRequest {
		t.Errorf("2 MiB body: got %d, want 400", r.status)
	}
}
