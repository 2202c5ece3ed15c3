package snapshot

import (
	"os"
	"sync"
)

// dbFiles holds the descriptors Capture reads database files through. They
// are opened once per file and kept open, because closing any descriptor
// of a file drops every POSIX lock this process holds on it, including the
// locks of the console's own SQLite connections to that database
// (https://www.sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_).
// A descriptor is closed once every connection to its file is: Install
// closes it before the rename, the database's deletion calls ForgetFile,
// and one whose path names another file by the next capture is replaced.
var dbFiles struct {
	mu sync.Mutex
	m  map[string]*os.File // by path
}

// dbFile returns a descriptor of the database file at path, for reading
// only; the caller must not close it.
func dbFile(path string) (*os.File, error) {
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	if f, ok := dbFiles.m[path]; ok {
		if stillAt(f, path) {
			return f, nil
		}
		f.Close()
		delete(dbFiles.m, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if dbFiles.m == nil {
		dbFiles.m = make(map[string]*os.File)
	}
	dbFiles.m[path] = f
	return f, nil
}

// ForgetFile closes the descriptor Capture keeps for the database file at
// path, if any; the caller has closed every connection to that file, as
// when the database was deleted, whose space is then freed at once.
func ForgetFile(path string) {
	forgetCaptures(path)
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	if f, ok := dbFiles.m[path]; ok {
		f.Close()
		delete(dbFiles.m, path)
	}
}

// stillAt reports whether path still names the file f has open.
func stillAt(f *os.File, path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	ofi, err := f.Stat()
	return err == nil && os.SameFile(fi, ofi)
}
