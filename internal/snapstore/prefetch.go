package snapstore

import "context"

// prefetcher reads the leaves below the next inner nodes of a tree walk
// while the walk hands out the pages below the current one. On a remote
// store the leaves of one inner node lie across 16 MiB of packs, and the
// blobs' cache keeps what reading them fetched; without reading ahead, the
// walk waited for each node's fetch while the readers of pages idled (a
// cold restore of 263 MiB from weed mini: 4.4 s, against 2.8 s reading
// one node ahead).
type prefetcher struct {
	s        *Store
	ctx      context.Context
	done     []chan struct{} // of the nodes launched, by position
	launched int
}

// prefetchDepth is how many inner nodes' leaves are read ahead of the
// walk. The blobs' cache fetches the packs below them whole (a node's
// leaves lie across 16 MiB of packs, so 2 or 3 requests), and three
// nodes ahead keep its requests in flight busy while the page readers
// work through the packs fetched before. Not four: the cache holds the
// runs a restore fetched in memory only (up to 96 MiB, the oldest dropped
// first), and with four nodes ahead (80 MiB and the runs in flight) a cold
// restore of 263 MiB at times dropped packs before their pages were read,
// and fetched them again: 67 GETs instead of 50.
const prefetchDepth = 3

// newPrefetcher returns a prefetcher for one list of inner nodes, or nil
// when s's blobs read each range locally, where reading ahead only doubles
// the reads.
func newPrefetcher(ctx context.Context, s *Store, n int) *prefetcher {
	if _, remote := s.blobs.(RangesGetter); !remote {
		return nil
	}
	return &prefetcher{s: s, ctx: ctx, done: make([]chan struct{}, n)}
}

// reach makes sure the leaves of nodes i to i+prefetchDepth are being
// read (children returns a node's leaves and the number of its first
// page, the order of its reads), then waits for node i's.
func (p *prefetcher) reach(i int, children func(j int) ([][32]byte, int64, error)) {
	if p == nil {
		return
	}
	for ; p.launched < len(p.done) && p.launched <= i+prefetchDepth; p.launched++ {
		hashes, first, err := children(p.launched)
		done := make(chan struct{})
		p.done[p.launched] = done
		if err != nil {
			close(done) // the walk reports it when it gets there
			continue
		}
		go func() {
			defer close(done)
			p.s.gc.RLock()
			defer p.s.gc.RUnlock()
			// Errors are the walk's to report when it reads these itself.
			_, _, _ = p.s.readRaw(WithReadOrder(p.ctx, first), hashes, false, nil)
		}()
	}
	<-p.done[i]
}

// wait waits for every read launched.
func (p *prefetcher) wait() {
	if p == nil {
		return
	}
	for _, d := range p.done[:p.launched] {
		<-d
	}
}
