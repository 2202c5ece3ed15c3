package snapstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// FaultHook, when set, is called at named points of writing and sweeping
// (see the calls to fault). Crash tests set it in a child process to kill
// it at exactly that point; it is nil in production.
var FaultHook func(point string)

func fault(point string) {
	if FaultHook != nil {
		FaultHook(point)
	}
}

// DefaultGrace is how long Sweep leaves a new pack alone. A capture's root
// is durable before the caller records it as live; during this window the
// roots in young packs count as live, so a sweep that runs between the
// capture returning and the caller saving the root keeps all of its data.
const DefaultGrace = time.Hour

// Store is a deduplicated store of snapshot images on top of Blobs. It keeps
// an in-memory index from piece hash to its place in a pack (about 60 bytes
// per distinct piece: 15 MiB for a 1 GiB database of 4 KiB pages), loaded
// from the packs' own indexes at Open. It is safe for concurrent use.
type Store struct {
	blobs  Blobs
	own    *Local // the blobs Open made, which Close closes
	logger *slog.Logger
	now    func() time.Time
	grace  time.Duration

	// gc orders writers against Sweep: captures hold it shared from their
	// first dedup decision until their root is durable, so Sweep never
	// deletes a piece a capture has decided to reuse; reads hold it shared
	// per batch, so a pack is never deleted under a reader.
	gc sync.RWMutex

	mu       sync.RWMutex // guards the fields below
	loaded   bool
	closed   bool
	index    map[[32]byte]loc
	bases    map[[32]byte][32]byte // of every indexed delta: the page it applies to
	packs    map[uint32]*pack
	nextPack uint32
}

// loc is where a piece lives.
type loc struct {
	pack uint32
	off  uint32
	n    uint32
	kind Kind
}

type pack struct {
	key     string
	created time.Time
	size    int64 // bytes of the whole blob
	pieces  int64 // bytes of the pieces in it, live or not
}

// Open opens the snapshot store kept on the local filesystem under dir,
// creating it if needed, and loads its index.
func Open(ctx context.Context, dir string, logger *slog.Logger) (*Store, error) {
	local, err := NewLocal(dir)
	if err != nil {
		return nil, err
	}
	s := New(local, logger)
	s.own = local
	if err := s.load(ctx); err != nil {
		local.Close()
		return nil, err
	}
	return s, nil
}

// OpenBlobs returns a Store on blobs with its index loaded, so that an
// unreachable or unreadable store is an error at once.
func OpenBlobs(ctx context.Context, blobs Blobs, logger *slog.Logger) (*Store, error) {
	s := New(blobs, logger)
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// New returns a Store on blobs. Its index is loaded on first use; call Open
// for the local store to have loading errors at once.
func New(blobs Blobs, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		blobs:  blobs,
		logger: logger,
		now:    time.Now,
		grace:  DefaultGrace,
		index:  make(map[[32]byte]loc),
		bases:  make(map[[32]byte][32]byte),
		packs:  make(map[uint32]*pack),
	}
}

// Blobs returns where the store keeps its blobs, for the other files that
// follow the snapshots to the same storage (point-in-time replication's,
// under their own prefix, which the store's sweep never touches: it only
// deletes packs).
func (s *Store) Blobs() Blobs { return s.blobs }

// SetGrace changes how long Sweep leaves new packs and their roots alone
// (DefaultGrace unless set). Tests and tools that know no capture is
// unrecorded may set it to zero.
func (s *Store) SetGrace(d time.Duration) {
	s.mu.Lock()
	s.grace = d
	s.mu.Unlock()
}

// Close waits for captures and sweeps in progress and then refuses further
// use. It closes the local blobs Open made (their open files); blobs passed
// to OpenBlobs or New stay the caller's to close.
func (s *Store) Close(ctx context.Context) error {
	s.gc.Lock()
	defer s.gc.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.own != nil {
		s.own.Close()
	}
	s.closed = true
	s.index = nil
	s.bases = nil
	s.packs = nil
	return nil
}

var errClosed = snapdeck.Errorf(snapdeck.Internal, "the snapshot store is closed")

