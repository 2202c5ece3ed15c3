package snapshot

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing n bytes of f at off to
// disk now, without waiting. Materialize calls it behind its writes so that
// the disk works while later pages are still being read and checked, and
// the final fsync has little left to do.
func startWriteback(f *os.File, off, n int64) {
	// Only a hint: the fsync that follows is what makes the file durable.
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
