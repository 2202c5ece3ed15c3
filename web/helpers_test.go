package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/auth"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/job"
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
	databases *database.Manager
	auth      *auth.Authenticator
	// activity is told of every line of the activity log, so a test can
	// wait for an action to end.
	activity *activityLog
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
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "console.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	host, err := database.NewHost(filepath.Join(dir, "databases"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(ctx) })
	log := &activityLog{changed: make(chan struct{})}
	rec := activity.New(db, log, nil)
	mgr := database.NewManager(db, host, rec, nil)
	snaps, err := snapstore.Open(ctx, filepath.Join(dir, "snapshots"), nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs := job.NewRunner(db, nil)
	t.Cleanup(func() { jobs.Close(ctx); snaps.Close(ctx) })
	if err := mgr.EnableSnapshots(database.Snapshots{Store: snaps, Jobs: jobs, TmpDir: filepath.Join(dir, "tmp"),
		ExportDir: filepath.Join(dir, "tmp", "exports"), Engine: "snapdeck test", SQLiteVersion: "3"}); err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(db, rec, nil, nil)
	for _, role := range []snapdeck.Role{snapdeck.RoleAdmin, snapdeck.RoleMember, snapdeck.RoleViewer} {
		if _, err := a.AddUser(ctx, string(role)+"@x", testPassword, role); err != nil {
			t.Fatal(err)
		}
	}
	cfg := web.Config{Version: "test"}
	for _, f := range configure {
		f(&cfg)
	}
	s, err := web.New(ctx, cfg, web.Deps{Store: db, Databases: mgr, Auth: a, Activity: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &console{dir: dir, srv: srv, server: s, store: db, databases: mgr, auth: a, activity: log}
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

// mustDatabase creates a database directly through the manager.
func (c *console) mustDatabase(name string, plan snapdeck.Plan) snapdeck.Database {
	c.t.Helper()
	d, err := c.databases.Create(context.Background(), name, plan)
	if err != nil {
		c.t.Fatal(err)
	}
	return d
}
