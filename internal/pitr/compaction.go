package pitr

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// compactionLevels are the levels a replicated database's LTX files are
// compacted into, above level 0 (every read of the WAL). Each level
// rewrites every page changed since its last run once per interval, so a
// bulk write (a fill, or the whole file as the base after a swap) is
// written once per level: Litestream's default, 30 s, 5 min and
// 1 h, wrote it four times in the first hour. Level 0 stays for the whole
// window (Start), so the levels above only make restores apply fewer files
// and let level 0's retention go (it removes only files level 1 covers):
// with 30 s and 1 h a restore anywhere in a day's window applies at most a
// snapshot, 24 files of level 2, 120 of level 1 and 30 s of level 0.
var compactionLevels = litestream.CompactionLevels{
	{Level: 0},
	{Level: 1, Interval: 30 * time.Second},
	{Level: 2, Interval: time.Hour},
}

// DefaultCompactionRate is how fast compactions read and write, in bytes
// a second, unless Tuning says otherwise: a compaction of 1 GiB then takes
// about half a minute, writing at under a twentieth of the speed of the
// 2-core machine's disk (a cp+sync of 1 GiB takes 1.4 s there), with a
// small part of a core. Its file is still stored in one write at the end
// (Blobs.Put takes bytes): the pace spreads the reading and encoding, not
// that write.
const DefaultCompactionRate = 32 << 20

// snapshotCatchUp is how long after Start a replicator takes the snapshot
// it missed (its last one older than the last snapshot boundary, as after
// a stop across it), rather than at once: the swap or restart that started
// it is still busy with the disk.
const snapshotCatchUp = time.Minute

