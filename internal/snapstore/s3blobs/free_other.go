//go:build !linux

package s3blobs

import "errors"

// FreeSpace is not known on this system: AutoSize then bounds the cache
// by 1 GiB.
func FreeSpace(dir string) (int64, error) {
	return 0, errors.New("free space not known on this system")
}
