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
// A descriptor is closed only once its path names another file or none,
// which happens after the database was restored over or deleted, when no
// connection to the old file is left.
var dbFiles struct {
	mu sync.Mutex
	m  map[string]*os.File // by path
}

// dbFile returns a descriptor of the database file at path, for reading
// only; the caller must not close it. It also closes the descriptors of
// files that are no longer where they were opened.
func dbFile(path string) (*os.File, error) {
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	for p, f := range dbFiles.m {
		if !stillAt(f, p) {
			f.Close()
			delete(dbFiles.m, p)
		}
	}
	if f, ok := dbFiles.m[path]; ok {
		return f, nil
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

// forgetDBFile closes the descriptor kept for path, if any. Install calls
// it when every connection to the old file is closed.
func forgetDBFile(path string) {
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
