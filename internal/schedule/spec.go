package schedule

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/robfig/cron/v3"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// MinInterval is the shortest schedule override accepted: anything
// shorter would keep a database permanently under capture.
const MinInterval = time.Second

// Spec is when a database's Scheduled snapshots are taken: every interval,
// spread by the database id over that interval, or at the times of a cron
// expression (UTC), which the user chose exactly and so is not spread.
type Spec struct {
	Every time.Duration
	Cron  string
	cron  cron.Schedule
}

// ParseSpec reads a schedule override: a Go duration such as 30m or 6h,
// or a cron expression with 5 fields (or 6, seconds first) or a descriptor
// such as @daily. Errors are Invalid on the field "schedule".
func ParseSpec(text string) (Spec, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Spec{}, snapdeck.FieldError("schedule", "Give an interval such as 30m or 6h, or a cron expression such as 0 3 * * *.")
	}
	if d, err := time.ParseDuration(text); err == nil {
		if d < MinInterval {
			return Spec{}, snapdeck.FieldError("schedule", "The interval %s is too short; use at least %s.", text, MinInterval)
		}
		return Spec{Every: d}, nil
	}
	if !strings.ContainsAny(text, " @") {
		return Spec{}, snapdeck.FieldError("schedule", "%q is neither an interval (such as 30m, 6h or 24h) nor a cron expression (such as 0 3 * * *).", text)
	}
	sched, err := cronParser(text).Parse(text)
	if err != nil {
		return Spec{}, snapdeck.FieldError("schedule", "%q is not a valid cron expression (%v). Use 5 fields: minute hour day-of-month month day-of-week, e.g. 0 3 * * *.", text, err)
	}
	return Spec{Cron: text, cron: sched}, nil
}

// cronParser parses as gocron's CronJob will: seconds are a sixth field in
// front when there are six.
func cronParser(text string) cron.Parser {
	if withSeconds(text) {
		return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	}
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

func withSeconds(text string) bool { return len(strings.Fields(text)) == 6 }

// String is the spec as an override is written.
func (s Spec) String() string {
	if s.Cron != "" {
		return s.Cron
	}
	return shortDuration(s.Every)
}

// Reason is the reason column of the snapshots this spec takes.
func (s Spec) Reason() string {
	switch {
	case s.Cron != "":
		return "Scheduled by cron " + s.Cron
	case s.Every == time.Hour:
		return "Hourly schedule"
	case s.Every == 24*time.Hour:
		return "Daily schedule"
	case s.Every == 7*24*time.Hour:
		return "Weekly schedule"
	}
	return "Scheduled every " + shortDuration(s.Every)
}

// Period is the time between two runs around now; for cron, between the
// next two.
func (s Spec) Period(now time.Time) time.Duration {
	if s.Cron == "" {
		return s.Every
	}
	a := s.cron.Next(now)
	return s.cron.Next(a).Sub(a)
}

// Due reports whether a database last snapshotted at last is due a
// snapshot at now: a whole period has passed, or for cron, a run was missed.
func (s Spec) Due(last, now time.Time) bool {
	if last.IsZero() {
		return true
	}
	if s.Cron == "" {
		return now.Sub(last) >= s.Every
	}
	return !s.cron.Next(last).After(now)
}

// Recent reports whether a snapshot taken at last makes a run at now
// superfluous: less than half a period ago.
func (s Spec) Recent(last, now time.Time) bool {
	return !last.IsZero() && now.Sub(last) < s.Period(now)/2
}

// Offset is where in each period a database's runs fall: stable per
// database (a hash of its id), so databases on the same cadence are spread
// evenly rather than all at :00, and a restart does not move them.
func Offset(id string, period time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(period))
}

// First is the first run of an interval spec after now for database id:
// the next instant at the database's offset into a period counted from
// the Unix epoch, so daily runs are placed from UTC midnight.
func (s Spec) First(id string, now time.Time) time.Time {
	p := int64(s.Every)
	first := time.Unix(0, now.UnixNano()/p*p+int64(Offset(id, s.Every))).UTC()
	if !first.After(now) {
		first = first.Add(s.Every)
	}
	return first
}

// definition is the gocron job of the spec and its first-run option.
func (s Spec) definition(id string, now time.Time) (gocron.JobDefinition, []gocron.JobOption) {
	if s.Cron != "" {
		return gocron.CronJob(s.Cron, withSeconds(s.Cron)), nil
	}
	return gocron.DurationJob(s.Every), []gocron.JobOption{gocron.WithStartAt(gocron.WithStartDateTime(s.First(id, now)))}
}

// shortDuration writes 4s, 30m, 6h, 1h30m rather than 30m0s.
func shortDuration(d time.Duration) string {
	t := d.String()
	if strings.HasSuffix(t, "m0s") {
		t = strings.TrimSuffix(t, "0s")
	}
	if strings.HasSuffix(t, "h0m") {
		t = strings.TrimSuffix(t, "0m")
	}
	return t
}

// describe says a spec in words for the Settings tab.
func describe(s Spec) string {
	if s.Cron != "" {
		return fmt.Sprintf("cron %s (UTC)", s.Cron)
	}
	return "every " + shortDuration(s.Every)
}
