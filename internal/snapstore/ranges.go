package snapstore

import (
	"context"
	"math"
)

// Range is one part of a blob to read: len(Buf) bytes of the blob under Key
// from Off (Off < 0: from its end, as for GetRange).
type Range struct {
	Key string
	Off int64
	Buf []byte
}

// RangesGetter is implemented by Blobs for which every read is a round trip
// of its own, as on object storage: the store hands them every range of a
// batch at once (the leaves below a tree node, a run of pages, the bases of
// a capture's deltas), and they may merge neighbouring ones and read several
// at a time. Local files read one range at a time faster than any of that.
type RangesGetter interface {
	// GetRanges fills every range's Buf, as GetRange would each. A missing
	// key is a *snapdeck.Error with code NotFound.
	GetRanges(ctx context.Context, ranges []Range) error
}

type onePassKey struct{}

// OnePass marks the reads made with ctx as one pass through an image, in
// page order, each piece read once (a restore, an export, a verification):
// a RangesGetter may then read whole blobs at the first touch and need not
// keep what it read for later.
func OnePass(ctx context.Context) context.Context {
	return context.WithValue(ctx, onePassKey{}, true)
}

// IsOnePass reports whether ctx was marked by OnePass.
func IsOnePass(ctx context.Context) bool {
	is, _ := ctx.Value(onePassKey{}).(bool)
	return is
}

type sparseKey struct{}

// Sparse marks the reads made with ctx as wanting only the ranges asked
// for: a RangesGetter is not to read whole blobs or read ahead for them
// (and no longer treats them as one pass). A restore reads the inner
// nodes of its tree this way: they lie one every 16 MiB of the first
// capture's packs, and fetching each one's pack whole, as one pass would,
// fetched most of a 1 GiB image before its first page was read, and again
// later when the packs had been dropped from memory.
func Sparse(ctx context.Context) context.Context {
	return context.WithValue(context.WithValue(ctx, onePassKey{}, false), sparseKey{}, true)
}

// IsSparse reports whether ctx was marked by Sparse.
func IsSparse(ctx context.Context) bool {
	is, _ := ctx.Value(sparseKey{}).(bool)
	return is
}

type readOrderKey struct{}

// WithReadOrder marks the reads made with ctx as serving page first (from
// 0) of a pass through an image: a RangesGetter that has to queue its
// requests may send those of the earlier pages first, which the pass
// waits for sooner.
func WithReadOrder(ctx context.Context, first int64) context.Context {
	return context.WithValue(ctx, readOrderKey{}, first)
}

// ReadOrder returns the order WithReadOrder gave ctx, or math.MinInt64
// (before any page) when it gave none: such reads (a tree's top, a
// pack's index, a capture's bases) are few and waited for at once.
func ReadOrder(ctx context.Context) int64 {
	if first, ok := ctx.Value(readOrderKey{}).(int64); ok {
		return first
	}
	return math.MinInt64
}

// remoteReaders is how many batches of a restore are read at once from a
// RangesGetter: a batch there waits on a round trip or two (its pages,
// then the bases of its deltas) rather than on a core, and 8 requests in
// flight roughly double SeaweedFS's throughput over one.
const remoteReaders = 8

// remoteFlushers is how many packs a capture uploads at once to a
// RangesGetter's store: an upload waits on the server, not on the disk,
// and minio-go itself sends 4 parts of a file at once.
const remoteFlushers = 4

// flushers returns how many packs a capture writes at once.
func (s *Store) flushers() int {
	if _, remote := s.blobs.(RangesGetter); remote {
		return remoteFlushers
	}
	return flushers
}

// getRanges sets every range's Buf to a buffer from sc (which may be nil)
// of the length in lens and fills it, through GetRanges when the blobs have
// it and one range at a time otherwise.
func (s *Store) getRanges(ctx context.Context, ranges []Range, lens []int, sc *scratch) error {
	mg, ok := s.blobs.(RangesGetter)
	if !ok {
		for i, r := range ranges {
			if err := ctx.Err(); err != nil {
				// Cancelled while the ranges were worked out, which for a
				// batch of pages takes long enough under load that a read
				// checked just before a cancel would still read them all.
				return err
			}
			buf, err := s.getRange(ctx, r.Key, r.Off, lens[i], sc)
			if err != nil {
				return err
			}
			ranges[i].Buf = buf
		}
		return nil
	}
	for i := range ranges {
		ranges[i].Buf = sc.get(lens[i])
	}
	return mg.GetRanges(ctx, ranges)
}

type passingKey struct{}

// Passing marks the blobs put and read with ctx as passing through: read
// once and written for later, not for soon. A Blobs with a local cache
// (the S3 store's) reads what it has there, but keeps none of them. The
// point-in-time compactions put and read this way: each reads the
// level-0 files once and writes a file as large as what changed (the
// database's size after a fill or a swap). Kept, two compactions of a
// 1 GiB fill held 1.8 GiB of a 2.8 GiB cache, and what one reads or
// writes after a capture makes that capture's packs, the next capture's
// bases, the least recently used, the first to go (docs/benchmarks.md,
// s9-s3cache: a capture after 1% changed made 42 GETs in one run of two).
func Passing(ctx context.Context) context.Context {
	return context.WithValue(ctx, passingKey{}, true)
}

// IsPassing reports whether ctx was marked by Passing.
func IsPassing(ctx context.Context) bool {
	is, _ := ctx.Value(passingKey{}).(bool)
	return is
}
