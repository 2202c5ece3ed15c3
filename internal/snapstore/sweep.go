package snapstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// compactBelow is the live fraction under which Sweep rewrites a pack's
// live pieces into a new pack and deletes the old one. Packs are deleted
// whole, so without compaction one live page would pin 8 MiB.
const compactBelow = 0.5

// Sweep deletes every blob not reachable from the live roots and returns the
// bytes reclaimed. Packs with no live piece are deleted; packs less than
// half live have their live pieces copied into new packs (durably, before
// the old pack goes). Packs younger than the grace period are left alone
// and their roots count as live, which keeps a capture whose root the
// caller has not recorded yet. It waits for captures in progress, and
// captures wait for it, so it never deletes a piece a capture reuses.
//
// A live root that cannot be read in full is an error and nothing is
// deleted: its missing pieces might still be found in a pack that failed to
// load, and deleting on a partial mark could lose them for good.
func (s *Store) Sweep(ctx context.Context, liveRoots []string) (reclaimed int64, err error) {
	if err := s.ensureLoaded(ctx); err != nil {
		return 0, err
	}
	s.gc.Lock()
	defer s.gc.Unlock()

	s.mu.RLock()
	now, grace := s.now(), s.grace
	young := make(map[uint32]bool)
	for id, p := range s.packs {
		if now.Sub(p.created) < grace {
			young[id] = true
		}
	}
	roots := slices.Clone(liveRoots)
	for h, l := range s.index {
		if l.kind == KindRoot && young[l.pack] {
			roots = append(roots, RootString(h))
		}
	}
	s.mu.RUnlock()

	live := make(map[[32]byte]struct{})
	for _, root := range roots {
		if err := s.mark(ctx, root, live); err != nil {
			return 0, fmt.Errorf("sweep: mark live snapshot %s: %w", root, err)
		}
	}

	// Decide per pack from the live bytes indexed in it; a duplicate copy
	// of a piece indexed elsewhere counts as dead.
	s.mu.RLock()
	var moving [][32]byte
	var movingKinds []Kind
	var drop []uint32
	var compact map[uint32]bool
	for {
		drop, compact = s.decideLocked(live, young)
		// A delta that stays in the store, live or not, keeps its base:
		// it stays indexed (and is indexed again at the next Open), so a
		// later capture may reuse it, and its page must still rebuild.
		dropped := make(map[uint32]bool, len(drop))
		for _, id := range drop {
			dropped[id] = true
		}
		grew := false
		for h, b := range s.bases {
			l := s.index[h]
			_, isLive := live[h]
			if (dropped[l.pack] && !(compact[l.pack] && isLive)) || hasKey(live, b) {
				continue
			}
			if err := s.markBasesLocked(b, live); err != nil {
				s.mu.RUnlock()
				return 0, fmt.Errorf("sweep: %w", err)
			}
			grew = true
		}
		if !grew {
			break
		}
	}
	if len(compact) > 0 {
		for h, l := range s.index {
			if _, ok := live[h]; ok && compact[l.pack] {
				moving = append(moving, h)
				movingKinds = append(movingKinds, l.kind)
			}
		}
	}
	s.mu.RUnlock()

	written, err := s.copyPieces(ctx, moving, movingKinds)
	if err != nil {
		return 0, fmt.Errorf("sweep: compact packs: %w", err)
	}
	reclaimed -= written

	// Forget the dropped packs before deleting them, so no reader is sent
	// to a pack that is going away.
	s.mu.Lock()
	dropping := make(map[uint32]bool, len(drop))
	var keys []string
	for _, id := range drop {
		dropping[id] = true
		keys = append(keys, s.packs[id].key)
		reclaimed += s.packs[id].size
	}
	for h, l := range s.index {
		if dropping[l.pack] {
			delete(s.index, h)
			delete(s.bases, h)
		}
	}
	for _, id := range drop {
		delete(s.packs, id)
	}
	s.mu.Unlock()

	for _, key := range keys {
		fault("sweep:before-delete")
		if err := s.blobs.Delete(ctx, key); err != nil {
			return reclaimed, fmt.Errorf("sweep: %w", err)
		}
	}
	s.logger.Info("snapshot store swept", "live_roots", len(liveRoots), "deleted_packs", len(keys),
		"compacted_pieces", len(moving), "reclaimed_bytes", reclaimed)
	return reclaimed, nil
}

// decideLocked returns the packs to drop, and which of those to compact
// first, given the live pieces; s.mu is held.
func (s *Store) decideLocked(live map[[32]byte]struct{}, young map[uint32]bool) (drop []uint32, compact map[uint32]bool) {
	liveBytes := make(map[uint32]int64)
	for h, l := range s.index {
		if _, ok := live[h]; ok {
			liveBytes[l.pack] += int64(l.n)
		}
	}
	compact = make(map[uint32]bool)
	for id, p := range s.packs {
		if young[id] {
			continue
		}
		switch lb := liveBytes[id]; {
		case lb == 0:
			drop = append(drop, id)
		case float64(lb) < compactBelow*float64(p.pieces):
			compact[id] = true
			drop = append(drop, id)
		}
	}
	return drop, compact
}

