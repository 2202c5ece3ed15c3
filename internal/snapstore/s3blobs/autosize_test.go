package s3blobs

import (
	"context"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// TestAutoSize checks the sizing of a cache from the data: the images and
// a quarter more and a margin, rounded up, but at most half of the space
// the cache could take on its disk (half of 1 GiB when that is unknown).
func TestAutoSize(t *testing.T) {
	const mib, gib = int64(1) << 20, int64(1) << 30
	for _, c := range []struct {
		images, used, free, want int64
		bounded                  bool
	}{
		{0, 0, 100 * gib, 256 * mib, false},
		{gib, 0, 100 * gib, 1536 * mib, false},
		{gib + 1, 0, 100 * gib, 1600 * mib, false},
		{4 * gib, gib, 100 * gib, 5376 * mib, false},
		{4 * gib, 0, 6 * gib, 3 * gib, true},
		{4 * gib, 2 * gib, 2 * gib, 2 * gib, true},
		{4 * gib, 0, -1, gib, true},
		{0, 0, 100 * mib, 50 * mib, true},
	} {
		got, bounded := AutoSize(c.images, c.used, c.free)
		if got != c.want || bounded != c.bounded {
			t.Errorf("AutoSize(%d, %d, %d) = %d, %v; want %d, %v", c.images, c.used, c.free, got, bounded, c.want, c.bounded)
		}
	}
}

// TestSetLimitEvicts checks that a cache made smaller drops its least
// recently used extents at once, down to the new size.
func TestSetLimitEvicts(t *testing.T) {
	weed, ctx := s3test.Start(t), context.Background()
	remote, err := New(Config{Endpoint: weed.Endpoint, Bucket: weed.Bucket, Prefix: "set-limit",
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := NewCache(remote, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"p/a", "p/b", "p/c"} {
		if err := c.Put(ctx, key, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close() // the blobs put are kept
	c, err = NewCache(remote, dir, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if used := c.Used(); used < 3<<20 {
		t.Fatalf("the cache holds %d bytes after three puts of 1 MiB", used)
	}
	c.SetLimit(3 << 19)
	if used, limit := c.Used(), c.Limit(); limit != 3<<19 || used > limit || used == 0 {
		t.Errorf("after SetLimit(1.5 MiB): limit %d, %d bytes held; want 1.5 MiB and one blob's worth", limit, used)
	}
}
