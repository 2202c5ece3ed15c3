package snapstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// A snapshot image is a tree of pieces. Leaves list the hashes of up to
// leafFanout consecutive pages, inner nodes the hashes of up to
// innerFanout nodes of the level below, and the root holds the manifest and
// the hashes of the top level. Node boundaries sit at fixed page numbers, so
// an unchanged run of pages yields byte-identical nodes that are stored
// once: a capture after a small change writes the changed pages plus one
// leaf and one inner node per level for each, not a new page list.
//
// Leaves are small (32 pages, 1 KiB) because a changed page rewrites its
// whole leaf; with 1% of pages changed at random, about a quarter of the
// leaves change.
const (
	leafFanout  = 32
	innerFanout = 128
	rootMagic   = "SDROOT1\n"
	nodeLeaf    = 'L'
	nodeInner   = 'I'
)

// Manifest is what a root records about its image.
type Manifest struct {
	PageSize int
	Pages    int64
	Size     int64    // bytes of the image: PageSize × Pages
	SHA256   [32]byte // of the whole image
}

func encodeRoot(m Manifest, depth int, top [][32]byte) []byte {
	b := make([]byte, 0, len(rootMagic)+4+8+8+32+1+4+32*len(top))
	b = append(b, rootMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.PageSize))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Pages))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = append(b, m.SHA256[:]...)
	b = append(b, byte(depth))
	b = binary.BigEndian.AppendUint32(b, uint32(len(top)))
	for _, h := range top {
		b = append(b, h[:]...)
	}
	return b
}

func decodeRoot(b []byte) (m Manifest, depth int, top [][32]byte, err error) {
	const head = len(rootMagic) + 4 + 8 + 8 + 32 + 1 + 4
	if len(b) < head || string(b[:len(rootMagic)]) != rootMagic {
		return m, 0, nil, errors.New("not a snapshot root")
	}
	p := b[len(rootMagic):]
	m.PageSize = int(binary.BigEndian.Uint32(p))
	m.Pages = int64(binary.BigEndian.Uint64(p[4:]))
	m.Size = int64(binary.BigEndian.Uint64(p[12:]))
	copy(m.SHA256[:], p[20:52])
	depth = int(p[52])
	n := int(binary.BigEndian.Uint32(p[53:]))
	if len(b) != head+32*n || depth < 1 || n > innerFanout {
		return m, 0, nil, errors.New("malformed snapshot root")
	}
	return m, depth, splitHashes(b[head:]), nil
}

func encodeNode(kind byte, level int, hashes [][32]byte) []byte {
	b := make([]byte, 0, 2+32*len(hashes))
	b = append(b, kind, byte(level))
	for _, h := range hashes {
		b = append(b, h[:]...)
	}
	return b
}

func decodeNode(b []byte, level int) ([][32]byte, error) {
	want := byte(nodeInner)
	if level == 1 {
		want = nodeLeaf
	}
	if len(b) < 2 || b[0] != want || int(b[1]) != level || (len(b)-2)%32 != 0 {
		return nil, fmt.Errorf("malformed snapshot tree node at level %d", level)
	}
	return splitHashes(b[2:]), nil
}

func splitHashes(b []byte) [][32]byte {
	hs := make([][32]byte, len(b)/32)
	for i := range hs {
		copy(hs[i][:], b[i*32:])
	}
	return hs
}

// treeBuilder turns a stream of page hashes into nodes, level by level.
// levels[0] holds page hashes not yet in a leaf, levels[i] hashes of
// level-i nodes not yet in a parent.
type treeBuilder struct {
	levels [][][32]byte
	emit   func(data []byte) ([32]byte, error)
}

func fanout(level int) int {
	if level == 0 {
		return leafFanout
	}
	return innerFanout
}

func (t *treeBuilder) add(level int, h [32]byte) error {
	for len(t.levels) <= level {
		t.levels = append(t.levels, nil)
	}
	t.levels[level] = append(t.levels[level], h)
	if len(t.levels[level]) == fanout(level) {
		return t.flush(level)
	}
	return nil
}

