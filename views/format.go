package views

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/views/ui"
)

// defaultMaxRows is the Query tab's row limit when the handler gives none.
const defaultMaxRows = 1000

// humanBytes renders a byte count the way people read sizes: 0 B, 912 B,
// 4.0 KiB, 12.3 MiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// thousands renders n with commas between groups of three digits.
func thousands(n int64) string { return bytesize.Grouped(n) }

// plural returns "1 row" or "3 rows".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return thousands(n) + " " + many
}

// utc renders a time in UTC to the minute; the zero time as an em dash.
func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// isoTime is a time for the datetime attribute of <time>.
func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// duration renders how long a statement ran: 0.4 ms, 12 ms, 1.25 s.
func duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// csrfHeaders is the hx-headers value that makes htmx requests carry the
// CSRF token, as forms carry it in _csrf.
func csrfHeaders(token string) string {
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": token})
	return string(b)
}

// htmxConfig makes htmx swap 400 answers, which re-show a form with its error,
// 409 answers, which say the database is busy, and 413 answers, which re-show
// the import form with the size limit, instead of dropping them as failures.
// The rest are htmx 2's defaults.
const htmxConfig = `{"responseHandling":[` +
	`{"code":"204","swap":false},` +
	`{"code":"[23]..","swap":true},` +
	`{"code":"400","swap":true,"error":false},` +
	`{"code":"413","swap":true,"error":false},` +
	`{"code":"409","swap":true,"error":false},` +
	`{"code":"[45]..","swap":false,"error":true},` +
	`{"code":"...","swap":false}]}`

// planLabel is a plan's name as shown.
func planLabel(p snapdeck.Plan) string {
	switch p {
	case snapdeck.PlanFree:
		return "Free"
	case snapdeck.PlanProfessional:
		return "Professional"
	case snapdeck.PlanEnterprise:
		return "Enterprise"
	}
	return string(p)
}

// planSummary says what a plan gives as this console runs it: the cadence
// and retention come from the policies, not from SPEC's defaults, so an
// operator's --cadence-*/--retention-* flags show in every plan select.
func planSummary(plan snapdeck.Plan, pol snapdeck.PlanPolicy) string {
	var every string
	switch pol.Cadence {
	case 24 * time.Hour:
		every = "Daily snapshots"
	case time.Hour:
		every = "Hourly snapshots"
	default:
		every = "Snapshots every " + days(pol.Cadence)
	}
	if plan == snapdeck.PlanFree {
		return every + ", kept " + days(pol.Retention) + "; only the latest is available."
	}
	return every + ", all available for " + days(pol.Retention) + "."
}

// planOptions are the choices of every plan select.
func planOptions(p Page) []ui.Option {
	opts := make([]ui.Option, 0, len(snapdeck.Plans))
	for _, plan := range snapdeck.Plans {
		opts = append(opts, ui.Option{Value: string(plan), Label: planLabel(plan) + " — " + planSummary(plan, p.policy(plan))})
	}
	return opts
}

// roleOptions are the choices of every role select.
func roleOptions() []ui.Option {
	return []ui.Option{
		{Value: string(snapdeck.RoleViewer), Label: "Viewer — read-only"},
		{Value: string(snapdeck.RoleMember), Label: "Member — databases and snapshots"},
		{Value: string(snapdeck.RoleAdmin), Label: "Admin — everything, including users"},
	}
}

// statusTone picks a badge colour for a database status.
func statusTone(s snapdeck.Status) ui.Tone {
	switch s {
	case snapdeck.StatusRunning:
		return ui.Success
	case snapdeck.StatusCreating, snapdeck.StatusRestoring, snapdeck.StatusLoading:
		return ui.Info
	case snapdeck.StatusDeleting:
		return ui.Warning
	case snapdeck.StatusFailed:
		return ui.Failure
	}
	return ui.Neutral
}

// anyBusy reports whether a row is mid-operation, so the list keeps itself
// fresh while JavaScript is on.
func anyBusy(rows []DatabaseRow) bool {
	for _, r := range rows {
		if r.DB.Status.IsBusy() {
			return true
		}
	}
	return false
}

// dbURL is the path of one of a database's tabs; "overview" is the database page itself.
func dbURL(db snapdeck.Database, tab string) string {
	u := "/databases/" + db.ID
	if tab != "" && tab != "overview" {
		u += "/" + tab
	}
	return u
}

// fieldError returns msg when the error is about field, else "".
func fieldError(field, errField, msg string) string {
	if field == errField {
		return msg
	}
	return ""
}

// flashTone maps Page.FlashKind to an alert tone.
func flashTone(kind string) ui.Tone {
	if kind == "error" {
		return ui.Failure
	}
	return ui.Success
}

// maxRows is the row limit to name in the truncation note.
func maxRows(v Query) int64 {
	if v.MaxRows > 0 {
		return int64(v.MaxRows)
	}
	return defaultMaxRows
}

// initial is the first letter of an email, for the account avatar.
func initial(email string) string {
	for _, r := range email {
		return string(r)
	}
	return "?"
}

// disabledUnless adds the disabled attribute to attrs when allowed is false,
// so viewers see forms they cannot submit greyed out.
func disabledUnless(allowed bool, attrs templ.Attributes) templ.Attributes {
	if allowed {
		return attrs
	}
	out := templ.Attributes{"disabled": true}
	for k, v := range attrs {
		out[k] = v
	}
	return out
}
