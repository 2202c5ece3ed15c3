package s3blobs

import (
	"context"
	"io"
	"os"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// PutFile uploads f's content under key (snapstore.FilePutter) straight
// from the file: minio-go reads it by offset, one part of partSize per
// thread at a time, so a point-in-time file of a GiB never sits in memory
// whole. Like Put, it refuses once a lease was lost, and the object is
// visible only once every part is stored.
func (s *S3) PutFile(ctx context.Context, key string, f *os.File) error {
	if err := s.checkFence(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return s.wrap("put blob "+key, err)
	}
	return s.putObject(ctx, key, io.NewSectionReader(f, 0, fi.Size()), fi.Size())
}

// PutFile uploads f's content and drops any cached blocks of key. It keeps
// none of the file: a point-in-time file is read again only by a restore
// to a time, and one of a database's size would evict the packs.
func (c *Cache) PutFile(ctx context.Context, key string, f *os.File) error {
	c.drop(key)
	err := c.remote.PutFile(ctx, key, f)
	// Drop again: a read during the upload may have fetched the old
	// content under the new gen.
	c.drop(key)
	return err
}

var (
	_ snapstore.FilePutter = (*S3)(nil)
	_ snapstore.FilePutter = (*Cache)(nil)
)
