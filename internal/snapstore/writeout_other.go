//go:build !linux

package snapstore

import (
	"context"
	"os"
)

// writeOut does nothing where sync_file_range does not exist: Commit's
// fsync then writes the data as well.
func writeOut(f *os.File) error { return nil }

// writeBehind writes data to f in blobWriteSize writes, and stops with
// ctx's error between them; where sync_file_range does not exist the
// fsync after it writes the data.
func writeBehind(ctx context.Context, f *os.File, data []byte) error {
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := f.Write(data[:min(len(data), blobWriteSize)])
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}
