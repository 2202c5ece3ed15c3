// Package pagecache tells how much of a file the kernel holds in its page
// cache, for the tests that check what is written around it or left dirty
// in it.
package pagecache

import "errors"

// ErrUnsupported is returned where the kernel cannot tell (cachestat(2)
// is Linux 6.5 and later).
var ErrUnsupported = errors.New("pagecache: cachestat(2) is not available")

// Stat is a file's pages in the page cache.
type Stat struct {
	// Cached is how many of its pages are in the page cache; Dirty how
	// many of those are not yet written back.
	Cached, Dirty uint64
}

// Of returns the page cache's state of the whole file at path.
func Of(path string) (Stat, error) { return of(path) }
