// Package activity is the one writer of the activity log: typed actions,
// one rule for how an action ended, and one observer told of every line.
// The services call it where the action happens, so the console and the
// API record the same action the same way.
package activity

import (
	"context"
	"log/slog"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// Action names what was done. The strings are stored in console.db and
// shown in /activity as they are: a released one is never renamed.
type Action string

// The actions of the activity log.
const (
	SignIn          Action = "sign-in"
	UserAdd         Action = "user.add"
	UserRole        Action = "user.role"
	UserDisable     Action = "user.disable"
	UserEnable      Action = "user.enable"
	PasswordReset   Action = "user.password-reset"
	APIKeyCreate    Action = "apikey.create"
	APIKeyRevoke    Action = "apikey.revoke"
	DatabaseCreate  Action = "database.create"
	CreateFromSnap  Action = "database.create-from-snapshot"
	DatabaseUpdate  Action = "database.update"
	DatabaseConfig  Action = "database.settings"
	DatabaseDelete  Action = "database.delete"
	DatabasePause   Action = "database.pause"
	DatabaseResume  Action = "database.resume"
	CredentialReset Action = "database.credentials.reset"
	SnapshotTake    Action = "snapshot.take"
	SnapshotExport  Action = "snapshot.export"
	Restore         Action = "restore"
	Overwrite       Action = "overwrite"
	Load            Action = "load"
	TokenIssue      Action = "database.token.issue"
	TokenRevoke     Action = "database.token.revoke"
	// RestoreToTime and CreateAtTime are point-in-time restores (issue
	// 16); the detail names the time asked for.
	RestoreToTime Action = "restore-to-time"
	CreateAtTime  Action = "database.create-at-time"
)

// Entry is one action to record: who did what to which database and
// snapshot, and the error it ended with, nil when it succeeded.
type Entry struct {
	Actor      string // a user's email, "api key <name>", or "system"
	Action     Action
	DatabaseID string
	SnapshotID string
	// Detail says what was done; with Err the error's safe message is
	// added after it ("detail: message"), or stands alone without one.
	Detail   string
	Duration time.Duration
	Err      error
}

// Observer is told of every line after it is recorded. The webhook
// notifier is one; it must not block, as it runs on the recording path.
type Observer interface {
	Event(e snapdeck.Event)
}

// Recorder writes the activity log.
type Recorder struct {
	db       *store.DB
	observer Observer
	logger   *slog.Logger
}

// New returns a Recorder writing to db's activity log and telling
// observer, which may be nil, of each line.
func New(db *store.DB, observer Observer, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{db: db, observer: observer, logger: logger}
}

// Outcome is the one rule for how an action ended: nil is ok; an error
// whose code says the request was not acceptable (wrong input, no right,
// nothing there, a state that forbids it, too much or too many) is
// refused; anything else, untyped errors included, failed.
func Outcome(err error) snapdeck.Outcome {
	if err == nil {
		return snapdeck.OutcomeOK
	}
	switch snapdeck.ErrorCode(err) {
	case snapdeck.Invalid, snapdeck.Forbidden, snapdeck.Unauthorized, snapdeck.NotFound,
		snapdeck.Conflict, snapdeck.Busy, snapdeck.TooMany, snapdeck.TooLarge:
		return snapdeck.OutcomeRefused
	}
	return snapdeck.OutcomeFailed
}

// Record writes e to the activity log, then tells the observer. It is
// written even when ctx is cancelled: an action a client walked away
// from still happened, or was still refused. A failure to write is
// logged, not returned, for the same reason; the line is returned as
// recorded.
func (r *Recorder) Record(ctx context.Context, e Entry) snapdeck.Event {
	ev := snapdeck.Event{Actor: e.Actor, Action: string(e.Action), DatabaseID: e.DatabaseID, SnapshotID: e.SnapshotID,
		Outcome: Outcome(e.Err), Detail: e.Detail, Duration: e.Duration}
	if e.Err != nil {
		ev.Detail = snapdeck.ErrorMessage(e.Err)
		if e.Detail != "" {
			ev.Detail = e.Detail + ": " + ev.Detail
		}
	}
	if err := r.db.RecordEvent(context.WithoutCancel(ctx), &ev); err != nil {
		r.logger.Error("record activity", "action", ev.Action, "database_id", ev.DatabaseID,
			"snapshot_id", ev.SnapshotID, "user", ev.Actor, "err", err)
	}
	if r.observer != nil {
		r.observer.Event(ev)
	}
	return ev
}

// Find reads the activity log, newest first, as the filter says.
func (r *Recorder) Find(ctx context.Context, f snapdeck.EventFilter) ([]snapdeck.Event, error) {
	return r.db.FindEvents(ctx, f)
}
