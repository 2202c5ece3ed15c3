package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestTokensConsole: a member makes a token on the Overview, sees it this
// once in data-token with data-connection-url, finds it listed without
// its secret, and revokes it; a viewer sees the list but no form.
func TestTokensConsole(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("orders", snapdeck.PlanFree)
	member := c.newClient("member@x")
	overview := "/databases/" + d.ID
	wantURL := c.srv.URL + "/db/" + d.ID + "/"

	// Before any token: the URL, the form, a snippet per client.
	res, body := member.get(overview)
	page := doc(t, body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("overview: %d", res.StatusCode)
	}
	if got, _ := page.Find(`[data-connect-network]`).Attr("data-connection-url"); got != wantURL {
		t.Errorf("overview: connection URL %q, want %q", got, wantURL)
	}
	if page.Find(`form[data-form=new-token] select[name=scope] option[value=read-only]`).Length() != 1 ||
		page.Find(`form[data-form=new-token] input[name=name]`).Length() != 1 {
		t.Error("overview: no token form with name and scope")
	}
	for _, id := range []string{"go", "javascript", "python", "curl"} {
		code := page.Find(`[data-snippet=` + id + `] code`).Text()
		// Python's client appends /v2/pipeline itself: no trailing slash.
		if !strings.Contains(code, strings.TrimSuffix(wantURL, "/")) || !strings.Contains(code, "SNAPDECK_TOKEN") {
			t.Errorf("snippet %s lacks the URL or the token variable: %q", id, code)
		}
	}
	if code := page.Find(`[data-snippet=go] code`).Text(); !strings.Contains(code, `dsn := "`+wantURL+`?authToken=" + os.Getenv("SNAPDECK_TOKEN")`) {
		t.Errorf("Go snippet %q", code)
	}
	if code := page.Find(`[data-snippet=python] code`).Text(); !strings.Contains(code, `libsql.connect("`+strings.TrimSuffix(wantURL, "/")+`", auth_token=`) {
		t.Errorf("Python snippet %q", code)
	}
	if code := page.Find(`[data-snippet=curl] code`).Text(); !strings.Contains(code, wantURL+"v2/pipeline") || !strings.Contains(code, "Authorization: Bearer") {
		t.Errorf("curl snippet %q", code)
	}

	// A wrong name re-shows the form with the message, and makes nothing.
	res, body = member.post(overview+"/tokens", url.Values{"name": {""}, "scope": {"read-only"}}, true)
	page = doc(t, body)
	if res.StatusCode != http.StatusBadRequest || page.Find(`[data-token]`).Length() != 0 ||
		!strings.Contains(page.Find(`form[data-form=new-token]`).Text(), "Give the token a name") {
		t.Fatalf("empty name: got %d", res.StatusCode)
	}
	if sel, _ := page.Find(`select[name=scope] option[selected]`).Attr("value"); sel != "read-only" {
		t.Errorf("empty name: the scope sent is not kept: %q", sel)
	}
	res, _ = member.post(overview+"/tokens", url.Values{"name": {"app"}, "scope": {"owner"}}, true)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown scope: got %d, want 400", res.StatusCode)
	}
	if list, _ := c.app.Tokens.List(ctx, d.ID); len(list) != 0 {
		t.Fatalf("refused forms made tokens: %+v", list)
	}

	// Made: shown once, with the contract attributes.
	res, body = member.post(overview+"/tokens", url.Values{"name": {"billing"}, "scope": {"read-only"}}, true)
	page = doc(t, body)
	shown := page.Find(`[data-token]`)
	secret, _ := shown.Attr("data-token")
	connURL, _ := shown.Attr("data-connection-url")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(secret, dbtoken.Prefix) || connURL != wantURL {
		t.Fatalf("make token: got %d, token %q, url %q", res.StatusCode, secret, connURL)
	}
	g, err := c.app.Tokens.Authenticate(ctx, "Bearer "+secret)
	if err != nil || g.DatabaseID != d.ID || g.Scope != dbtoken.ReadOnly {
		t.Fatalf("the shown token: %+v, %v", g, err)
	}

	// Listed with name, scope, last use; the secret never again.
	_, body = member.get(overview)
	page = doc(t, body)
	if strings.Contains(body, secret) || page.Find(`[data-token]`).Length() != 0 {
		t.Fatal("the overview shows the secret again")
	}
	row := page.Find(`[data-token-name=billing]`)
	tid, _ := row.Attr("data-token-id")
	if scope, _ := row.Attr("data-token-scope"); scope != "read-only" || tid != g.TokenID {
		t.Fatalf("token row: id %q scope %q", tid, scope)
	}
	if strings.Contains(row.Text(), "never") {
		t.Errorf("token row after a use says never used: %q", row.Text())
	}

	// A viewer sees the list, no form and no revoke button.
	_, body = c.newClient("viewer@x").get(overview)
	page = doc(t, body)
	if page.Find(`[data-token-name=billing]`).Length() != 1 || page.Find(`form[data-form=new-token]`).Length() != 0 ||
		page.Find(`form[data-form=revoke-token]`).Length() != 0 {
		t.Error("viewer: want the list without the token form or revoke buttons")
	}

	// Revoked through another database's path: not found, still valid.
	other := c.mustDatabase("other", snapdeck.PlanFree)
	res, _ = member.post("/databases/"+other.ID+"/tokens/"+tid+"/revoke", nil, true)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("revoke through another database: got %d, want 404", res.StatusCode)
	}
	if _, err := c.app.Tokens.Authenticate(ctx, secret); err != nil {
		t.Fatalf("after a refused revoke: %v", err)
	}
	res, _ = member.post(overview+"/tokens/"+tid+"/revoke", nil, true)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: got %d", res.StatusCode)
	}
	if _, err := c.app.Tokens.Authenticate(ctx, secret); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("revoked token: %v, want Unauthorized", err)
	}
	if _, body = member.get(overview); doc(t, body).Find(`[data-token-name=billing]`).Length() != 0 {
		t.Error("the revoked token is still listed")
	}

	events, err := c.store.FindEvents(ctx, snapdeck.EventFilter{DatabaseID: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	var issued, revoked int
	for _, e := range events {
		switch {
		case e.Action == string(activity.TokenIssue) && e.Outcome == snapdeck.OutcomeOK:
			issued++
		case e.Action == string(activity.TokenRevoke) && e.Outcome == snapdeck.OutcomeOK:
			revoked++
		}
		if e.Actor == "" || strings.Contains(e.Detail, secret[len(dbtoken.Prefix):]) {
			t.Errorf("event %+v", e)
		}
	}
	if issued != 1 || revoked != 1 {
		t.Errorf("activity: %d issued, %d revoked; want 1 and 1", issued, revoked)
	}
}

// TestTokensEndWithTheirDatabase: deleting a database on the console ends
// its tokens at once, though they were cached by a use.
func TestTokensEndWithTheirDatabase(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	d := c.mustDatabase("doomed", snapdeck.PlanFree)
	kept := c.mustDatabase("kept", snapdeck.PlanFree)
	_, secret, err := c.app.Tokens.Issue(ctx, "member@x", d.ID, "app", dbtoken.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	_, keptSecret, err := c.app.Tokens.Issue(ctx, "member@x", kept.ID, "app", dbtoken.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, keptSecret} {
		if _, err := c.app.Tokens.Authenticate(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	res, _ := c.newClient("member@x").post("/databases/"+d.ID+"/delete", url.Values{"confirm_name": {d.Name}}, true)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: got %d", res.StatusCode)
	}
	if _, err := c.app.Tokens.Authenticate(ctx, secret); snapdeck.ErrorCode(err) != snapdeck.Unauthorized {
		t.Fatalf("token of the deleted database: %v, want Unauthorized", err)
	}
	if _, err := c.app.Tokens.Authenticate(ctx, keptSecret); err != nil {
		t.Fatalf("token of another database: %v", err)
	}
}

// TestTokensAPI: POST /v1/instances/{id}/tokens answers the token with
// its URL and scope; connection_url is the same data-plane URL.
func TestTokensAPI(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	a := c.mustAPI("member@x")
	inst := checkInstance(t, "create", a.do("POST", "/v1/instances", `{"name":"orders","type":"free-db"}`), http.StatusAccepted)
	id := inst["id"].(string)
	wantURL := c.srv.URL + "/db/" + id + "/"
	if inst["connection_url"] != wantURL {
		t.Errorf("connection_url %v, want %s", inst["connection_url"], wantURL)
	}

	r := a.do("POST", "/v1/instances/"+id+"/tokens", `{"name":"etl","scope":"read-write"}`)
	got := r.data()
	secret, _ := got["token"].(string)
	if r.status != http.StatusOK || got["url"] != wantURL || got["scope"] != "read-write" || got["id"] == "" {
		t.Fatalf("create token: %d %s", r.status, r.raw)
	}
	g, err := c.app.Tokens.Authenticate(ctx, secret)
	if err != nil || g.DatabaseID != id || g.TokenID != got["id"] || g.Scope != dbtoken.ReadWrite {
		t.Fatalf("the API's token: %+v, %v", g, err)
	}
	list, err := c.app.Tokens.List(ctx, id)
	if err != nil || len(list) != 1 || list[0].Name != "etl" || !strings.HasPrefix(list[0].CreatedBy, "api key") {
		t.Fatalf("listed: %+v, %v", list, err)
	}

	for _, tc := range []struct {
		name, path, body string
		status           int
		reason, field    string
	}{
		{"bad scope", "/v1/instances/" + id + "/tokens", `{"name":"x","scope":"admin"}`, 400, "invalid-request", "scope"},
		{"no name", "/v1/instances/" + id + "/tokens", `{"scope":"read-only"}`, 400, "invalid-request", "name"},
		{"no body", "/v1/instances/" + id + "/tokens", ``, 400, "invalid-request", ""},
		{"unknown instance", "/v1/instances/00000000/tokens", `{"name":"x","scope":"read-only"}`, 404, "db-not-found", ""},
	} {
		r := a.do("POST", tc.path, tc.body)
		e := r.firstError()
		if r.status != tc.status || e["reason"] != tc.reason || (tc.field != "" && e["field"] != tc.field) {
			t.Errorf("%s: got %d %s, want %d %s field %q", tc.name, r.status, r.raw, tc.status, tc.reason, tc.field)
		}
	}
	// A key acts with its owner's role: a viewer's makes no token.
	owner, err := c.store.FindUserByEmail(ctx, "member@x")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetUserRole(ctx, owner.ID, snapdeck.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if r := a.do("POST", "/v1/instances/"+id+"/tokens", `{"name":"x","scope":"read-only"}`); r.status != http.StatusForbidden {
		t.Errorf("viewer's key: got %d, want 403", r.status)
	}
	if list, _ := c.app.Tokens.List(ctx, id); len(list) != 1 {
		t.Errorf("refused calls made tokens: %+v", list)
	}
}