// flush writes the node holding levels[level] and passes its hash up.
func (t *treeBuilder) flush(level int) error {
	kind := byte(nodeInner)
	if level == 0 {
		kind = nodeLeaf
	}
	h, err := t.emit(encodeNode(kind, level+1, t.levels[level]))
	if err != nil {
		return err
	}
	t.levels[level] = t.levels[level][:0]
	return t.add(level+1, h)
}

// finish flushes partial nodes and returns the depth of the tree and the
// hashes the root lists.
func (t *treeBuilder) finish() (int, [][32]byte, error) {
	if len(t.levels) == 0 {
		return 1, nil, nil // an empty image: a root with no leaves
	}
	for level := 0; ; level++ {
		higher := len(t.levels) > level+1
		if level >= 1 && !higher && len(t.levels[level]) <= innerFanout {
			return level, t.levels[level], nil
		}
		if len(t.levels[level]) > 0 {
			if err := t.flush(level); err != nil {
				return 0, nil, err
			}
		}
	}
}

// ReadManifest returns the manifest recorded in root.
func (s *Store) ReadManifest(ctx context.Context, root string) (Manifest, error) {
	m, _, _, err := s.readRoot(ctx, root)
	return m, err
}

func (s *Store) readRoot(ctx context.Context, root string) (Manifest, int, [][32]byte, error) {
	h, err := ParseRoot(root)
	if err != nil {
		return Manifest{}, 0, nil, err
	}
	if err := s.ensureLoaded(ctx); err != nil {
		return Manifest{}, 0, nil, err
	}
	s.gc.RLock()
	m, depth, top, err := s.rootOf(ctx, h)
	s.gc.RUnlock()
	if snapdeck.ErrorCode(err) == snapdeck.NotFound {
		return Manifest{}, 0, nil, &snapdeck.Error{Code: snapdeck.NotFound, Message: "snapshot " + root + " is not in the snapshot store", Err: err}
	}
	return m, depth, top, err
}

// rootOf reads and decodes the root piece h: the manifest, the depth of
// the tree and its top nodes. The caller holds s.gc (a capture or a read
// shared, Sweep exclusively).
func (s *Store) rootOf(ctx context.Context, h [32]byte) (Manifest, int, [][32]byte, error) {
	pieces, err := s.readPieces(ctx, [][32]byte{h}, nil)
	if err != nil {
		return Manifest{}, 0, nil, err
	}
	m, depth, top, err := decodeRoot(pieces[0])
	if err != nil {
		return Manifest{}, 0, nil, fmt.Errorf("read snapshot root %x: %w", h, err)
	}
	return m, depth, top, nil
}

// readBatchBytes is how many bytes of pages ReadImage hands over at once:
// 1 MiB, since restore writes of 1 MiB run about twice as fast as 4 KiB
// ones.
const readBatchBytes = 1 << 20

// Check says what ReadImage checks besides every page's hash.
type Check int

const (
	// CheckPages checks every page against its hash, and through the
	// tree of page lists, each itself checked against its hash, against
	// the root: a page that differs in any bit, or stands at the wrong
	// place, is an error. Restore reads this way, and export, whose
	// writer hashes the whole image itself.
	CheckPages Check = iota
	// CheckPagesAndSum also hashes the whole image and compares it with
	// the SHA-256 that the capture recorded from the database's own pages,
	// which checks the capture itself, not only the store: verification
	// reads this way. It costs a second SHA-256 pass.
	CheckPagesAndSum
)

// ReadImage reads the image under root in page order and calls fn with
// consecutive runs of whole pages, about 1 MiB at a time; the slice is
// reused once fn returns, so fn must not keep it. What is checked is set
// by check; a mismatch is reported as an error, after fn has seen the data,
// so callers must discard what they wrote on error. Once ctx is cancelled,
// fn is not called again, batches not yet read are not read, and the call
// returns ctx's error (or nil, if fn had already seen the whole image).
func (s *Store) ReadImage(ctx context.Context, root string, check Check, fn func(data []byte) error) error {
	return s.ReadImagePages(ctx, root, check, func(p Pages) error {
		defer p.Release()
		return fn(p.Data)
	})
}

