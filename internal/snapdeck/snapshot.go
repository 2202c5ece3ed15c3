package snapdeck

import "time"

// SnapshotType says why a snapshot was taken. The values are the labels the
// console shows and the data-snapshot-type attribute carries.
type SnapshotType string

// The three snapshot types of SPEC §1.
const (
	SnapshotScheduled SnapshotType = "Scheduled"
	SnapshotLoad      SnapshotType = "Load"
	SnapshotOnDemand  SnapshotType = "On-demand"
)

// Valid reports whether t is one of the three types.
func (t SnapshotType) Valid() bool {
	return t == SnapshotScheduled || t == SnapshotLoad || t == SnapshotOnDemand
}

// SnapshotStatus is where a snapshot is in its life.
type SnapshotStatus string

// The snapshot statuses of SPEC §1.
const (
	SnapshotPending    SnapshotStatus = "pending"
	SnapshotInProgress SnapshotStatus = "in-progress"
	SnapshotCompleted  SnapshotStatus = "completed"
	SnapshotFailed     SnapshotStatus = "failed"
)

// Snapshot is a consistent copy of a database's data at one point in time.
type Snapshot struct {
	ID          string // UUID
	DatabaseID  string
	Type        SnapshotType
	Reason      string
	Status      SnapshotStatus
	CreatedAt   time.Time
	CompletedAt time.Time // zero until completed or failed
	SizeBytes   int64     // bytes of the database image
	ExpiresAt   time.Time
	SHA256      string // hex SHA-256 of the database image
	Root        string // the snapshot store's reference to the image
	Error       string // why it failed, for failed snapshots
	VerifiedAt  time.Time
	Verified    bool   // the image was rebuilt and checked
	VerifyError string // set when verification failed
}

// SnapshotFilter selects snapshots for FindSnapshots.
type SnapshotFilter struct {
	DatabaseID string
	Type       SnapshotType   // empty: every type
	Status     SnapshotStatus // empty: every status
	From, To   time.Time      // created in [From, To); zero: unbounded
	Limit      int            // 0: no limit
	Offset     int
}