// compact runs database cur's compactions and snapshots until ctx ends:
// each level at its interval's boundaries, never at Start (Litestream's
// own monitors compact every level and snapshot at once when a database
// opens: after every swap and for every new database, the whole file
// written again into each level, on top of the level-0 read of it), one
// at a time across all databases (Replicators.background), compactions
// paced to Tuning.CompactionRate.
func (r *Replicators) compact(ctx context.Context, cur *replicator, logger *slog.Logger) {
	snapshots := cur.store.SnapshotLevel()
	levels := append(compactionLevels[1:len(compactionLevels):len(compactionLevels)], snapshots)
	now := time.Now()
	due := make([]time.Time, len(levels))
	for i, lvl := range levels {
		due[i] = lvl.NextCompactionAt(now)
	}
	if info, err := cur.db.MaxLTXFileInfo(ctx, litestream.SnapshotLevel); err == nil && info.MaxTXID != 0 &&
		info.CreatedAt.Before(snapshots.PrevCompactionAt(now)) {
		due[len(due)-1] = now.Add(min(snapshots.Interval, snapshotCatchUp))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := due[0]
		for _, at := range due[1:] {
			if at.Before(next) {
				next = at
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for i, lvl := range levels {
			if time.Now().Before(due[i]) {
				continue
			}
			r.compactLevel(ctx, cur, lvl, logger)
			if ctx.Err() != nil {
				return
			}
			due[i] = lvl.NextCompactionAt(time.Now())
		}
	}
}

// maxGiveWay is how long in all one compaction or snapshot gives way to
// the console's jobs (Config.Quiet) before it goes on beside them: a
// console busy with jobs without end still compacts, a little later, so
// that level 0 is pruned and restores plan few files. A minute is longer
// than any step of BenchmarkConsole at 1 GiB (docs/benchmarks.md), and
// short beside the 30 s and 1 h of compactionLevels' boundaries.
const maxGiveWay = time.Minute

// giveWay waits until no job of the console runs (Config.Quiet), for at
// most budget, and returns what is left of it. Compactions at a
// boundary (30 s at level 1) otherwise land in whatever step runs then:
// in set K (docs/benchmarks.md) the capture after 1% changed took 1.26-1.42
// × cp+sync replicated against 0.75-0.95 × not.
func (r *Replicators) giveWay(ctx context.Context, budget time.Duration) time.Duration {
	if r.cfg.Quiet == nil || budget <= 0 {
		return budget
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	r.cfg.Quiet.WaitQuiet(wctx)
	return budget - time.Since(start)
}

// giveWayFor is a compaction's wait for the console's jobs before each
// piece it reads (giveWay), out of budget in all; it returns how long it
// waited.
func (r *Replicators) giveWayFor(budget time.Duration) func(ctx context.Context) time.Duration {
	return func(ctx context.Context) time.Duration {
		left := r.giveWay(ctx, budget)
		waited := budget - left
		budget = left
		return waited
	}
}

// compactLevel runs one compaction (or snapshot) of cur into lvl, once no
// other database's runs and no job of the console runs (giveWay).
func (r *Replicators) compactLevel(ctx context.Context, cur *replicator, lvl *litestream.CompactionLevel, logger *slog.Logger) {
	budget := r.giveWay(ctx, maxGiveWay)
	select {
	case r.background <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-r.background }()
	// What a compaction reads (the level below, once) and writes (a file
	// as large as what changed, the database's size after a fill) passes
	// through the snapshot store's cache rather than pushing out of it
	// the packs of the latest snapshots, the next captures' bases
	// (snapstore.Passing).
	cctx := snapstore.Passing(ctx)
	// A snapshot is not paced: it holds off the database's checkpoints
	// (and so its reads of the WAL) while it reads the file.
	if lvl.Level != litestream.SnapshotLevel && r.cfg.Tuning.CompactionRate > 0 {
		cctx = context.WithValue(cctx, paceKey{}, pace{rate: r.cfg.Tuning.CompactionRate, giveWay: r.giveWayFor(budget)})
	}
	if lvl.Level != litestream.SnapshotLevel {
		cctx = context.WithValue(cctx, sizeKey{}, compactionInput(ctx, cur, lvl.Level))
	}
	start := time.Now()
	info, err := cur.store.CompactDB(cctx, cur.db, lvl)
	switch {
	case errors.Is(err, litestream.ErrNoCompaction), errors.Is(err, litestream.ErrCompactionTooEarly),
		errors.Is(err, litestream.ErrDBNotReady):
	case err != nil:
		if ctx.Err() == nil {
			logger.Error("point-in-time compaction", "level", lvl.Level, "err", err)
		}
	default:
		logger.Debug("point-in-time compaction written", "level", lvl.Level, "bytes", info.Size,
			"took", time.Since(start))
	}
	if lvl.Level == litestream.SnapshotLevel && ctx.Err() == nil {
		if err := cur.store.EnforceSnapshotRetention(ctx, cur.db); err != nil && ctx.Err() == nil {
			logger.Error("point-in-time snapshot retention", "err", err)
		}
	}
}

// compactionInput is how many bytes the next compaction into level
// reads: the files of the level below after the level's last; 0 when
// unknown.
func compactionInput(ctx context.Context, cur *replicator, level int) int64 {
	c, ok := cur.db.Replica.Client.(*Client)
	if !ok {
		return 0
	}
	last, err := cur.db.MaxLTXFileInfo(ctx, level)
	if err != nil {
		return 0
	}
	infos, _, err := c.list(ctx, level-1, last.MaxTXID+1)
	if err != nil {
		return 0
	}
	var n int64
	for _, info := range infos {
		n += info.Size
	}
	return n
}

// paceKey carries, in a compaction's context, its pace: how
// Client.WriteLTXFile reads the file it writes.
type paceKey struct{}

// pace is the rate in bytes a second of a compaction's reads, and what
// it waits for before each piece (Replicators.giveWay), returning how long
// it waited.
type pace struct {
	rate    int64
	giveWay func(ctx context.Context) time.Duration
}

// pacePiece is how much one read of a paced reader takes.
const pacePiece = 256 << 10

// pacedReader reads r no faster than rate bytes a second on average,
// time given way to the console's jobs not counted; the compaction
// writing into r waits meanwhile.
type pacedReader struct {
	ctx   context.Context
	r     io.Reader
	pace  pace
	start time.Time
	n     int64
}

// paced returns r read at the pace ctx carries, or r when it carries none.
func paced(ctx context.Context, r io.Reader) io.Reader {
	p, _ := ctx.Value(paceKey{}).(pace)
	if p.rate <= 0 {
		return r
	}
	return &pacedReader{ctx: ctx, r: r, pace: p, start: time.Now()}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if len(b) > pacePiece {
		b = b[:pacePiece]
	}
	if p.pace.giveWay != nil {
		p.start = p.start.Add(p.pace.giveWay(p.ctx))
	}
	// A compaction behind its pace never waits below, so the end of its
	// context is checked here: halt cancels a compaction under way before
	// a swap, and one that had fallen behind (it had given way to the
	// restore's job, on a loaded machine) read its input to the end first,
	// 3.7 s of a restore's 5.1 s to running at 256 MiB (docs/benchmarks.md,
	// s7-capture).
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	ahead := time.Duration(float64(p.n)/float64(p.pace.rate)*float64(time.Second)) - time.Since(p.start)
	if ahead > 0 && err == nil {
		t := time.NewTimer(ahead)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.ctx.Done():
			return n, p.ctx.Err()
		}
	}
	return n, err
}
