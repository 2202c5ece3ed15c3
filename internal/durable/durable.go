// Package durable makes file-system changes survive a crash: the one place
// that fsyncs a file or directory by path.
package durable

import "os"

// Sync fsyncs the file or directory at path.
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir fsyncs a directory ("" is the working directory): a file
// created, renamed or removed in it is not durable until its entry is.
func SyncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	return Sync(dir)
}
