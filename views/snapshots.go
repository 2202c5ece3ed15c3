package views

import (
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Snapshots is the SNAPSHOTS tab.
type Snapshots struct {
	DB        snapdeck.Database
	Snapshots []snapdeck.Snapshot // this page, newest first
	// Jobs are the database's unfinished jobs, shown with progress.
	Jobs []snapdeck.Job
	// Type filters the list; empty shows every type.
	Type        snapdeck.SnapshotType
	Page, Pages int // 1-based page and the page count (50 a page)
	Total       int
	Retention   time.Duration
	// NextScheduled is when the next Scheduled snapshot is due; zero when
	// unknown.
	NextScheduled time.Time
	// OnlyLatest is set for free databases: only the latest snapshot is
	// available, and only it is listed.
	OnlyLatest bool
	Now        time.Time
	// PITR is the database's point-in-time restore window.
	PITR PITR
}

// Restore is the typed-RESTORE confirmation page.
type Restore struct {
	DB       snapdeck.Database
	Snapshot snapdeck.Snapshot
	Confirm  string // what the user typed, re-shown after a mistake
	Error    string
}

// CreateFromSnapshot is the create-database-from-snapshot form.
type CreateFromSnapshot struct {
	DB       snapdeck.Database // the source database
	Snapshot snapdeck.Snapshot
	Name     string
	Plan     snapdeck.Plan
	Error    string
}

// JobView is a job's progress page or partial.
type JobView struct {
	Job snapdeck.Job
	DB  snapdeck.Database
	// Next is where to go when the job has succeeded (the new database,
	// the snapshots tab, the download); empty stays on the page.
	Next     string
	NextText string
}

// Activity is the audit log page.
type Activity struct {
	Events      []snapdeck.Event
	DatabaseID  string // the filter; empty shows every database
	Databases   []snapdeck.Database
	Page, Pages int
	Now         time.Time // relative times are computed against it
}
