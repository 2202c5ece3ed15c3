//go:build !linux

package pitr_test

import "os"

func syncData(f *os.File) { f.Sync() }
