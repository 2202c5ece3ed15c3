// Package views holds the console's templ components: the layout, the pages
// and the partials they are made of.
package views

import (
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/dbtoken"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Page carries what every page's layout needs.
type Page struct {
	Title string
	// User is the signed-in user, nil on the sign-in page.
	User *snapdeck.User
	// CSRF is the token every state-changing form carries as _csrf.
	CSRF string
	// Flash is a one-time message shown at the top, FlashKind "ok" or "error".
	Flash     string
	FlashKind string
	// Nav is the active top-navigation entry: "databases", "import",
	// "activity", "api-keys", "users".
	Nav string
	// Policies are the plans' cadence and retention as this console runs
	// them (flags may override SPEC's defaults); nil means the defaults.
	Policies map[snapdeck.Plan]snapdeck.PlanPolicy
}

// policy returns a plan's cadence and retention as this console runs them.
func (p Page) policy(plan snapdeck.Plan) snapdeck.PlanPolicy {
	if pol, ok := p.Policies[plan]; ok {
		return pol
	}
	return snapdeck.DefaultPolicies()[plan]
}

// CanWrite reports whether the signed-in user may change things.
func (p Page) CanWrite() bool { return p.User != nil && p.User.Role.CanWrite() }

// IsAdmin reports whether the signed-in user manages users.
func (p Page) IsAdmin() bool { return p.User != nil && p.User.Role.IsAdmin() }

// DatabaseRow is one line of the database list.
type DatabaseRow struct {
	DB snapdeck.Database
	// LatestSnapshotAt is when its latest completed snapshot was taken;
	// zero when it has none.
	LatestSnapshotAt time.Time
	// Failing flags a database whose last Scheduled snapshots all failed.
	Failing bool
	// ScheduleProblem says why the database's stored schedule override
	// cannot be used and its plan's cadence runs instead; empty when it
	// has none or it is in use.
	ScheduleProblem string
}

// Overview is the database page's Overview tab.
type Overview struct {
	DB     snapdeck.Database
	Tables []database.Table
	// Connect tells how to reach the database: its file path on the server.
	Connect string
	// ConnectionURL is the database's data-plane URL, <public url>/db/<id>/.
	ConnectionURL string
	// Tokens are the database's data-plane tokens; NewToken the one just
	// issued, shown with its secret this once, nil otherwise.
	Tokens   []dbtoken.Token
	NewToken *NewToken
	// TokenName, TokenScope, TokenError and TokenField re-show the token
	// form after a wrong input.
	TokenName, TokenScope, TokenError, TokenField string
}

// Query is the database page's Query tab.
type Query struct {
	DB       snapdeck.Database
	SQL      string
	Result   *database.Result // nil before anything ran
	Error    string           // the SQL error in plain words
	ReadOnly bool             // viewers: the database is opened read-only
	MaxRows  int
}

// Settings is the database page's Settings tab.
type Settings struct {
	DB    snapdeck.Database
	Error string
	Field string // the form field at fault
	// Schedule fills the snapshot schedule card.
	Schedule ScheduleInfo
}

// NewDatabase is the create-database form.
type NewDatabase struct {
	Name  string
	Plan  snapdeck.Plan
	Error string
}

// Users is the admins' users page.
type Users struct {
	Users []snapdeck.User
	Error string
	Email string
	Role  snapdeck.Role
}

// Login is the sign-in form.
type Login struct {
	Email string
	Error string
	Next  string
}

// ErrorPage shows a failure that has no form to go back to.
type ErrorPage struct {
	Status  int
	Message string
}