// markBasesLocked marks h live and, if it is a delta, its chain of bases;
// s.mu is held (shared is enough). A base missing from the index is an
// error, as a missing page is.
func (s *Store) markBasesLocked(h [32]byte, live map[[32]byte]struct{}) error {
	for range maxDeltaDepth + 2 {
		if _, ok := s.index[h]; !ok {
			return &snapdeck.Error{Code: snapdeck.NotFound, Message: fmt.Sprintf("snapshot data is missing: delta base %x", h[:8])}
		}
		live[h] = struct{}{}
		b, ok := s.bases[h]
		if !ok || hasKey(live, b) {
			return nil
		}
		h = b
	}
	return &snapdeck.Error{Code: snapdeck.Internal, Message: fmt.Sprintf("snapshot data is corrupt: piece %x", h[:8]), Err: errDeltaChain}
}

func hasKey(m map[[32]byte]struct{}, h [32]byte) bool {
	_, ok := m[h]
	return ok
}

// mark adds every piece reachable from root to live. A node already marked
// is not read again: its subtree is marked, which is what makes marking
// 2,160 snapshots that share most nodes cheap.
func (s *Store) mark(ctx context.Context, root string, live map[[32]byte]struct{}) error {
	h, err := ParseRoot(root)
	if err != nil {
		return err
	}
	if _, ok := live[h]; ok {
		return nil
	}
	_, depth, top, err := s.rootOf(ctx, h)
	if err != nil {
		return err
	}
	live[h] = struct{}{}
	level, nodes := depth, top
	for len(nodes) > 0 {
		var unseen [][32]byte
		for _, n := range nodes {
			if _, ok := live[n]; !ok {
				unseen = append(unseen, n)
			}
		}
		var next [][32]byte
		for start := 0; start < len(unseen); start += 1024 {
			chunk := unseen[start:min(start+1024, len(unseen))]
			pieces, err := s.readPieces(ctx, chunk, nil)
			if err != nil {
				return err
			}
			for i, p := range pieces {
				children, err := decodeNode(p, level)
				if err != nil {
					return err
				}
				live[chunk[i]] = struct{}{}
				if level > 1 {
					next = append(next, children...)
					continue
				}
				s.mu.RLock()
				for _, c := range children {
					if hasKey(live, c) {
						continue
					}
					// A live delta makes its base live.
					if err := s.markBasesLocked(c, live); err != nil {
						s.mu.RUnlock()
						return err
					}
				}
				s.mu.RUnlock()
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		level--
		nodes = next
	}
	return nil
}

// copyPieces writes the given pieces into new packs, durably, and points
// the index at the copies. It returns the bytes written.
func (s *Store) copyPieces(ctx context.Context, hashes [][32]byte, kinds []Kind) (int64, error) {
	var written int64
	var cur packBuf
	flush := func() error {
		if len(cur.entries) == 0 {
			return nil
		}
		entries := cur.entries
		data := cur.seal()
		key := newPackKey(s.now())
		if err := s.blobs.Put(ctx, key, data); err != nil {
			return err
		}
		fault("sweep:compacted-pack-written")
		s.mu.Lock()
		created, _ := packTime(key)
		id := s.nextPack
		s.nextPack++
		p := &pack{key: key, created: created, size: int64(len(data))}
		s.packs[id] = p
		for _, e := range entries {
			p.pieces += int64(e.n)
			s.index[e.hash] = loc{pack: id, off: e.off, n: e.n, kind: e.kind}
		}
		s.mu.Unlock()
		written += int64(len(data))
		cur = packBuf{}
		return nil
	}
	const batch = 256
	for start := 0; start < len(hashes); start += batch {
		end := min(start+batch, len(hashes))
		// Copy deltas as they are stored, after checking that each still
		// rebuilds its page.
		pieces, _, err := s.readRaw(ctx, hashes[start:end], true, nil)
		if err != nil {
			return written, err
		}
		check := slices.Clone(pieces)
		if err := s.resolveDeltas(ctx, hashes[start:end], check, kinds[start:end], maxDeltaDepth, true, nil); err != nil {
			return written, err
		}
		s.mu.RLock()
		for i, p := range pieces {
			e := entry{hash: hashes[start+i], kind: kinds[start+i]}
			if isDelta(e.kind) {
				e.base = s.bases[e.hash]
			}
			cur.addEntry(e, p)
		}
		s.mu.RUnlock()
		if len(cur.data) >= packTarget {
			if err := flush(); err != nil {
				return written, err
			}
		}
	}
	return written, flush()
}
