package database

import (
	"sync"
	"time"
)

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

// SetCopyBehind sets how many MiB a preparation's cached copy may fall
// behind before it is given up; the returned func sets it back.
func SetCopyBehind(mib int) (restore func()) {
	b := copyBehind
	copyBehind = mib
	return func() { copyBehind = b }
}

// HoldCopyWriters makes the writers of every cached copy wait, before each
// chunk, until the returned func is called, as a disk slower than the
// export would; that func also removes the hold.
func HoldCopyWriters() (release func()) {
	held := make(chan struct{})
	hook := func() { <-held }
	copyWriteHook.Store(&hook)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(held)
		})
	}
}

// ReleaseCopyWriters removes the hook HoldCopyWriters set; call it once no
// preparation runs.
func ReleaseCopyWriters() { copyWriteHook.Store(nil) }
