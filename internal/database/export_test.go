package database

import "time"

// SetFaultHook sets the function called at the named points of a restore,
// for the crash tests.
func SetFaultHook(f func(point string)) {
	if f == nil {
		faultHook.Store(nil)
		return
	}
	faultHook.Store(&f)
}

// TempPath names a temporary file next to dbPath for purpose, as replace,
// create-from-snapshot and the snapshot engine's Install do.
func TempPath(dbPath, purpose, id string) string { return tempPath(dbPath, tempPurpose(purpose), id) }

// TempPurposes lists every purpose Recover knows.
func TempPurposes() []string {
	out := make([]string, len(tempPurposes))
	for i, p := range tempPurposes {
		out[i] = string(p)
	}
	return out
}

// The caps on leases (lease.go).
const (
	MaxLeasesPerDatabase = maxLeasesPerDatabase
	MaxLeases            = maxLeases
)

// SetFollowWindow sets how many MiB a preparation keeps in memory for the
// downloads that follow it, and how long it waits for one that stalls;
// the returned func sets them back.
func SetFollowWindow(mib int64, stall time.Duration) (restore func()) {
	w, s := followWindow, followStall
	followWindow, followStall = mib, stall
	return func() { followWindow, followStall = w, s }
}

// SetPrepWriters sets how many writers put a preparation's chunks on disk
// around the page cache (zero: every chunk goes through it); the returned
// func sets it back.
func SetPrepWriters(n int) (restore func()) {
	w := prepWriters
	prepWriters = n
	return func() { prepWriters = w }
}
