package snapdeck

import "time"

// Outcome is how an audited action ended.
type Outcome string

// The outcomes the activity log shows.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"
	OutcomeRefused Outcome = "refused"
	OutcomeStarted Outcome = "started"
)

// Event is one line of the activity log: who did what, when, to which
// database or snapshot, and how it ended.
type Event struct {
	ID         int64
	At         time.Time
	Actor      string // a user's email, "api key <name>", or "system"
	Action     string // e.g. "snapshot.take", "database.create", "restore"
	DatabaseID string
	SnapshotID string
	Outcome    Outcome
	Detail     string
	Duration   time.Duration
}

// EventFilter selects events for FindEvents.
type EventFilter struct {
	DatabaseID string
	Limit      int
	Offset     int
}