// Pages is a run of whole pages that ReadImagePages hands over. Data stays
// valid until Release, which the receiver calls exactly once, when it is
// done with it: possibly after its callback has returned, and from any
// goroutine. A restore hands runs to writes still in flight this way,
// without copying them.
type Pages struct {
	Data []byte
	sc   *scratch
}

// Release gives the run's buffers back for the next runs.
func (p Pages) Release() { p.sc.release() }

// ReadImagePages is ReadImage with runs of pages the callback may keep
// until it releases them.
//
// Checking page hashes costs as much CPU as hashing the image, so batches
// are read and checked by one worker per core, a few batches ahead, while
// this goroutine (hashes the image and) calls fn in order.
func (s *Store) ReadImagePages(ctx context.Context, root string, check Check, fn func(p Pages) error) error {
	m, depth, top, err := s.readRoot(ctx, root)
	if err != nil {
		return err
	}
	if m.PageSize <= 0 {
		if m.Pages == 0 {
			return nil
		}
		return fmt.Errorf("snapshot root %s: page size %d", root, m.PageSize)
	}
	ctx, cancel := context.WithCancel(OnePass(ctx))
	defer cancel()
	type result struct {
		data []byte
		sc   *scratch // data's buffers, released by fn's receiver
		err  error
	}
	type job struct {
		hashes [][32]byte
		first  int64 // the page number of hashes[0], from 0
		out    chan result
	}
	workers := max(2, runtime.GOMAXPROCS(0))
	if _, remote := s.blobs.(RangesGetter); remote {
		// Each batch waits on round trips, not on a core.
		workers = max(workers, remoteReaders)
	}
	jobs := make(chan job)
	order := make(chan chan result, 2*workers) // results in page order
	var wg sync.WaitGroup
	defer wg.Wait() // no worker outlives the call
	defer cancel()  // runs first: unblocks the walk and the workers
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := ctx.Err(); err != nil {
					// Cancelled: nobody will use the batch, so it is
					// not read (out has room for the error).
					j.out <- result{err: err}
					continue
				}
				sc := new(scratch)
				data, err := s.readPages(WithReadOrder(ctx, j.first), j.hashes, m.PageSize, sc)
				j.out <- result{data, sc, err}
			}
		}()
	}
	var walkErr error
	var handed int64 // pages handed to the workers
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		walkErr = s.walkPages(ctx, depth, top, max(1, readBatchBytes/m.PageSize), func(hashes [][32]byte) error {
			// Checked first: a select with both cases ready picks
			// either, and would queue more batches after a cancel.
			if err := ctx.Err(); err != nil {
				return err
			}
			j := job{hashes: hashes, first: handed, out: make(chan result, 1)}
			handed += int64(len(hashes))
			select {
			case order <- j.out:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- j:
				return nil
			case <-ctx.Done():
				// j.out is queued already and no worker will fill it:
				// the reader below waits for every queued result, so
				// this one must come from here (out has room for it).
				j.out <- result{err: ctx.Err()}
				return ctx.Err()
			}
		})
	}()

	image := sha256.New()
	var size int64
	for out := range order {
		r := <-out
		if r.err == nil && ctx.Err() != nil {
			// Cancelled (by the caller, or by fn itself): batches
			// read ahead are dropped, not handed over.
			r.sc.release()
			r.err = ctx.Err()
		}
		if r.err != nil {
			return fmt.Errorf("snapshot %s: %w", root, r.err)
		}
		if check == CheckPagesAndSum {
			image.Write(r.data)
		}
		size += int64(len(r.data))
		if err := fn(Pages{Data: r.data, sc: r.sc}); err != nil {
			return err
		}
	}
	// order is closed: the walk has ended and walkErr is set.
	if walkErr != nil {
		return fmt.Errorf("snapshot %s: %w", root, walkErr)
	}
	if pages := size / int64(m.PageSize); pages != m.Pages {
		return fmt.Errorf("snapshot %s lists %d pages, want %d", root, pages, m.Pages)
	}
	if check != CheckPagesAndSum {
		return nil
	}
	var sum [32]byte
	image.Sum(sum[:0])
	if sum != m.SHA256 {
		return &snapdeck.Error{Code: snapdeck.Internal, Message: fmt.Sprintf("snapshot %s is corrupt: image SHA-256 %x, want %x", root, sum, m.SHA256)}
	}
	return nil
}

