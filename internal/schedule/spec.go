package schedule

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// MinInterval is the shortest time between two Scheduled snapshots an
// override may ask for, as an interval or as a cron expression: every
// snapshot reads the whole database, and at one a second ("*/1 * * * * *"
// took 19 in 20 s) a database is never out of capture and its retention
// fills with copies nobody can tell apart.
const MinInterval = time.Minute

// cronSamples is how many successive runs of a cron expression are
// compared with MinInterval. Only two things fire more often than once a
// minute: a seconds field with two or more values, which shows by the
// third run (the second and third fall in one minute), and @every below a
// minute, which shows by the second. 16 leaves room without cost: 16
// Next calls take microseconds.
const cronSamples = 16

// Spec is when a database's Scheduled snapshots are taken: every interval,
// spread by the database id over that interval, or at the times of a cron
// expression (UTC), which the user chose exactly and so is not spread.
type Spec struct {
	Every time.Duration
	Cron  string
	// cron is gocron's own cron implementation, validated: its Next is
	// exactly when the CronJob made from Cron runs.
	cron gocron.Cron
}

// ParseSpec reads a schedule override: a Go duration such as 30m or 6h,
// or a cron expression with 5 fields (or 6, seconds first) or a descriptor
// such as @daily. A cron expression is checked as gocron checks it when
// the job is made (same parser, same options, UTC, at now), so a spec
// ParseSpec accepts is one the scheduler accepts; one that never fires
// (30 February) is refused, and so is anything that would run more often
// than MinInterval. Errors are Invalid on the field "schedule".
func ParseSpec(text string, now time.Time) (Spec, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Spec{}, snapdeck.FieldError("schedule", "Give an interval such as 30m or 6h, or a cron expression such as 0 3 * * *.")
	}
	if d, err := time.ParseDuration(text); err == nil {
		if d < MinInterval {
			return Spec{}, snapdeck.FieldError("schedule", "The interval %s is too short: scheduled snapshots must be at least %s apart.", text, inWords(MinInterval))
		}
		return Spec{Every: d}, nil
	}
	if !strings.ContainsAny(text, " @") {
		return Spec{}, snapdeck.FieldError("schedule", "%q is neither an interval (such as 30m, 6h or 24h) nor a cron expression (such as 0 3 * * *).", text)
	}
	c := gocronOf(text)
	if err := c.IsValid(text, time.UTC, now); err != nil {
		if errors.Is(err, gocron.ErrCronJobInvalid) {
			return Spec{}, snapdeck.FieldError("schedule", "%q never runs: no date matches it (such as 30 February), so the database would get no scheduled snapshots. Choose days that exist.", text)
		}
		return Spec{}, snapdeck.FieldError("schedule", "%q is not a valid cron expression (%s). Use 5 fields: minute hour day-of-month month day-of-week, e.g. 0 3 * * *.", text, parseReason(err))
	}
	if gap := shortestGap(c, now); gap < MinInterval {
		msg := fmt.Sprintf("%q runs as often as every %s: scheduled snapshots must be at least %s apart.", text, shortDuration(gap), inWords(MinInterval))
		if withSeconds(text) {
			msg += " With six fields the first is seconds: give it one value, such as 0."
		}
		return Spec{}, snapdeck.FieldError("schedule", "%s", msg)
	}
	return Spec{Cron: text, cron: c}, nil
}

// gocronOf is the cron implementation gocron's CronJob(text, withSeconds)
// uses: robfig/cron's standard parser for five fields, or with an optional
// seconds field first when there are six. definition passes the same
// withSeconds, so the job and this check never disagree.
func gocronOf(text string) gocron.Cron { return gocron.NewDefaultCron(withSeconds(text)) }

func withSeconds(text string) bool { return len(strings.Fields(text)) == 6 }

// shortestGap is the shortest time between two of the next cronSamples
// runs of a valid cron.
func shortestGap(c gocron.Cron, now time.Time) time.Duration {
	gap := time.Duration(math.MaxInt64)
	prev := c.Next(now)
	for range cronSamples - 1 {
		next := c.Next(prev)
		if next.IsZero() {
			break
		}
		gap = min(gap, next.Sub(prev))
		prev = next
	}
	return gap
}

// parseReason is robfig/cron's own words for a parse failure, without
// gocron's "gocron: CronJob: crontab parse failure" in front.
func parseReason(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[len(errs)-1].Error()
		}
	}
	return err.Error()
}

// inWords says a duration of whole minutes as "1 minute" or "5 minutes".
func inWords(d time.Duration) string {
	if d == time.Minute {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}

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
