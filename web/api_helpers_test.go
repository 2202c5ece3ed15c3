package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// apiClient calls the API with a bearer token, as Aura clients do.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// apiReply is a decoded API answer.
type apiReply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// data returns the reply's data object.
func (r apiReply) data() map[string]any {
	m, _ := r.body["data"].(map[string]any)
	return m
}

// firstError returns the reply's first errors[] entry.
func (r apiReply) firstError() map[string]any {
	errs, _ := r.body["errors"].([]any)
	if len(errs) == 0 {
		return nil
	}
	m, _ := errs[0].(map[string]any)
	return m
}

// callAPI sends one request and checks what every API answer must carry:
// X-Request-Id, a JSON body, and never 422.
func callAPI(t *testing.T, req *http.Request) apiReply {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := apiReply{status: res.StatusCode, header: res.Header, raw: string(b)}
	if res.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", req.Method, req.URL.Path)
	}
	if res.StatusCode == http.StatusUnprocessableEntity {
		t.Errorf("%s %s: got 422, which Aura clients cannot handle", req.Method, req.URL.Path)
	}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Errorf("%s %s: %d body is not JSON: %q", req.Method, req.URL.Path, res.StatusCode, b)
	}
	if res.StatusCode >= 400 && r.firstError() == nil {
		t.Errorf("%s %s: %d without errors[]: %s", req.Method, req.URL.Path, res.StatusCode, b)
	}
	return r
}

// do sends a JSON request; body "" sends none, as aura-cli does for pause.
func (a *apiClient) do(method, path, body string) apiReply {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Neo4jCLI/test")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	return callAPI(a.t, req)
}

// requestToken trades a client id and secret for a token.
func requestToken(t *testing.T, base, id, secret string, form url.Values) apiReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return callAPI(t, req)
}

var (
	clientIDAttr     = regexp.MustCompile(`data-client-id="([^"]+)"`)
	clientSecretAttr = regexp.MustCompile(`data-client-secret="([^"]+)"`)
)

// mustAPIKey creates an API key through the console page as email and
// returns its client id and secret, read from the contract attributes.
func (c *console) mustAPIKey(email, name string) (string, string) {
	c.t.Helper()
	res, body := c.newClient(email).post("/settings/api-keys", url.Values{"name": {name}}, true)
	id, secret := clientIDAttr.FindStringSubmatch(body), clientSecretAttr.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || id == nil || secret == nil {
		c.t.Fatalf("create api key: got %d, client id %v, secret %v", res.StatusCode, id != nil, secret != nil)
	}
	return id[1], secret[1]
}

// mustAPI returns an API client holding a fresh token of a new key of email.
func (c *console) mustAPI(email string) *apiClient {
	c.t.Helper()
	id, secret := c.mustAPIKey(email, "test key")
	r := requestToken(c.t, c.srv.URL, id, secret, url.Values{"grant_type": {"client_credentials"}})
	tok, _ := r.body["access_token"].(string)
	if r.status != http.StatusOK || tok == "" {
		c.t.Fatalf("token: got %d %s", r.status, r.raw)
	}
	return &apiClient{t: c.t, base: c.srv.URL, token: tok}
}

// mustViewerAPI returns an API client of a new user email whose role is
// viewer. Viewers make no keys, so the key is made while email is a
// member; a key acts with its owner's current role.
func (c *console) mustViewerAPI(email string) *apiClient {
	c.t.Helper()
	ctx := context.Background()
	if _, err := c.auth.AddUser(ctx, email, testPassword, snapdeck.RoleMember); err != nil {
		c.t.Fatal(err)
	}
	a := c.mustAPI(email)
	u, err := c.store.FindUserByEmail(ctx, email)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.store.SetUserRole(ctx, u.ID, snapdeck.RoleViewer); err != nil {
		c.t.Fatal(err)
	}
	return a
}