// readPages returns the pages with the given hashes back to back, each
// checked against its hash and its size, in buffers from sc.
func (s *Store) readPages(ctx context.Context, hashes [][32]byte, pageSize int, sc *scratch) ([]byte, error) {
	if _, remote := s.blobs.(RangesGetter); remote {
		s.gc.RLock()
		defer s.gc.RUnlock()
		return s.readPagesInto(ctx, hashes, pageSize, sc)
	}
	s.gc.RLock()
	pieces, err := s.readPieces(ctx, hashes, sc)
	s.gc.RUnlock()
	if err != nil {
		return nil, err
	}
	for _, p := range pieces {
		if len(p) != pageSize {
			return nil, fmt.Errorf("page of %d bytes, want %d", len(p), pageSize)
		}
	}
	if buf, ok := adjacent(pieces, pageSize); ok {
		return buf, nil // the common case: one range read holds the run
	}
	buf := sc.get(len(hashes) * pageSize)[:0]
	for _, p := range pieces {
		buf = append(buf, p...)
	}
	return buf, nil
}

// adjacent returns the pages as one slice when they already lie back to
// back in one buffer, as pages written in order by one capture do, which
// saves copying every page of a restore once more.
func adjacent(pieces [][]byte, pageSize int) ([]byte, bool) {
	if len(pieces) == 0 || cap(pieces[0]) < len(pieces)*pageSize {
		return nil, false
	}
	n := len(pieces) * pageSize
	whole := pieces[0][:n:n]
	for i, p := range pieces {
		if &whole[i*pageSize] != &p[0] {
			return nil, false
		}
	}
	return whole, true
}

// walkPages walks the tree below the root's top nodes and calls fn with
// the page hashes in page order, perBatch at a time (the last batch may be
// shorter). fn owns the slice it is given.
func (s *Store) walkPages(ctx context.Context, depth int, top [][32]byte, perBatch int, fn func(hashes [][32]byte) error) error {
	var pending [][32]byte
	var handed int64 // pages handed to fn
	var walk func(level int, nodes [][32]byte) error
	walk = func(level int, nodes [][32]byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Inner nodes above the leaves are read alone (Sparse): the
		// prefetcher below fetches the packs of the pages, in order.
		rctx := ctx
		if level >= 2 {
			rctx = Sparse(ctx)
		}
		s.gc.RLock()
		pieces, err := s.readPieces(rctx, nodes, nil)
		s.gc.RUnlock()
		if err != nil {
			return err
		}
		var pre *prefetcher
		if level == 2 {
			pre = newPrefetcher(ctx, s, len(pieces))
			defer pre.wait()
		}
		for i, p := range pieces {
			// Node i's first page is the next one; the nodes after it
			// (level 2) hold innerFanout leaves each.
			next := handed + int64(len(pending))
			pre.reach(i, func(j int) ([][32]byte, int64, error) {
				hashes, err := decodeNode(pieces[j], level)
				return hashes, next + int64(j-i)*innerFanout*leafFanout, err
			})
			children, err := decodeNode(p, level)
			if err != nil {
				return err
			}
			if level > 1 {
				if err := walk(level-1, children); err != nil {
					return err
				}
				continue
			}
			pending = append(pending, children...)
			for len(pending) >= perBatch {
				if err := fn(pending[:perBatch:perBatch]); err != nil {
					return err
				}
				pending = pending[perBatch:]
				handed += int64(perBatch)
			}
		}
		return nil
	}
	if len(top) > 0 {
		if err := walk(depth, top); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		return fn(pending)
	}
	return nil
}

