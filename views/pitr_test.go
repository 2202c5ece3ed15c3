package views

import (
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestPITRPlans: a database without a window is told which plans have one
// as this console runs them.
func TestPITRPlans(t *testing.T) {
	for _, tc := range []struct {
		windows map[snapdeck.Plan]time.Duration
		want    string
	}{
		{nil, ""},
		{map[snapdeck.Plan]time.Duration{snapdeck.PlanFree: 0}, ""},
		{map[snapdeck.Plan]time.Duration{snapdeck.PlanEnterprise: 168 * time.Hour}, "Enterprise (7 days)"},
		{map[snapdeck.Plan]time.Duration{snapdeck.PlanEnterprise: 168 * time.Hour, snapdeck.PlanProfessional: 24 * time.Hour},
			"Professional (1 day) and Enterprise (7 days)"},
		{map[snapdeck.Plan]time.Duration{snapdeck.PlanEnterprise: time.Hour, snapdeck.PlanProfessional: 36 * time.Hour, snapdeck.PlanFree: 30 * time.Minute},
			"Free (30 minutes), Professional (1 day 12 hours) and Enterprise (1 hour)"},
	} {
		if got := pitrPlans(tc.windows); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.windows, got, tc.want)
		}
	}
}

// TestPITRHint: the time field's hint gives the window and an example in
// each accepted form, from the window's latest second.
func TestPITRHint(t *testing.T) {
	to := time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	got := pitrHint(PITR{OK: true, From: to.Add(-time.Hour), To: to})
	want := "UTC, to the second, from 2026-01-02 02:04:05 UTC to now, as 2026-01-02T03:04:05 " +
		"(RFC 3339 with an offset, such as 2026-01-02T05:04:05+02:00, works too)."
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := pitrHint(PITR{}); got != "UTC, to the second, as 2006-01-02T15:04:05." {
		t.Errorf("no window: got %q", got)
	}
}