// load reads every pack's index. A pack whose index cannot be read is
// logged loudly and left alone: its pieces count as missing, so roots that
// need them fail verification instead of being silently rebuilt wrong.
func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.loaded {
		return nil
	}
	var keys []string
	err := s.blobs.List(ctx, func(key string) error {
		if strings.HasPrefix(key, packKeyPrefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list snapshot store: %w", err)
	}
	slices.Sort(keys) // oldest first, so a duplicate piece resolves to its first copy
	type index struct {
		entries []entry
		size    int64
		err     error
	}
	indexes := make([]index, len(keys))
	// On a remote store each index is a round trip: a new node opening
	// 263 packs one after the other waited on each.
	workers := 1
	if _, remote := s.blobs.(RangesGetter); remote {
		workers = remoteReaders
	}
	var g errgroup.Group
	g.SetLimit(workers)
	for i, key := range keys {
		g.Go(func() error {
			ix := &indexes[i]
			ix.entries, ix.size, ix.err = s.readPackIndex(ctx, key)
			return nil // each pack's error is its own (below)
		})
	}
	g.Wait()
	for i, key := range keys {
		if err := indexes[i].err; err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.logger.Error("snapshot store: unreadable pack left alone", "pack", key, "err", err)
			continue
		}
		s.registerLocked(key, indexes[i].size, indexes[i].entries)
	}
	s.loaded = true
	s.logger.Debug("snapshot store loaded", "packs", len(s.packs), "pieces", len(s.index))
	return nil
}

func (s *Store) ensureLoaded(ctx context.Context) error {
	s.mu.RLock()
	loaded, closed := s.loaded, s.closed
	s.mu.RUnlock()
	if closed {
		return errClosed
	}
	if loaded {
		return nil
	}
	return s.load(ctx)
}

func (s *Store) readPackIndex(ctx context.Context, key string) ([]entry, int64, error) {
	foot, err := s.getRange(ctx, key, -footerSize, footerSize, nil)
	if err != nil {
		return nil, 0, err
	}
	indexOff, count, crc, indexLen, err := parseFooter(foot)
	if err != nil {
		return nil, 0, err
	}
	raw, err := s.getRange(ctx, key, indexOff, indexLen, nil)
	if err != nil {
		return nil, 0, err
	}
	entries, err := parseIndex(raw, count, crc)
	if err != nil {
		return nil, 0, err
	}
	return entries, indexOff + int64(indexLen) + footerLen(foot), nil
}

// registerLocked adds a durable pack to the index; s.mu is held.
func (s *Store) registerLocked(key string, size int64, entries []entry) {
	created, _ := packTime(key)
	id := s.nextPack
	s.nextPack++
	p := &pack{key: key, created: created, size: size}
	s.packs[id] = p
	for _, e := range entries {
		p.pieces += int64(e.n)
		if _, ok := s.index[e.hash]; !ok {
			s.index[e.hash] = loc{pack: id, off: e.off, n: e.n, kind: e.kind}
			if isDelta(e.kind) {
				s.bases[e.hash] = e.base
			}
		}
	}
}

func (s *Store) register(key string, size int64, entries []entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.registerLocked(key, size, entries)
	}
}

