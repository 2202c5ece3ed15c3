package views

import (
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestPlanOptionsFollowTheConsolesPolicies checks the plan selects describe
// the cadence and retention the console runs, not SPEC's defaults, when an
// operator overrides them.
func TestPlanOptionsFollowTheConsolesPolicies(t *testing.T) {
	cases := []struct {
		name     string
		policies map[snapdeck.Plan]snapdeck.PlanPolicy
		want     map[string]string
	}{
		{"defaults", nil, map[string]string{
			"free":         "Daily snapshots, kept 7 days; only the latest is available.",
			"professional": "Daily snapshots, all available for 7 days.",
			"enterprise":   "Hourly snapshots, all available for 90 days.",
		}},
		{"overridden", map[snapdeck.Plan]snapdeck.PlanPolicy{
			snapdeck.PlanFree:         {Cadence: 4 * time.Second, Retention: 15 * time.Second},
			snapdeck.PlanProfessional: {Cadence: 6 * time.Hour, Retention: 30 * 24 * time.Hour},
			snapdeck.PlanEnterprise:   {Cadence: time.Hour, Retention: 36 * time.Hour},
		}, map[string]string{
			"free":         "Snapshots every 4 seconds, kept 15 seconds; only the latest is available.",
			"professional": "Snapshots every 6 hours, all available for 30 days.",
			"enterprise":   "Hourly snapshots, all available for 1 day 12 hours.",
		}},
	}
	for _, tc := range cases {
		for _, o := range planOptions(Page{Policies: tc.policies}) {
			got := o.Label[strings.Index(o.Label, " — ")+len(" — "):]
			if got != tc.want[o.Value] {
				t.Errorf("%s, %s: got %q, want %q", tc.name, o.Value, got, tc.want[o.Value])
			}
		}
	}
}