// RootString formats a root hash the way Capture returns it.
func RootString(h [32]byte) string { return hex.EncodeToString(h[:]) }

// readPagesInto is readPages for blobs that read ranges themselves
// (RangesGetter): the runs of pages that lie back to back in a pack are
// read straight into their place in the batch's buffer, one range each,
// rather than a range with the tree leaves between them into a buffer of
// its own and then copied into the batch (a leaf lies every 32 pages, so
// hardly a batch was one run, and a cold restore from S3 copied every
// page twice after it arrived). Pieces stored otherwise (deltas) are read
// in the same call and rebuilt as readPieces does. The caller holds s.gc
// shared.
func (s *Store) readPagesInto(ctx context.Context, hashes [][32]byte, pageSize int, sc *scratch) ([]byte, error) {
	locs := make([]loc, len(hashes))
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, errClosed
	}
	keys := make(map[uint32]string)
	for i, h := range hashes {
		l, ok := s.index[h]
		if !ok {
			s.mu.RUnlock()
			return nil, &snapdeck.Error{Code: snapdeck.NotFound, Message: fmt.Sprintf("snapshot data is missing: piece %x is not in the store", h[:8])}
		}
		locs[i] = l
		keys[l.pack] = s.packs[l.pack].key
	}
	s.mu.RUnlock()

	buf := sc.get(len(hashes) * pageSize)
	isPage := func(l loc) bool { return l.kind == KindPage && int(l.n) == pageSize }
	var ranges []Range
	var at []int    // the batch position of each range of pages
	var other []int // batch positions of the pieces that are not plain pages
	for i := 0; i < len(hashes); {
		l := locs[i]
		if !isPage(l) {
			other = append(other, i)
			i++
			continue
		}
		j := i + 1
		for j < len(hashes) && isPage(locs[j]) && locs[j].pack == l.pack && locs[j].off == locs[j-1].off+uint32(pageSize) {
			j++
		}
		ranges = append(ranges, Range{Key: keys[l.pack], Off: int64(l.off), Buf: buf[i*pageSize : j*pageSize]})
		at = append(at, i)
		i = j
	}
	pages := len(ranges)
	for _, i := range other {
		ranges = append(ranges, Range{Key: keys[locs[i].pack], Off: int64(locs[i].off), Buf: sc.get(int(locs[i].n))})
	}
	if err := s.blobs.(RangesGetter).GetRanges(ctx, ranges); err != nil {
		return nil, fmt.Errorf("read snapshot data: %w", err)
	}
	corrupt := func(i int, key string) error {
		return &snapdeck.Error{Code: snapdeck.Internal,
			Message: fmt.Sprintf("snapshot data is corrupt: piece %x in %s does not match its hash", hashes[i][:8], key)}
	}
	for ri, r := range ranges[:pages] {
		for k := range len(r.Buf) / pageSize {
			if sha256.Sum256(r.Buf[k*pageSize:(k+1)*pageSize]) != hashes[at[ri]+k] {
				return nil, corrupt(at[ri]+k, r.Key)
			}
		}
	}
	if len(other) == 0 {
		return buf, nil
	}
	oh := make([][32]byte, len(other))
	pieces := make([][]byte, len(other))
	kinds := make([]Kind, len(other))
	for k, i := range other {
		oh[k], pieces[k], kinds[k] = hashes[i], ranges[pages+k].Buf, locs[i].kind
		if !isDelta(kinds[k]) && sha256.Sum256(pieces[k]) != hashes[i] {
			return nil, corrupt(i, ranges[pages+k].Key)
		}
	}
	if err := s.resolveDeltas(ctx, oh, pieces, kinds, maxDeltaDepth, true, sc); err != nil {
		return nil, err
	}
	for k, i := range other {
		if len(pieces[k]) != pageSize {
			return nil, fmt.Errorf("page of %d bytes, want %d", len(pieces[k]), pageSize)
		}
		copy(buf[i*pageSize:], pieces[k])
	}
	return buf, nil
}
