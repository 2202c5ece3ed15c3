package snapstore

import (
	"context"
	"os"

	"github.com/snapdeck/snapdeck/internal/durable"
)

// writeOut writes f's dirty pages to disk and waits for them. It paces a
// writer to the disk, so that a capture never holds more than a few packs
// of dirty memory (which an unrelated fsync, such as a database writer's
// checkpoint, would otherwise have to wait for), and it leaves the fsync in
// Commit only metadata to write.
func writeOut(f *os.File) error { return durable.WriteOut(f, 0, 0) }

// writeBehind writes data to f in blobWriteSize writes and starts each
// writeBehindPiece's writeback as soon as it is written, waiting for the
// piece before it: no more than two pieces of f are dirty or in flight at
// a time, so the fsync after it has only the last to write. A blob of
// hundreds of MiB (a point-in-time compaction's file) otherwise sits in the
// page cache whole until that fsync, and on ext4 every other fsync made
// meanwhile (a level-0 file of a Query-tab commit, a checkpoint's WAL and
// database) waits behind its journal commit: 114-218 ms for a 4 KiB file
// in the console benchmark, as the fsync of a 267 MB compaction ran. It
// stops with ctx's error between writes.
func writeBehind(ctx context.Context, f *os.File, data []byte) error {
	var off, started int64
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Write(data[:min(len(data), blobWriteSize)])
		if err != nil {
			return err
		}
		data = data[n:]
		off += int64(n)
		if off-started < writeBehindPiece && len(data) > 0 {
			continue
		}
		durable.StartWriteback(f, started, off-started)
		if started > 0 {
			prev := max(started-writeBehindPiece, 0)
			if err := durable.WriteOut(f, prev, started-prev); err != nil {
				return err
			}
		}
		started = off
	}
	return nil
}