// getRange reads n bytes of the blob under key at off (off < 0: from its
// end), into a buffer from sc if sc is not nil.
func (s *Store) getRange(ctx context.Context, key string, off int64, n int, sc *scratch) ([]byte, error) {
	if rg, ok := s.blobs.(RangeGetter); ok {
		buf := sc.get(n)
		if err := rg.GetRange(ctx, key, off, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	data, err := s.blobs.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		off += int64(len(data))
	}
	if off < 0 || off+int64(n) > int64(len(data)) {
		return nil, fmt.Errorf("get blob %s: range [%d, +%d) beyond its %d bytes", key, off, n, len(data))
	}
	return data[off : off+int64(n)], nil
}

// has reports whether a durable piece with hash h is stored.
func (s *Store) has(h [32]byte) bool {
	s.mu.RLock()
	_, ok := s.index[h]
	s.mu.RUnlock()
	return ok
}

// maxRange caps one range read, and maxGap is how far apart two wanted
// pieces of one pack may be and still be read together: reading a few
// unwanted KiB is cheaper than another round trip.
const (
	maxRange = 8 << 20
	maxGap   = 64 << 10
)

// readPieces returns the pieces with the given hashes, in that order, each
// checked against its hash; pages stored as deltas are rebuilt from their
// bases first. The pieces may lie in buffers from sc (which may be nil).
// The caller holds s.gc shared.
func (s *Store) readPieces(ctx context.Context, hashes [][32]byte, sc *scratch) ([][]byte, error) {
	pieces, kinds, err := s.readRaw(ctx, hashes, true, sc)
	if err != nil {
		return nil, err
	}
	if err := s.resolveDeltas(ctx, hashes, pieces, kinds, maxDeltaDepth, true, sc); err != nil {
		return nil, err
	}
	return pieces, nil
}

// readRaw returns the pieces with the given hashes as stored, and their
// kinds. With check, every piece but a delta is checked against its hash; a
// delta can only be checked once it is applied (resolveDeltas). Without,
// nothing is: for the bases of deltas, whose errors the check of the page
// they rebuild catches. The pieces may lie in buffers from sc.
func (s *Store) readRaw(ctx context.Context, hashes [][32]byte, check bool, sc *scratch) ([][]byte, []Kind, error) {
	type want struct {
		i   int
		loc loc
	}
	wants := make([]want, len(hashes))
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, nil, errClosed
	}
	for i, h := range hashes {
		l, ok := s.index[h]
		if !ok {
			s.mu.RUnlock()
			return nil, nil, &snapdeck.Error{Code: snapdeck.NotFound, Message: fmt.Sprintf("snapshot data is missing: piece %x is not in the store", h[:8])}
		}
		wants[i] = want{i: i, loc: l}
	}
	keys := make(map[uint32]string)
	for _, w := range wants {
		keys[w.loc.pack] = s.packs[w.loc.pack].key
	}
	s.mu.RUnlock()

	sorted := slices.Clone(wants)
	slices.SortFunc(sorted, func(a, b want) int {
		if a.loc.pack != b.loc.pack {
			return int(a.loc.pack) - int(b.loc.pack)
		}
		return int(a.loc.off) - int(b.loc.off)
	})
	// The runs of neighbouring pieces, each one range read, are read
	// together: a remote store reads them several at a time.
	type run struct{ start, end int }
	var runs []run
	var ranges []Range
	var lens []int
	for start := 0; start < len(sorted); {
		first := sorted[start].loc
		lo, hi := int64(first.off), int64(first.off)+int64(first.n)
		end := start + 1
		for end < len(sorted) {
			l := sorted[end].loc
			if l.pack != first.pack || int64(l.off) > hi+maxGap || int64(l.off)+int64(l.n)-lo > maxRange {
				break
			}
			hi = max(hi, int64(l.off)+int64(l.n))
			end++
		}
		runs = append(runs, run{start, end})
		ranges = append(ranges, Range{Key: keys[first.pack], Off: lo})
		lens = append(lens, int(hi-lo))
		start = end
	}
	if err := s.getRanges(ctx, ranges, lens, sc); err != nil {
		return nil, nil, fmt.Errorf("read snapshot data: %w", err)
	}
	out := make([][]byte, len(hashes))
	kinds := make([]Kind, len(hashes))
	for ri, r := range runs {
		buf, lo := ranges[ri].Buf, ranges[ri].Off
		for _, w := range sorted[r.start:r.end] {
			piece := buf[int64(w.loc.off)-lo : int64(w.loc.off)-lo+int64(w.loc.n)]
			kinds[w.i] = w.loc.kind
			if check && !isDelta(w.loc.kind) && sha256.Sum256(piece) != hashes[w.i] {
				return nil, nil, &snapdeck.Error{Code: snapdeck.Internal,
					Message: fmt.Sprintf("snapshot data is corrupt: piece %x in %s does not match its hash", hashes[w.i][:8], ranges[ri].Key)}
			}
			out[w.i] = piece
		}
	}
	return out, kinds, nil
}

// Stats returns how many blobs the store holds and their total size in
// bytes.
func (s *Store) Stats(ctx context.Context) (blobs int64, bytes int64, err error) {
	if err := s.ensureLoaded(ctx); err != nil {
		return 0, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.packs {
		blobs++
		bytes += p.size
	}
	return blobs, bytes, nil
}

// ParseRoot parses a root reference as Capture returns it.
func ParseRoot(root string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(root)
	if err != nil || len(b) != 32 {
		return h, &snapdeck.Error{Code: snapdeck.Invalid, Message: fmt.Sprintf("%q is not a snapshot root", root)}
	}
	copy(h[:], b)
	return h, nil
}
