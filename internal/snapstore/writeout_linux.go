package snapstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeOut writes f's dirty pages to disk and waits for them, without the
// journal commit and cache flush of an fsync. It makes nothing durable: it
// paces a writer to the disk, so that a capture never holds more than a
// few packs of dirty memory (which an unrelated fsync, such as a database
// writer's checkpoint, would otherwise have to wait for), and it leaves the
// fsync in Commit only metadata to write.
func writeOut(f *os.File) error {
	return unix.SyncFileRange(int(f.Fd()), 0, 0,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
