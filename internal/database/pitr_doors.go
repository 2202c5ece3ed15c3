package database

import (
	"context"
	"errors"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// RestoreToTimeRead is RestoreToTime for a door that read the time from a
// request: a badInput (the time or the body could not be read) is refused
// and recorded as RestoreToTime records its own refusals, and nothing
// changes.
func (ss *Snapshots) RestoreToTimeRead(ctx context.Context, actor, dbID string, at time.Time, badInput error) (snapdeck.Database, snapdeck.Job, error) {
	if badInput != nil {
		ss.recordRefusal(ctx, actor, activity.RestoreToTime, dbID, "", badInput)
		return snapdeck.Database{}, snapdeck.Job{}, badInput
	}
	return ss.RestoreToTime(ctx, actor, dbID, at)
}

// RestoreToTimeTyped is RestoreToTimeRead behind the console's
// confirmation: it proceeds only when typed is exactly RestoreConfirm. A
// wrong word and an unreadable time are refused together, each on its
// field (errors.Join), and recorded once.
func (ss *Snapshots) RestoreToTimeTyped(ctx context.Context, actor, dbID string, at time.Time, badTime error, typed string) (snapdeck.Database, snapdeck.Job, error) {
	if typed != RestoreConfirm {
		badTime = errors.Join(badTime, errNotConfirmed())
	}
	return ss.RestoreToTimeRead(ctx, actor, dbID, at, badTime)
}
