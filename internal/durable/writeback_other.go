//go:build !linux

package durable

import "os"

// StartWriteback does nothing where sync_file_range does not exist: the
// final fsync writes everything.
func StartWriteback(f *os.File, off, n int64) {}

// Preallocate does nothing where fallocate does not exist.
func Preallocate(f *os.File, n int64) error { return nil }

// WriteOut does nothing where sync_file_range does not exist: the fsync
// after it writes the data.
func WriteOut(f *os.File, off, n int64) error { return nil }
