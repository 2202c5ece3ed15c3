package snapdeck

import "time"

// JobKind names a kind of background work.
type JobKind string

// The kinds of background work.
const (
	JobSnapshot JobKind = "snapshot"
	JobRestore  JobKind = "restore"
	// JobOverwrite replaces a database's data with another database's
	// data or snapshot (the API's overwrite); the API shows the database
	// as "overwriting" while it runs.
	JobOverwrite          JobKind = "overwrite"
	JobLoad               JobKind = "load"
	JobExport             JobKind = "export"
	JobCreateFromSnapshot JobKind = "create-from-snapshot"
	JobVerify             JobKind = "verify"
)

// JobStatus is where a job is in its life.
type JobStatus string

// The job statuses.
const (
	JobQueued    JobStatus = "queued"
	JobRunning   JobStatus = "running"
	JobSucceeded JobStatus = "succeeded"
	JobFailed    JobStatus = "failed"
)

// IsDone reports whether the job has ended, well or not.
func (s JobStatus) IsDone() bool { return s == JobSucceeded || s == JobFailed }

// Job is long work run in the background with visible progress: a
// snapshot, a restore, a load, an export, a create from snapshot.
type Job struct {
	ID         string
	Kind       JobKind
	DatabaseID string
	SnapshotID string
	// TargetID is the database a create-from-snapshot makes, or the
	// snapshot a restore or load produced as its safety copy.
	TargetID   string
	Actor      string
	Status     JobStatus
	DoneBytes  int64
	TotalBytes int64
	Message    string // what it is doing now, or what it did
	Error      string // why it failed, safe to show
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Percent is how far the job is, 0 to 100.
func (j Job) Percent() int {
	if j.Status == JobSucceeded {
		return 100
	}
	if j.TotalBytes <= 0 {
		return 0
	}
	p := int(j.DoneBytes * 100 / j.TotalBytes)
	return min(max(p, 0), 100)
}

// PlanPolicy is a plan's snapshot cadence and retention.
type PlanPolicy struct {
	Cadence   time.Duration
	Retention time.Duration
}

// DefaultPolicies are the plan defaults of SPEC §1.
func DefaultPolicies() map[Plan]PlanPolicy {
	return map[Plan]PlanPolicy{
		PlanFree:         {Cadence: 24 * time.Hour, Retention: 7 * 24 * time.Hour},
		PlanProfessional: {Cadence: 24 * time.Hour, Retention: 7 * 24 * time.Hour},
		PlanEnterprise:   {Cadence: time.Hour, Retention: 90 * 24 * time.Hour},
	}
}
