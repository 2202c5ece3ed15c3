package snapdeck

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// FileMode is the permission of every hosted database file, however it was
// made (created, imported, restored, created from a snapshot): readable
// and writable by the console, readable by its group (a backup agent),
// nobody else. SQLite gives the -wal and -shm files the same.
const FileMode = 0o640

// RemoveDatabaseFiles removes the database file at path and the -wal, -shm
// and -journal files SQLite keeps beside it; missing ones are no error.
func RemoveDatabaseFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

// Plan decides a database's snapshot cadence and retention.
type Plan string

// The plans.
const (
	PlanFree         Plan = "free"
	PlanProfessional Plan = "professional"
	PlanEnterprise   Plan = "enterprise"
)

// Plans lists every plan, cheapest first.
var Plans = []Plan{PlanFree, PlanProfessional, PlanEnterprise}

// Valid reports whether p is a known plan.
func (p Plan) Valid() bool {
	return p == PlanFree || p == PlanProfessional || p == PlanEnterprise
}

// Status is a hosted database's lifecycle state.
type Status string

// The database statuses of SPEC §1.
const (
	StatusCreating  Status = "creating"
	StatusRunning   Status = "running"
	StatusRestoring Status = "restoring"
	StatusLoading   Status = "loading"
	StatusDeleting  Status = "deleting"
	StatusFailed    Status = "failed"
	// StatusPaused is a database paused through the API: it keeps its data
	// and snapshots but serves no queries until it is resumed. Not busy: it
	// can be resumed or deleted at once.
	StatusPaused Status = "paused"
)

// IsBusy reports whether the database is in the middle of an operation that
// excludes others.
func (s Status) IsBusy() bool {
	return s == StatusCreating || s == StatusRestoring || s == StatusLoading || s == StatusDeleting
}

// Database is a SQLite database hosted by the console.
type Database struct {
	ID        string
	Name      string
	Plan      Plan
	Status    Status
	CreatedAt time.Time
	SizeBytes int64
	// Schedule overrides the plan's cadence: a Go duration or a cron
	// expression; empty means the plan's default.
	Schedule string
	// Placement is where an API client asked for the database to live;
	// it is only stored and shown.
	Placement Placement
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{8}$`)

// NewDatabaseID returns a random id of 8 lowercase hex characters.
func NewDatabaseID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// ValidDatabaseID reports whether id has the shape of a database id.
func ValidDatabaseID(id string) bool { return idPattern.MatchString(id) }

// DatabaseNotFound is the error for a database id that names nothing,
// with the reason Aura clients expect.
func DatabaseNotFound(id string) *Error {
	return &Error{Code: NotFound, Reason: "db-not-found", Message: "Database not found: " + id}
}

// ValidateDatabaseName checks a database name: 1-64 printable characters.
func ValidateDatabaseName(name string) error {
	if strings.TrimSpace(name) == "" {
		return FieldError("name", "Give the database a name.")
	}
	if n := len([]rune(name)); n > 64 {
		return FieldError("name", "The name is %d characters long; use at most 64.", n)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return FieldError("name", "The name may hold only printable characters.")
		}
	}
	return nil
}
