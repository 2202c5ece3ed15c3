package views

import (
	"strings"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// PITR is a database's point-in-time restore window, as the SNAPSHOTS tab
// and the pages that restore or create at a point in time show it.
type PITR struct {
	// Window is how far back the database's plan reaches; zero when the
	// plan has no point-in-time restore.
	Window time.Duration
	// From and To bound the times the database can be restored to; OK is
	// false while there are none (nothing replicated yet, or no window).
	From, To time.Time
	OK       bool
	// Windows is every plan's window as this console runs them, so a
	// database without one is told which plans have it.
	Windows map[snapdeck.Plan]time.Duration
}

// RestoreToTime is the typed-RESTORE page of a restore to a point in time.
type RestoreToTime struct {
	DB   snapdeck.Database
	PITR PITR
	// Time and Confirm are what the user typed, re-shown after a mistake;
	// TimeError and ConfirmError say what was wrong with each.
	Time, Confirm           string
	TimeError, ConfirmError string
}

// CreateAtTime is the form that makes a new database from another's data
// as it was at a point in time.
type CreateAtTime struct {
	DB   snapdeck.Database // the source database
	PITR PITR
	Time string
	Name string
	Plan snapdeck.Plan
	// TimeError is about the time; Error about the name or the plan.
	TimeError, Error string
}

// pitrTimeLayout is how a point in time is shown in a form field: what
// the server reads back, UTC to the second.
const pitrTimeLayout = "2006-01-02T15:04:05"

// pitrFieldTime renders a time as the time field takes it; the zero time
// as "".
func pitrFieldTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(pitrTimeLayout)
}

// pitrPlans names the plans that have a window and how far back each
// reaches: "Professional (1 day) and Enterprise (7 days)"; "" when none
// has one.
func pitrPlans(windows map[snapdeck.Plan]time.Duration) string {
	var names []string
	for _, plan := range snapdeck.Plans {
		if w := windows[plan]; w > 0 {
			names = append(names, planLabel(plan)+" ("+days(w)+")")
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// pitrHint is the time field's hint: the window, and the forms accepted,
// shown with the window's latest second.
func pitrHint(w PITR) string {
	if !w.OK {
		return "UTC, to the second, as 2006-01-02T15:04:05."
	}
	return "UTC, to the second, from " + utcSeconds(w.From) + " to now, as " + pitrFieldTime(w.To) +
		" (RFC 3339 with an offset, such as " + w.To.In(time.FixedZone("", 2*60*60)).Format(time.RFC3339) + ", works too)."
}
