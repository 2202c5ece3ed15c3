package s3blobs

// The cache's size when --snapshot-cache-size is auto (the default):
// enough for the latest snapshot of every database, with a margin, and
// never more than a share of the disk it is on. A capture after a small
// change is warm only while the cache holds the packs of the database's
// latest snapshot (its bases); a fixed 1 GiB held none of a 1 GiB
// database's: its capture after 1% changed made 94 GETs and took 5.9 s,
// against none and 1.1 s with a cache of 4 GiB.
const (
	// autoMargin is added to the images' bytes: the packs a restore or a
	// capture also reads (tree nodes, the small packs of later captures,
	// pack indexes) and the pages later captures wrote since.
	autoMargin = 256 << 20
	// autoShare: the cache takes at most 1/autoShare of the space it
	// could have on its file system (what is free and what it holds).
	autoShare = 2
	// autoRound: sizes are rounded up to a multiple of this, so that
	// the size changes (and is logged) rarely as databases grow.
	autoRound = 64 << 20
	// unknownFree bounds the cache where the free space cannot be
	// learnt.
	unknownFree = 2 << 30
)

// AutoSize returns the cache size that holds images bytes of snapshot
// images (the latest snapshot of every database) with a quarter more and
// autoMargin, rounded up to 64 MiB, but at most half of the space the
// cache could have: free bytes free on its file system (negative:
// unknown, then 1 GiB) and the used bytes it already takes. bounded says
// whether the disk, not the images, set it.
func AutoSize(images, used, free int64) (size int64, bounded bool) {
	size = images + images/4 + autoMargin
	size = (size + autoRound - 1) / autoRound * autoRound
	if free < 0 {
		free = unknownFree - used
	}
	if limit := max(free+used, 0) / autoShare; size > limit {
		return limit, true
	}
	return size, false
}
