package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/store"
	"github.com/snapdeck/snapdeck/web"
)

// console is a running console over a real store and real database files.
type console struct {
	t         *testing.T
	dir       string // the data directory
	srv       *httptest.Server
	server    *web.Server
	store     *store.DB
	databases *database.Databases
	snapshots *database.Snapshots
	auth      *auth.Authenticator
	jobs      *job.Runner
	app       *app.App // every part, for the data plane's tests
	snaps     *snapstore.Store
	// activity is told of every line of the activity log, so a test can
	// wait for an action to end.
	activity *activityLog
	// pitr keeps the point-in-time history; tests Sync it.
	pitr *pitr.Replicators
}

// testPassword is every test user's password.
const testPassword = "correct-horse-battery"

// mustConsole starts a console in a temporary data directory with one user
// of each role: admin@x, member@x, viewer@x. configure adjusts the web
// layer's Config.
func mustConsole(t *testing.T, configure ...func(*web.Config)) *console {
	t.Helper()
	c := startConsole(t, configure...)
	c.t = t
	return c
}

// startConsole is mustConsole for benchmarks too: the console it returns
// has no *testing.T, so its clients are made by hand.
func startConsole(t testing.TB, configure ...func(*web.Config)) *console {
	t.Helper()
	return startConsoleWith(t, nil, configure...)
}

// startConsoleWith is startConsole with the wiring's Config adjusted by
// wiring, when not nil.
func startConsoleWith(t testing.TB, wiring func(*app.Config), configure ...func(*web.Config)) *console {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := &activityLog{changed: make(chan struct{})}
	// The console serve builds, less its scheduler's snapshots: a test
	// sees only the snapshots it takes.
	cfg := app.Config{DataDir: dir, Version: "test", SQLiteVersion: "3", Observer: log, Unscheduled: true,
		AdminEmail: "admin@x", AdminPassword: testPassword, Web: web.Config{Version: "test"}}
	for _, f := range configure {
		f(&cfg.Web)
	}
	if wiring != nil {
		wiring(&cfg)
	}
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(ctx) })
	for _, role := range []snapdeck.Role{snapdeck.RoleMember, snapdeck.RoleViewer} {
		if _, err := a.Auth.AddUser(ctx, string(role)+"@x", testPassword, role); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(a.Web)
	t.Cleanup(srv.Close)
	return &console{dir: dir, srv: srv, server: a.Web, store: a.Store, databases: a.Databases, snapshots: a.Snapshots, auth: a.Auth, jobs: a.Jobs, activity: log,
		app: a, pitr: a.PITR, snaps: a.SnapshotStore}
}

// client is a browser-like HTTP client: cookies kept, redirects not followed.
type client struct {
	t    *testing.T
	c    *console
	http *http.Client
	csrf string
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// newClient returns a client that has loaded the sign-in page (and so holds
// a CSRF token), signed in as email unless email is "".
func (c *console) newClient(email string) *client {
	c.t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &client{t: c.t, c: c, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	cl.csrf = cl.pageToken("/login")
	if email != "" {
		res, _ := cl.post("/login", url.Values{"email": {email}, "password": {testPassword}}, true)
		if res.StatusCode != http.StatusSeeOther {
			c.t.Fatalf("sign in as %s: got %d, want 303", email, res.StatusCode)
		}
		// Signed in, the session has a token of its own.
		cl.csrf = cl.pageToken("/account/password")
	}
	return cl
}

// pageToken loads a page and returns its _csrf field.
func (cl *client) pageToken(path string) string {
	cl.t.Helper()
	_, body := cl.get(path)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		cl.t.Fatalf("%s has no _csrf field", path)
	}
	return m[1]
}

func (cl *client) do(req *http.Request) (*http.Response, string) {
	cl.t.Helper()
	res, err := cl.http.Do(req)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (cl *client) get(path string) (*http.Response, string) {
	cl.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, cl.c.srv.URL+path, nil)
	return cl.do(req)
}

// post sends a form, with the CSRF token when withCSRF.
func (cl *client) post(path string, form url.Values, withCSRF bool) (*http.Response, string) {
	cl.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if withCSRF {
		form.Set("_csrf", cl.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, cl.c.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return cl.do(req)
}

// mustDatabase creates a database directly through the Databases service.
func (c *console) mustDatabase(name string, plan snapdeck.Plan) snapdeck.Database {
	c.t.Helper()
	out, err := c.databases.Create(context.Background(), "system", database.CreateRequest{Name: name, Plan: plan})
	if err != nil {
		c.t.Fatal(err)
	}
	return out.Database
}
