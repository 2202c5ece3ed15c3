//go:build !linux

package snapshot

import "os"

// startWriteback does nothing where sync_file_range does not exist: the
// final fsync writes everything.
func startWriteback(f *os.File, off, n int64) {}

// preallocate does nothing where fallocate does not exist.
func preallocate(f *os.File, n int64) error { return nil }
