// Package snapstore is snapdeck's content-addressed, deduplicated snapshot
// store. Pieces (database pages, some stored as deltas against the page
// the previous snapshot held, and the tree nodes that list them) are
// addressed by their SHA-256, written once, packed into pack blobs of a few
// MiB that a capture makes durable together at its end (one fsync per pack,
// no waiting on each), and reclaimed by mark-and-sweep from the roots the
// caller still holds.
// docs/snapshot-store.md describes the on-disk layout.
package snapstore

import (
	"context"
	"os"
	"strings"
)

// Blobs is where the snapshot store keeps its blobs: local disk now,
// S3-compatible object storage later. Keys are short relative paths of
// lowercase letters, digits, '-', '.' and '/'. Implementations are safe for
// concurrent use.
type Blobs interface {
	// Put stores data under key, replacing any blob of that key. When Put
	// returns nil the blob is durable: it survives a crash or power loss,
	// whole. A crash during Put leaves either no blob or the whole blob,
	// never a prefix of it.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the whole blob stored under key. A missing key is a
	// *snapdeck.Error with code NotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes the blob under key; deleting a missing key is not an
	// error. A delete need not be durable: after a crash a deleted blob may
	// reappear, and the next Sweep deletes it again.
	Delete(ctx context.Context, key string) error
	// List calls fn with every stored key, in no particular order, and stops
	// at fn's first error, which it returns. Blobs whose Put has not returned
	// may or may not be listed; they are never listed half-written.
	List(ctx context.Context, fn func(key string) error) error
}

// RangeGetter is implemented by Blobs that can read part of a blob, as local
// files and S3 (a Range request) can. The store reads single pages out of
// multi-MiB packs, so without it every read would fetch a whole pack.
type RangeGetter interface {
	// GetRange fills buf with the bytes of the blob under key starting at
	// off; a negative off counts from the end of the blob (off -24 with a
	// 24-byte buf: its last 24 bytes). The caller owns buf, so a restore
	// reads into the same few buffers throughout. A missing key is a
	// *snapdeck.Error with code NotFound; a range beyond the blob's end is
	// an error.
	GetRange(ctx context.Context, key string, off int64, buf []byte) error
}

// Batcher is implemented by Blobs that can make many blobs durable at once.
// A capture writes its packs through a Batch: each pack is written while
// pages are still being read, and the whole set costs one durability step
// at the end instead of one fsync (and directory fsync) per pack.
type Batcher interface {
	// NewBatch starts a batch of blobs.
	NewBatch() Batch
}

// Batch is a set of blobs that become durable and visible together. Blobs
// put in a batch are invisible to Get and List until Commit returns, and a
// crash before then leaves none of them behind (or only ones the next open
// removes). A Batch is safe for concurrent Put; Commit and Discard are
// called once, after every Put has returned.
type Batch interface {
	// Put writes data under key without making it durable or visible.
	Put(ctx context.Context, key string, data []byte) error
	// Commit makes every blob put so far durable and then visible under
	// its key. After a crash during Commit each blob is either absent or
	// whole and durable; never a prefix of it.
	Commit(ctx context.Context) error
	// Discard removes the blobs put and not committed.
	Discard()
}

// FilePutter is implemented by Blobs that can store a file the caller
// already has on disk without the caller reading it into memory: local
// blobs take it by hard link when it is on their filesystem, S3 streams it
// in parts. Point-in-time replication hands every level-0 file this way;
// after a swap of a database that file is about the size of the database.
type FilePutter interface {
	// PutFile stores the content of f, from its start to the size Stat
	// gives at the call (whatever f's offset), under key, replacing any
	// blob of that key; its durability is Put's: when PutFile returns nil
	// the blob survives a crash or power loss, whole, and a crash during
	// PutFile leaves either no blob or the whole blob.
	//
	// The store may keep f's file itself (a hard link), so the caller
	// must never change the file's content after the call: it may remove
	// or rename it, never write to it or truncate it. f stays the
	// caller's to close.
	PutFile(ctx context.Context, key string, f *os.File) error
}

// PrefixLister is implemented by Blobs that can list the keys under a
// prefix without walking every key, as a directory or an S3 listing with a
// prefix can. Point-in-time replication keeps its files under a prefix per
// database (pitr/<id>/) and lists them at every sync and restore.
type PrefixLister interface {
	// ListPrefix calls fn with every stored key starting with prefix, in
	// no particular order, and stops at fn's first error, which it
	// returns; otherwise as List.
	ListPrefix(ctx context.Context, prefix string, fn func(key string) error) error
}

// ListPrefix calls fn with every key of b starting with prefix: through
// b's PrefixLister when it has one, else by filtering List.
func ListPrefix(ctx context.Context, b Blobs, prefix string, fn func(key string) error) error {
	if pl, ok := b.(PrefixLister); ok {
		return pl.ListPrefix(ctx, prefix, fn)
	}
	return b.List(ctx, func(key string) error {
		if strings.HasPrefix(key, prefix) {
			return fn(key)
		}
		return nil
	})
}
