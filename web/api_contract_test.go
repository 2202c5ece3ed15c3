package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// apiStatuses is SPEC §8's status set for API errors.
var apiStatuses = []int{400, 401, 403, 404, 405, 409, 429, 500}

// TestAPIContractOnHostileRequests fires requests a hostile or careless
// client sends at many /v1 and /oauth paths and checks, for each, what
// every API error must be: a status of SPEC §8's set, application/json,
// exactly the {"errors":[{"message","reason","field"?}]} shape, and an
// X-Request-Id; and the status, reason and field this request deserves.
func TestAPIContractOnHostileRequests(t *testing.T) {
	c := mustConsole(t)
	ctx := context.Background()
	if _, err := c.auth.AddUser(ctx, "demoted@x", testPassword, snapdeck.RoleMember); err != nil {
		t.Fatal(err)
	}
	member, viewer := c.mustAPI("member@x"), c.mustAPI("demoted@x")
	// Viewers make no keys; a key acts with its owner's current role.
	demoted, err := c.store.FindUserByEmail(ctx, "demoted@x")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.store.SetUserRole(ctx, demoted.ID, snapdeck.RoleViewer); err != nil {
		t.Fatal(err)
	}
	d := c.mustDatabase("orders", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	sid := member.takeSnapshot(d.ID)
	inst, export := "/v1/instances/"+d.ID, "/v1/instances/"+d.ID+"/snapshots/"+sid+"/export"
	big := `{"name":"` + strings.Repeat("x", 100<<10) + `"}`
	keyID, keySecret := c.mustAPIKey("member@x", "contract key")

	cases := []struct {
		name         string
		method, path string
		header       map[string]string
		body         string
		chunked      bool // send the body without a Content-Length
		token        *apiClient
		basic        bool // HTTP Basic with a real key instead of a token
		status       int
		reason       string
		field        string
	}{
		{name: "range past the end", method: "GET", path: export, header: map[string]string{"Range": "bytes=999999999-"},
			token: member, status: 400, reason: "range-not-satisfiable", field: "Range"},
		{name: "range backwards", method: "GET", path: export, header: map[string]string{"Range": "bytes=50-2"},
			token: member, status: 400, reason: "range-not-satisfiable", field: "Range"},
		{name: "range of another unit", method: "GET", path: export, header: map[string]string{"Range": "pages=1-2"},
			token: member, status: 400, reason: "range-not-satisfiable", field: "Range"},
		{name: "if-match of no version", method: "GET", path: export, header: map[string]string{"If-Match": `"nope"`},
			token: member, status: 400, reason: "precondition-failed"},
		{name: "if-unmodified-since long ago", method: "GET", path: export,
			header: map[string]string{"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, token: member, status: 400, reason: "precondition-failed"},
		{name: "export of a viewer", method: "GET", path: export, header: map[string]string{"Range": "bytes=999999999-"},
			token: viewer, status: 403, reason: "forbidden"},
		{name: "export of no snapshot", method: "GET", path: inst + "/snapshots/00000000-0000-0000-0000-000000000000/export",
			header: map[string]string{"Range": "bytes=999999999-"}, token: member, status: 404, reason: "snapshot-not-found"},
		{name: "wrong method", method: "DELETE", path: "/v1/tenants", token: member, status: 405, reason: "method-not-allowed"},
		{name: "wrong method on a parameter path", method: "PUT", path: inst + "/snapshots", token: member, status: 405, reason: "method-not-allowed"},
		{name: "options", method: "OPTIONS", path: "/v1/instances", token: member, status: 405, reason: "method-not-allowed"},
		{name: "head", method: "HEAD", path: "/v1/instances", token: member, status: 405, reason: "method-not-allowed"},
		{name: "wrong method on the token endpoint", method: "GET", path: "/oauth/token", status: 405, reason: "method-not-allowed"},
		{name: "unknown path", method: "GET", path: "/v1/nothing-here", token: member, status: 404, reason: "not-found"},
		{name: "bare /v1", method: "GET", path: "/v1", token: member, status: 404, reason: "not-found"},
		{name: "unknown path, no token", method: "POST", path: "/v1/instances/x/y/z/w", status: 404, reason: "not-found"},
		{name: "unknown oauth path", method: "POST", path: "/oauth/authorize", status: 404, reason: "not-found"},
		{name: "unknown beta path", method: "GET", path: "/v1beta5/nothing-here", token: member, status: 404, reason: "not-found"},
		{name: "oversized body", method: "POST", path: "/v1/instances", body: big, token: member, status: 400, reason: "request-too-large"},
		{name: "oversized body, chunked", method: "POST", path: "/v1/instances", body: big, chunked: true, token: member,
			status: 400, reason: "request-too-large"},
		{name: "oversized body, no token", method: "POST", path: "/v1/instances", body: big, status: 400, reason: "request-too-large"},
		{name: "malformed JSON", method: "POST", path: "/v1/instances", body: `{"name":`, token: member, status: 400, reason: "invalid-request"},
		{name: "JSON of the wrong type", method: "PATCH", path: inst, body: `{"name":5}`, token: member, status: 400,
			reason: "invalid-request", field: "name"},
		{name: "XML body", method: "POST", path: "/v1/instances", header: map[string]string{"Content-Type": "application/xml"},
			body: `<instance name="x"/>`, token: member, status: 400, reason: "invalid-request"},
		{name: "form body", method: "PATCH", path: inst, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: "name=x", token: member, status: 400, reason: "invalid-request"},
		{name: "no token", method: "GET", path: "/v1/instances", status: 401, reason: "unauthorized"},
		{name: "forged token", method: "GET", path: "/v1/instances", header: map[string]string{"Authorization": "Bearer forged"},
			status: 401, reason: "unauthorized"},
		{name: "basic instead of bearer", method: "GET", path: "/v1/instances", basic: true, status: 401, reason: "unauthorized"},
		{name: "viewer changes", method: "POST", path: inst + "/pause", token: viewer, status: 403, reason: "forbidden"},
		{name: "unknown instance", method: "GET", path: "/v1/instances/deadbeef", token: member, status: 404, reason: "db-not-found"},
		{name: "malformed date", method: "GET", path: inst + "/snapshots?date=yesterday", token: member, status: 400,
			reason: "invalid-request", field: "date"},
		{name: "chunk of no upload", method: "PUT", path: inst + "/import/nope", header: map[string]string{"Content-Range": "bytes 0-3/4"},
			body: "abcd", token: member, status: 404, reason: "upload-not-found"},
		{name: "unsupported grant", method: "POST", path: "/oauth/token", basic: true,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "grant_type=password",
			status: 400, reason: "unsupported-grant-type", field: "grant_type"},
		{name: "wrong secret", method: "POST", path: "/oauth/token", header: map[string]string{
			"Content-Type": "application/x-www-form-urlencoded"}, body: url.Values{"grant_type": {"client_credentials"},
			"client_id": {keyID}, "client_secret": {"wrong"}}.Encode(), status: 401, reason: "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(tc.body)) // hides the length
			}
			req, _ := http.NewRequest(tc.method, c.srv.URL+tc.path, body)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != nil {
				req.Header.Set("Authorization", "Bearer "+tc.token.token)
			}
			if tc.basic {
				req.SetBasicAuth(keyID, keySecret)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			if !slices.Contains(apiStatuses, res.StatusCode) {
				t.Errorf("status %d is outside SPEC §8's set %v: %q", res.StatusCode, apiStatuses, raw)
			}
			if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
				t.Errorf("Content-Type %q, want application/json", res.Header.Get("Content-Type"))
			}
			if res.Header.Get("X-Request-Id") == "" {
				t.Errorf("no X-Request-Id")
			}
			if cd := res.Header.Get("Content-Disposition"); cd != "" {
				t.Errorf("an error answer carries Content-Disposition %q", cd)
			}
			if res.StatusCode != tc.status {
				t.Errorf("got %d, want %d: %q", res.StatusCode, tc.status, raw)
			}
			if tc.method == http.MethodHead {
				return
			}
			var shape struct {
				Errors []struct {
					Message string `json:"message"`
					Reason  string `json:"reason"`
					Field   string `json:"field"`
				} `json:"errors"`
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&shape); err != nil || len(shape.Errors) != 1 {
				t.Fatalf("body is not the API's error shape (%v): %q", err, raw)
			}
			e := shape.Errors[0]
			if e.Message == "" || e.Reason != tc.reason || e.Field != tc.field {
				t.Errorf("got message %q, reason %q, field %q; want a message, reason %q, field %q", e.Message, e.Reason, e.Field, tc.reason, tc.field)
			}
		})
	}
}
