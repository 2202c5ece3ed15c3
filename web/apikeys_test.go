package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestAPIKeysPage(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	member := c.newClient("member@x")
	res, body := member.post("/settings/api-keys", url.Values{"name": {"nightly"}}, true)
	if res.StatusCode != 200 || !clientIDAttr.MatchString(body) || !clientSecretAttr.MatchString(body) {
		t.Fatalf("create: got %d, want 200 with data-client-id and data-client-secret", res.StatusCode)
	}
	secret := clientSecretAttr.FindStringSubmatch(body)[1]
	keys, _ := c.store.FindAPIKeys(ctx, 0)
	if len(keys) != 1 || strings.Contains(keys[0].SecretHash, secret) {
		t.Fatalf("stored keys: got %d, secret stored in clear %v", len(keys), len(keys) == 1 && keys[0].SecretHash == secret)
	}

	// The list never shows the secret again.
	_, body = member.get("/settings/api-keys")
	if strings.Contains(body, secret) || clientSecretAttr.MatchString(body) || !strings.Contains(body, `data-api-key-id="`) {
		t.Fatal("list page: shows the secret again, or not the key")
	}
	if res, _ := member.post("/settings/api-keys", url.Values{"name": {" "}}, true); res.StatusCode != http.StatusBadRequest {
		t.Errorf("blank name: got %d, want 400", res.StatusCode)
	}

	// A viewer sees the page without the form; another member does not
	// see this key.
	_, body = c.newClient("viewer@x").get("/settings/api-keys")
	if strings.Contains(body, `data-form="new-api-key"`) || strings.Contains(body, "nightly") {
		t.Error("viewer: sees the create form or another user's key")
	}
	// Admins see everyone's keys and may revoke them.
	admin := c.newClient("admin@x")
	_, body = admin.get("/settings/api-keys")
	m := regexp.MustCompile(`action="(/settings/api-keys/\d+/revoke)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("admin: no revoke form for the member's key")
	}
	if res, _ := admin.post(m[1], nil, true); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: got %d, want 303", res.StatusCode)
	}
	keys, _ = c.store.FindAPIKeys(ctx, 0)
	if !keys[0].IsRevoked() {
		t.Fatal("key not revoked")
	}
	if _, body := member.get("/settings/api-keys"); !strings.Contains(body, `data-api-key-revoked="true"`) {
		t.Error("list does not show the key as revoked")
	}
}

var passwordAttr = regexp.MustCompile(`data-password="([^"]+)"`)

func TestAPIConsoleCredentialsShownOnce(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	cl := c.newClient("member@x")
	res, _ := cl.post("/databases", url.Values{"name": {"shop"}, "plan": {"free"}}, true)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !regexp.MustCompile(`^/databases/[0-9a-f]{8}$`).MatchString(loc) {
		t.Fatalf("create: got %d to %q, want 303 to the database", res.StatusCode, loc)
	}
	id := strings.TrimPrefix(loc, "/databases/")
	_, body := cl.get(loc)
	m := passwordAttr.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `download="snapdeck-`+id+`-credentials.txt"`) || !strings.Contains(body, "data:text/plain") {
		t.Fatal("page after create: no credentials or no .txt download")
	}
	if ok, _ := c.databases.CheckCredentials(ctx, id, "snapdeck-"+id, m[1]); !ok {
		t.Fatal("shown password does not match the stored hash")
	}
	if _, body := cl.get(loc); passwordAttr.MatchString(body) {
		t.Fatal("credentials shown a second time")
	}

	// Reset from Settings: a new password, shown once, the old one dead.
	res, _ = cl.post("/databases/"+id+"/settings/credentials", nil, true)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: got %d, want 303", res.StatusCode)
	}
	_, body = cl.get(res.Header.Get("Location"))
	n := passwordAttr.FindStringSubmatch(body)
	if n == nil || n[1] == m[1] {
		t.Fatal("reset: no new password shown")
	}
	if ok, _ := c.databases.CheckCredentials(ctx, id, "snapdeck-"+id, m[1]); ok {
		t.Fatal("old password still works after reset")
	}
	if _, body := c.newClient("member@x").get("/databases/" + id + "/settings"); !strings.Contains(body, `data-form="reset-credentials"`) {
		t.Error("Settings tab has no reset form")
	}
}

func TestAPIBetaPrefixAndTokenMethod(t *testing.T) {
	c := mustConsole(t)
	a := c.mustAPI("member@x")
	if r := a.do("GET", "/v1beta5/tenants", ""); r.status != http.StatusOK {
		t.Errorf("/v1beta5 alias: got %d %s, want 200", r.status, r.raw)
	}
	req, _ := http.NewRequest("GET", c.srv.URL+"/oauth/token", nil)
	if r := callAPI(t, req); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /oauth/token: got %d, want 405 JSON", r.status)
	}
}
