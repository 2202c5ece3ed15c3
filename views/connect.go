package views

import (
	"strings"

	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/views/ui"
)

// NewToken is a data-plane token just issued, shown with its secret this
// once.
type NewToken struct {
	Token  dbtoken.Token
	Secret string
}

// tokenEnv is the environment variable the snippets read the token from,
// so that the page never spreads a secret into code to copy.
const tokenEnv = "SNAPDECK_TOKEN"

// snippet is one client's way to connect, ready to copy.
type snippet struct {
	ID, Title, Note, Code string
}

// snippets show each libSQL client connecting to the database at url (its
// data-plane URL, with the trailing slash) with the token in tokenEnv.
func snippets(url string) []snippet {
	return []snippet{
		{ID: "go", Title: "Go", Note: "github.com/tursodatabase/libsql-client-go, through database/sql",
			Code: `import (
	"database/sql"
	"os"

	_ "github.com/tursodatabase/libsql-client-go/libsql"
)

dsn := "` + url + `?authToken=" + os.Getenv("` + tokenEnv + `")
db, err := sql.Open("libsql", dsn)`},
		{ID: "javascript", Title: "JavaScript", Note: "npm @libsql/client",
			Code: `import { createClient } from "@libsql/client";

const db = createClient({
  url: "` + url + `",
  authToken: process.env.` + tokenEnv + `,
});
const rs = await db.execute("SELECT 1");`},
		// The Python SDK wraps libSQL's Rust client, which appends
		// "/v2/pipeline" to the URL it is given: it gets the URL without
		// its trailing slash.
		{ID: "python", Title: "Python", Note: "pip install libsql",
			Code: `import os
import libsql

conn = libsql.connect("` + strings.TrimSuffix(url, "/") + `", auth_token=os.environ["` + tokenEnv + `"])
print(conn.execute("SELECT 1").fetchall())`},
		{ID: "curl", Title: "curl", Note: "Hrana over HTTP: a pipeline of requests on one stream",
			Code: `curl -H "Authorization: Bearer $` + tokenEnv + `" \
  -d '{"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"close"}]}' \
  ` + url + `v2/pipeline`},
	}
}

// scopeOptions are the token form's choices, read-write first.
var scopeOptions = []ui.Option{
	{Value: string(dbtoken.ReadWrite), Label: "read-write"},
	{Value: string(dbtoken.ReadOnly), Label: "read-only: SQLite refuses its writes"},
}

// selectedScope is the scope the form shows: the one sent, else read-write.
func selectedScope(s string) string {
	if s == "" {
		return string(dbtoken.ReadWrite)
	}
	return s
}

func tokensURL(dbID string) string { return "/databases/" + dbID + "/tokens" }

func revokeTokenURL(t dbtoken.Token) string { return tokensURL(t.DatabaseID) + "/" + t.ID + "/revoke" }

func tokenLastUsed(t dbtoken.Token) string {
	if t.LastUsedAt.IsZero() {
		return "never"
	}
	return utc(t.LastUsedAt)
}
