// Package pitr is snapdeck's point-in-time restore engine: a Litestream
// replicator per replicated database, embedded as a library, whose LTX
// files live in the snapshot store's blobs (Client), and the restore of a
// database as of a time into a new file.
package pitr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// CheckpointOwner hands a database's checkpoints to a replicator
// (database.Host.TakeOverCheckpoints): snapdeck's checkpointer stands
// aside until giveBack.
type CheckpointOwner interface {
	TakeOverCheckpoints(id, owner string) (giveBack func(), err error)
}

// Config is every dependency and setting of the Replicators.
type Config struct {
	// Blobs keeps the LTX files, under KeyPrefix.
	Blobs snapstore.Blobs
	// Checkpoints is who hands over a database's checkpoints.
	Checkpoints CheckpointOwner
	// Interval is how soon a commit becomes restorable; the replicator
	// uploads what it read from the WAL four times as often
	// (uploadInterval).
	Interval time.Duration
	// Tuning is Litestream's checkpoint settings; the zero value is
	// DefaultTuning.
	Tuning Tuning
	// Quiet, when set, is who tells when the console's jobs run:
	// compactions and snapshots, which can wait, give way to them
	// (giveWay).
	Quiet Quiet
	// Logger is nil for none.
	Logger *slog.Logger
}

// Quiet tells when the console runs work a user waits for (job.Runner).
type Quiet interface {
	// WaitQuiet returns nil once no such work runs, or ctx's error when
	// ctx ends first.
	WaitQuiet(ctx context.Context) error
}

// Tuning is how a replicated database is checkpointed and read. Litestream
// owns the checkpoints of a replicated database (issue 16), so these
// decide what a commit waits for.
type Tuning struct {
	// MonitorInterval is how often the WAL is read into LTX files. It
	// bounds how far a file's timestamp is after its commits: a restore to
	// a time tells commits apart only this finely.
	MonitorInterval time.Duration
	// MinCheckpointPageN is the WAL size, in pages, over which a passive
	// checkpoint runs after a read of the WAL.
	MinCheckpointPageN int
	// CheckpointInterval is how often a passive checkpoint runs anyway.
	CheckpointInterval time.Duration
	// TruncatePageN is the WAL size, in pages, over which a blocking
	// truncating checkpoint runs.
	TruncatePageN int
	// CompactionRate is how fast, in bytes a second, a compaction into
	// the levels above 0 reads and writes (compactionLevels); 0 is as fast
	// as it can. Level 0, what makes a commit restorable, is never paced.
	CompactionRate int64
	// WALWriteback is how often, at most, the WAL's new frames are sent
	// to disk while commits come (writeBackWAL); 0 is never.
	WALWriteback time.Duration
	// BusyTimeout is how long Litestream's own connection waits for a
	// lock (its busy_timeout); 0 is Litestream's default, 1 s. See
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
	// ReadGap is the least time between two reads of the WAL asked for by
	// commits told without waiting (a lease's, Committed); 0 is none. See
	// DefaultReadGap.
	ReadGap time.Duration
}

// DefaultBusyTimeout is how long Litestream waits for the write lock it
// takes as the barrier of a passive checkpoint before it gives up until
// its next read of the WAL (Litestream skips a passive checkpoint that
// finds the database busy).
//
// Under a writer that commits without pause, Litestream's wait on
// SQLite's busy schedule (retries after 1, 2, 5, 10 ... 100 ms) lost the
// lock to the writer for up to a second: in a traced run of the issue-4
// writer its read of the WAL before the barrier ended at 16.569 s, the
// barrier was won at 17.502 s, and under it Litestream then read the
// 250 MB the writer had added meanwhile, for 241 ms, while every commit
// waited (the worst, 254 ms). Giving up sooner keeps what is read under
// the barrier to what came in those milliseconds. Measured with that
// writer (docs/benchmarks.md, "s10-busy"), worst commit per phase: 1 s,
// 183-336 ms; 100 ms, 54-131 ms; 50 ms, 34-82 ms; 20 ms, 26-56 ms. The
// same wait applies to Litestream's other writes on that connection, the
// bump of its sequence after a checkpoint among them. The full re-reads
// of the database seen at every wait (1 s included) do not come from that
// wait: a writer restarts the WAL before the bump asks for the lock
// (DefaultMinCheckpointPageN, traced in docs/benchmarks.md, "s11-ckpt").
// Its reads never wait for a writer in WAL mode.
const DefaultBusyTimeout = 50 * time.Millisecond

// DefaultMinCheckpointPageN is the WAL size, in pages, over which
// Litestream runs its passive checkpoint: 4,000 (16 MiB of 4 KiB pages),
// not Litestream's 1,000.
//
// Right after a checkpoint has copied the whole WAL, the next writer
// restarts the WAL from its start. Litestream means that writer to be
// itself (the bump of its sequence); when another writer wins the lock
// first and, before Litestream reads the WAL again, writes past where
// Litestream's last read ended, Litestream can no longer tell that the
// new WAL follows its last file ("wal overwritten by another process")
// and reads the whole database again. Under the issue-4 writer, which
// writes 160 MB of WAL a second, that happened in 4 of 12 benchmark runs
// at 1,000 pages (5 MiB overwritten within the 35 ms of the bump), and
// the re-read's aftermath stalled commits for 112 ms, 115 ms and 2 s (7 s
// at 1 GiB, behind the blocking checkpoint Litestream forces once the WAL
// has grown past TruncatePageN meanwhile).
// At 4,000 pages a writer must write 16 MiB first: none in 11 runs, the
// worst commit 29-71 ms in all 33 phases (docs/benchmarks.md, "s11-ckpt").
// A larger threshold keeps more in the WAL, which every checkpoint copies
// while it holds writers off.
const DefaultMinCheckpointPageN = 4000

// DefaultReadGap is the least time between two reads of the WAL that a
// lease's commits ask for: 25 ms. Each read makes one LTX file, and each
// file is uploaded on its own (a link, a file and a directory fsync on
// the local store: 4-7 ms, up to 70 ms beside a busy writer's
// checkpoints). Read after every commit, the issue-4 writer's 40,000
// commits a second made 150-200 files a second, more than the upload kept
// up with: the replication lag grew to 0.55-1.84 s at 1 GiB. With reads
// 25 ms apart it stayed at 274-284 ms, and the worst commit went from
// 23-67 ms to 34-39 ms, as Litestream took less of the two cores
// (docs/benchmarks.md, "s12-gap"). A lease's commit made while reads come
// back to back gets a time up to this much, plus one read, later than its
// own (more while the reads wait for the upload: awaitUpload).
const DefaultReadGap = 25 * time.Millisecond

// DefaultTuning is the tuning measured with the issue-4 writer
// (docs/benchmarks.md, "Point-in-time restore (issue 16)").
var DefaultTuning = Tuning{
	// 100 ms: a restore to a time tells apart commits 100 ms apart, and
	// the read of an unchanged WAL is one stat.
	MonitorInterval:    100 * time.Millisecond,
	MinCheckpointPageN: DefaultMinCheckpointPageN,
	CheckpointInterval: litestream.DefaultCheckpointInterval,
	TruncatePageN:      litestream.DefaultTruncatePageN,
	CompactionRate:     DefaultCompactionRate,
	WALWriteback:       DefaultWALWriteback,
	BusyTimeout:        DefaultBusyTimeout,
	ReadGap:            DefaultReadGap,
}

// Tables are the tables Litestream keeps in a replicated database: its
// sequence, which it bumps to force a WAL frame, and its lock, which its
// checkpoints write to hold other writers off. The console never shows
// them and user SQL may not change them (internal/database).
var Tables = []string{"_litestream_seq", "_litestream_lock"}

// DefaultWindows is each plan's point-in-time window unless the operator
// says otherwise (SPEC §10): none on free, a day on professional, a week
// on enterprise.
var DefaultWindows = map[snapdeck.Plan]time.Duration{
	snapdeck.PlanFree:         0,
	snapdeck.PlanProfessional: 24 * time.Hour,
	snapdeck.PlanEnterprise:   168 * time.Hour,
}

// Replicators runs a Litestream replicator per replicated database.
type Replicators struct {
	cfg    Config
	logger *slog.Logger

	mu      sync.Mutex
	running map[string]*replicator
	// clients keeps each database's client, with the keys it has seen.
	clients map[string]*Client
	// idLocks holds a lock per database (lockID).
	idLocks map[string]*sync.Mutex
	// settled is, per database, where its history ended when Stop last
	// stopped it cleanly, and the file it ended on (settle), for the base
	// of a StartAfterSwap right after.
	settled map[string]settle
	// closed refuses Start after Close.
	closed bool
	// background holds a token while a compaction or snapshot runs: one
	// at a time across all databases (compactLevel).
	background chan struct{}
}

// replicator is one database's: a Litestream store of one database, and
// the give-back of its checkpoints.
type replicator struct {
	store    *litestream.Store
	db       *litestream.DB
	window   time.Duration
	giveBack func()
	// mu keeps Committed's reads of the WAL off a stopped replicator:
	// Litestream's Sync on a closed DB opens it again.
	mu      sync.RWMutex
	stopped bool
	// kick asks reader, its goroutine, for a read of the WAL, at least
	// the read gap after its last; urgent asks for one at once, for the
	// callers waiting on next (readFor).
	kick   chan struct{}
	urgent chan struct{}
	// next is the read that reader starts next, which the callers of
	// readFor wait for; roundMu guards it.
	roundMu sync.Mutex
	next    *readRound
	// written tells writeBackWAL, its goroutine, that a commit came.
	written chan struct{}
	// ready is closed once Litestream has opened the database: at once,
	// or after a base (open). openErr is why it did not.
	ready   chan struct{}
	openErr error
	// cancel ends reader and compact, its compactions' goroutine; wg
	// waits for both (halt).
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// end is where its history ended, once stopped cleanly (ended).
	end   settle
	ended bool
}

// halt waits for Litestream to have opened the database, then ends cur's
// goroutines and waits for them: a read of the WAL under way finishes
// first, a compaction under way is cancelled.
func (cur *replicator) halt() {
	<-cur.ready
	cur.cancel()
	cur.wg.Wait()
}

// wait waits until Litestream has opened the database or ctx ends, and
// tells whether it did.
func (cur *replicator) wait(ctx context.Context) bool {
	select {
	case <-cur.ready:
		return cur.openErr == nil
	case <-ctx.Done():
		return false
	}
}

// readRound is one read of the WAL by reader, and who waits for it.
type readRound struct {
	waiters int           // guarded by roundMu
	done    chan struct{} // closed once the read has ended
	// ended says reader stopped instead of reading (halt): the waiters
	// read the WAL themselves.
	ended bool
}

func newReadRound() *readRound { return &readRound{done: make(chan struct{})} }

// reader reads the WAL whenever asked, until ctx ends. The commits of a
// lease, told without waiting (kick), coalesce into one read, which
// starts at least gap after the one before it ended (DefaultReadGap).
// Callers that wait for a read (readFor) get one at once, and all that
// asked before it started share it.
func (cur *replicator) reader(ctx context.Context, gap time.Duration, logger *slog.Logger) {
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	defer cur.endRounds()
	var wait *time.Timer
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			cur.prune(logger)
			continue
		case <-cur.kick:
		case <-cur.urgent:
		}
		if d := gap - time.Since(last); d > 0 && !cur.awaited() {
			if wait == nil {
				wait = time.NewTimer(d)
			} else {
				wait.Reset(d)
			}
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C:
			case <-cur.urgent:
				wait.Stop()
			}
		}
		cur.awaitUpload(ctx, logger)
		r := cur.startRound()
		cur.sync(context.Background(), logger)
		close(r.done)
		last = time.Now()
	}
}

// maxBacklog is how many LTX files the replica may have yet to upload
// before reader uploads them itself ahead of its next read (awaitUpload),
// and maxBacklogWait the longest such an upload may hold the reads up.
// Each read is one file, and the replica uploads files one at a time (a
// directory fsync each, 3.5-7 ms on the benchmark machine) in passes a
// tick apart (uploadInterval). Reads that come faster than that, as a
// script posting one-row inserts to the Query tab makes them (one read
// each, 355 a second), left the upload further behind at every pass: the
// lag reached 2.56 s over 30 s. Uploading on the reads' own goroutine
// once 32 files wait holds the reads, and the commits waiting for them, to
// what the upload keeps up with: 164 runs a second, the lag at most
// 312 ms (docs/benchmarks.md, "s12-backlog").
const (
	maxBacklog     = 32
	maxBacklogWait = 500 * time.Millisecond
)

// awaitUpload uploads what was read from the WAL, on reader's goroutine,
// when the replica is more than maxBacklog files behind it: the replica's
// own uploads wait for their tick, and reads that waited for them instead
// held a script on the Query tab to 32 runs a tick (134 a second), the
// upload idle meanwhile. A failed upload is left to the replica's next
// pass.
func (cur *replicator) awaitUpload(ctx context.Context, logger *slog.Logger) {
	dpos, err := cur.db.Pos()
	rpos := cur.db.Replica.Pos()
	// A replica whose position is not known yet (its first upload, or
	// after a failed one) is left to its own pass.
	if err != nil || rpos.TXID == 0 || dpos.TXID <= rpos.TXID+maxBacklog {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, maxBacklogWait)
	defer cancel()
	if err := cur.db.Replica.Sync(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("upload the history behind the reads of the WAL", "err", err)
	}
}

// readFor returns once a read of the WAL that started after it was
// called has ended, or ctx has: it asks reader for one at once, and
// shares it with every caller waiting meanwhile. Once reader has stopped
// it reads the WAL itself (sync, which does nothing on a stopped
// replicator).
func (cur *replicator) readFor(ctx context.Context, logger *slog.Logger) {
	cur.roundMu.Lock()
	r := cur.next
	r.waiters++
	cur.roundMu.Unlock()
	select {
	case cur.urgent <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return
	}
	if r.ended {
		cur.sync(ctx, logger)
	}
}

// awaited tells whether a caller of readFor waits for the next read.
func (cur *replicator) awaited() bool {
	cur.roundMu.Lock()
	defer cur.roundMu.Unlock()
	return cur.next.waiters > 0
}

// startRound returns the read about to start, and puts a new one after it.
func (cur *replicator) startRound() *readRound {
	cur.roundMu.Lock()
	defer cur.roundMu.Unlock()
	r := cur.next
	cur.next = newReadRound()
	return r
}

// endRounds releases the callers waiting for a read once reader stops,
// and those that come after.
func (cur *replicator) endRounds() {
	cur.roundMu.Lock()
	defer cur.roundMu.Unlock()
	cur.next.ended = true
	close(cur.next.done)
}

// prune removes the local L0 files already uploaded unless the
// replicator stopped (pruneLocalCopy).
func (cur *replicator) prune(logger *slog.Logger) {
	cur.mu.RLock()
	defer cur.mu.RUnlock()
	if !cur.stopped {
		pruneLocalCopy(cur.db, logger)
	}
}

// sync reads the WAL into an LTX file unless the replicator stopped.
func (cur *replicator) sync(ctx context.Context, logger *slog.Logger) {
	cur.mu.RLock()
	defer cur.mu.RUnlock()
	if cur.stopped {
		return
	}
	if err := cur.db.Sync(ctx); err != nil {
		logger.Warn("read the WAL after a commit", "err", err)
	}
}

// uploadInterval is how often a replicator uploads the LTX files read
// since its last upload, for a promise that a commit is restorable within
// interval: a quarter of it. Litestream's replica uploads on a ticker,
// so a commit read just after a tick waits a whole tick, then the upload
// of every file read meanwhile (a file and a directory fsync each, on the
// local store): with the tick at the interval, a commit was restorable
// only 1.3-2.5 s after it under a busy writer, with a 1 s interval
// (docs/benchmarks.md, s7-barrier). A quarter leaves three quarters for
// the read of the WAL and the upload, which take a time in proportion to
// the tick. A tick with nothing to upload reads nothing and lists nothing.
func uploadInterval(interval time.Duration) time.Duration {
	return max(interval/4, time.Millisecond)
}

// owner is how a replicator names itself to Host.TakeOverCheckpoints.
const owner = "point-in-time replication"

// New returns the Replicators; none runs until Start.
func New(cfg Config) (*Replicators, error) {
	if cfg.Blobs == nil || cfg.Checkpoints == nil {
		return nil, errors.New("pitr: Replicators need their Blobs and Checkpoints")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Tuning == (Tuning{}) {
		cfg.Tuning = DefaultTuning
	}
	if cfg.Tuning.MonitorInterval > cfg.Interval {
		cfg.Tuning.MonitorInterval = cfg.Interval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Litestream's own commits are not fsynced one by one (conn.go).
	registerNormalSync()
	return &Replicators{cfg: cfg, logger: cfg.Logger, running: map[string]*replicator{}, clients: map[string]*Client{},
		idLocks: map[string]*sync.Mutex{}, settled: map[string]settle{}, background: make(chan struct{}, 1)}, nil
}

// Interval is how soon a commit becomes restorable.
func (r *Replicators) Interval() time.Duration { return r.cfg.Interval }

// client is the ReplicaClient of a database.
func (r *Replicators) client(id string) *Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[id]
	if !ok {
		c = NewClient(r.cfg.Blobs, id, r.logger)
		r.clients[id] = c
	}
	return c
}

// Start replicates database id, whose file is path, keeping window of
// history. A database already replicated with the same window is left
// alone; with another window it is restarted. The replicator takes over
// the database's checkpoints until Stop. A file without a WAL (after a
// swap) starts its history again from a base written in the background
// (base.go): Start returns at once, and the first read of the WAL after
// it, a commit's (Committed with wait, Sync), waits for the base.
func (r *Replicators) Start(ctx context.Context, id, path string, window time.Duration) error {
	return r.start(ctx, id, path, window, "")
}

// StartAfterSwap is Start right after database id's file was swapped for
// another (a restore, overwrite, load or restore to a time), with replaced
// the file swapped out, still there under that name. When its history
// ended on replaced, the base holds only the pages the new file changes
// (a level-0 file like any other, so the history reads on the same as
// with a whole base), not the whole file: after a restore that leaves
// most pages as they were, it writes and stores a few pages instead of
// the whole file, and the next compaction into level 1 rewrites those
// few. The history ended on replaced when its replicator was stopped
// (Stop) after every other connection to it had closed (Litestream's last
// read of the WAL then holds every commit; see settle), and nothing wrote
// the file since but the WAL that read held. Otherwise the base holds the
// whole file, as Start's.
func (r *Replicators) StartAfterSwap(ctx context.Context, id, path string, window time.Duration, replaced string) error {
	return r.start(ctx, id, path, window, replaced)
}

// start is Start and StartAfterSwap.
func (r *Replicators) start(ctx context.Context, id, path string, window time.Duration, replaced string) error {
	if window <= 0 {
		return r.Stop(ctx, id)
	}
	defer r.lockID(id)()
	r.mu.Lock()
	cur, ok := r.running[id]
	closed := r.closed
	settled, wasSettled := r.settled[id]
	delete(r.settled, id)
	r.mu.Unlock()
	if closed {
		return errClosed
	}
	if ok {
		if cur.window == window {
			return nil
		}
		if err := r.stop(ctx, id, cur); err != nil {
			return err
		}
	}
	giveBack, err := r.cfg.Checkpoints.TakeOverCheckpoints(id, owner)
	if err != nil {
		return err
	}
	// Given back by a stop, or earlier by a store that failed to open in
	// the background (openOnBase): once.
	giveBack = sync.OnceFunc(giveBack)
	logger := r.logger.With("database_id", id)
	db := litestream.NewDB(path)
	db.MonitorInterval = r.cfg.Tuning.MonitorInterval
	db.MinCheckpointPageN = r.cfg.Tuning.MinCheckpointPageN
	db.CheckpointInterval = r.cfg.Tuning.CheckpointInterval
	db.TruncatePageN = r.cfg.Tuning.TruncatePageN
	if r.cfg.Tuning.BusyTimeout > 0 {
		db.BusyTimeout = r.cfg.Tuning.BusyTimeout
	}
	rep := litestream.NewReplicaWithClient(db, r.client(id))
	rep.SyncInterval = uploadInterval(r.cfg.Interval)
	db.Replica = rep
	store := litestream.NewStore([]*litestream.DB{db}, compactionLevels)
	// Its compactions and snapshots run on compact's schedule, not on
	// the store's monitors.
	store.CompactionMonitorEnabled = false
	// NewStore gives the DB, its compactor and its client loggers made
	// from slog's default logger: each is set again, after it, to ours.
	store.Logger = litestreamLogger(logger)
	db.SetLogger(store.Logger)
	// Every L0 file stays for the whole window: compacted levels keep
	// only the state at their ends, and a restore must tell apart commits
	// an interval apart anywhere in the window.
	store.SetL0Retention(window)
	store.L0RetentionCheckInterval = min(window, litestream.DefaultL0RetentionCheckInterval)
	// A snapshot at least once per window, kept one interval longer than
	// the window, so that one always precedes the window's start.
	store.SnapshotInterval = min(window, litestream.DefaultSnapshotInterval)
	store.SnapshotRetention = window + store.SnapshotInterval
	// A file without a WAL gets its base from prepareBase and write, in
	// the background, rather than from Litestream; a failure to prepare
	// one leaves it to Litestream.
	b, err := prepareBase(ctx, db, r.client(id), path)
	if err != nil {
		logger.Warn("prepare the base of the history, Litestream reads the whole file instead", "err", err)
		b = nil
	}
	if b != nil && replaced != "" && wasSettled {
		if err := b.over(replaced, settled); err != nil {
			logger.Warn("the base of the history holds the whole file", "reason", err)
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	cur = &replicator{store: store, db: db, window: window, giveBack: giveBack,
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), next: newReadRound(),
		written: make(chan struct{}, 1), ready: make(chan struct{}), cancel: cancel}
	if b == nil {
		if err := r.open(ctx, bg, cur, nil, logger); err != nil {
			cancel()
			giveBack()
			return err
		}
	}
	r.mu.Lock()
	closed = r.closed
	if !closed {
		r.running[id] = cur
	}
	r.mu.Unlock()
	if closed {
		// Close came while it opened: it is not Close's to stop.
		if b != nil {
			b.close()
			cancel()
			giveBack()
			return errClosed
		}
		cur.halt()
		store.Close(ctx)
		giveBack()
		return errClosed
	}
	// Read before openOnBase runs: its write closes the replaced file.
	over := b != nil && b.prev != nil
	if b != nil {
		go func() {
			if err := r.openOnBase(context.WithoutCancel(ctx), bg, cur, b, path, logger); err != nil {
				logger.Error("point-in-time replication", "err", err)
			}
		}()
	}
	logger.Info("point-in-time replication started", "window", window, "interval", r.cfg.Interval, "base", b != nil,
		"base_over_replaced", over)
	return nil
}

// open opens cur's store and starts its goroutines on bg, then marks it
// ready; on failure it marks it ready with the error. After a base b,
// Litestream's first read of the WAL, which opens its connection, comes
// before b's connection closes (see base).
func (r *Replicators) open(ctx, bg context.Context, cur *replicator, b *base, logger *slog.Logger) error {
	defer close(cur.ready)
	if b != nil {
		defer b.close()
	}
	if err := cur.store.Open(ctx); err != nil {
		cur.openErr = fmt.Errorf("start point-in-time replication of database %s: %w", cur.db.Path(), err)
		return cur.openErr
	}
	if b != nil {
		cur.sync(ctx, logger)
	}
	cur.wg.Go(func() { cur.reader(bg, r.cfg.Tuning.ReadGap, logger) })
	if every := r.cfg.Tuning.WALWriteback; every > 0 {
		cur.wg.Go(func() { cur.writeBackWAL(bg, every) })
	}
	cur.wg.Go(func() { r.compact(bg, cur, logger) })
	return nil
}

// openOnBase writes base b of the database file path, then opens cur's
// store (open). A base that fails is removed and left to Litestream. If
// the store does not open, cur gives its checkpoints back and leaves the
// running ones.
func (r *Replicators) openOnBase(ctx, bg context.Context, cur *replicator, b *base, path string, logger *slog.Logger) error {
	start := time.Now()
	n, err := b.write(ctx, cur.db, path)
	if err != nil {
		logger.Warn("write the base of the history, Litestream reads the whole file instead", "err", err)
	} else {
		logger.Debug("base of the history written", "txid", b.txID.String(), "bytes", n, "took", time.Since(start))
	}
	if err := r.open(ctx, bg, cur, b, logger); err != nil {
		r.mu.Lock()
		id := cur.db.Path()
		for k, v := range r.running {
			if v == cur {
				delete(r.running, k)
				id = k
			}
		}
		r.mu.Unlock()
		cur.giveBack()
		return fmt.Errorf("database %s: %w", id, err)
	}
	return nil
}

// Stop stops replicating database id, after a last upload of what its WAL
// holds, and gives its checkpoints back. Its files stay. Stopping a
// database not replicated does nothing.
//
// Where its history ended, and on which file, is kept for the next start
// (StartAfterSwap), and forgotten by any other Stop or start.
func (r *Replicators) Stop(ctx context.Context, id string) error {
	defer r.lockID(id)()
	r.mu.Lock()
	cur, ok := r.running[id]
	delete(r.settled, id)
	r.mu.Unlock()
	if !ok {
		return nil
	}
	if err := r.stop(ctx, id, cur); err != nil {
		return err
	}
	if cur.ended {
		r.mu.Lock()
		r.settled[id] = cur.end
		r.mu.Unlock()
	}
	return nil
}

// stopRunning stops database id's replicator, if one runs; the caller
// holds lockID(id).
func (r *Replicators) stopRunning(ctx context.Context, id string) error {
	r.mu.Lock()
	cur, ok := r.running[id]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	return r.stop(ctx, id, cur)
}

// errClosed refuses a Start after Close.
var errClosed = snapdeck.Errorf(snapdeck.Busy, "Point-in-time replication is stopping.")

// lockID keeps Start, Stop and Drop of one database one at a time; r.mu
// guards only the maps, so that stopping one database (its last upload
// may take a while) holds up no other's commits.
func (r *Replicators) lockID(id string) (unlock func()) {
	r.mu.Lock()
	l, ok := r.idLocks[id]
	if !ok {
		l = &sync.Mutex{}
		r.idLocks[id] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// stop stops cur, database id's replicator, unless another stop took it
// from the running ones first.
func (r *Replicators) stop(ctx context.Context, id string, cur *replicator) error {
	r.mu.Lock()
	mine := r.running[id] == cur
	if mine {
		delete(r.running, id)
	}
	r.mu.Unlock()
	if !mine {
		return nil
	}
	cur.halt()
	cur.mu.Lock()
	cur.stopped = true
	cur.mu.Unlock()
	if cur.openErr != nil {
		// Never opened: nothing to close.
		cur.giveBack()
		return nil
	}
	err := cur.store.Close(ctx)
	if err == nil {
		// Close uploaded what was left: what was read since the last
		// tick goes too.
		pruneLocalCopy(cur.db, r.logger.With("database_id", id))
		cur.end, cur.ended = settleOf(cur.db)
	}
	cur.giveBack()
	if err != nil {
		return fmt.Errorf("stop point-in-time replication of database %s: %w", id, err)
	}
	r.logger.Info("point-in-time replication stopped", "database_id", id)
	return nil
}

// Running tells whether database id is replicated now.
func (r *Replicators) Running(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[id]
	return ok
}

// Drop stops replicating database id and deletes its history: its LTX
// files and Litestream's local state next to its file (path).
func (r *Replicators) Drop(ctx context.Context, id, path string) error {
	// Stopped under the same lock as the deletion: a Start between the
	// two would replicate over the files being deleted.
	defer r.lockID(id)()
	err := r.stopRunning(ctx, id)
	r.mu.Lock()
	delete(r.settled, id)
	r.mu.Unlock()
	meta := litestream.NewDB(path).MetaPath()
	err = errors.Join(err, r.client(id).DeleteAll(ctx), os.RemoveAll(meta))
	r.mu.Lock()
	delete(r.clients, id)
	r.mu.Unlock()
	return err
}

// Sync uploads at once what database id's WAL holds, so that every commit
// made so far is restorable; a database not replicated is refused.
func (r *Replicators) Sync(ctx context.Context, id string) error {
	r.mu.Lock()
	cur, ok := r.running[id]
	r.mu.Unlock()
	if ok && !cur.wait(ctx) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ok = false
	}
	if ok {
		cur.mu.RLock()
		defer cur.mu.RUnlock()
	}
	if !ok || cur.stopped {
		return snapdeck.Errorf(snapdeck.Conflict, "Database %s is not replicated.", id)
	}
	if err := cur.db.SyncAndWait(ctx); err != nil {
		return err
	}
	pruneLocalCopy(cur.db, r.logger.With("database_id", id))
	return nil
}

// Committed reads database id's WAL into an LTX file, if it is
// replicated, rather than at the next tick: the file's time is what a
// restore to a time compares. With wait, a read that started after the
// call has ended when Committed returns, so the time is between the
// commit and its caller seeing it (a few ms: the LTX file is fsynced);
// callers waiting at once share one read. Without, it is only asked for,
// at least Tuning.ReadGap after the last, and commits told meanwhile
// share one read. The Host calls it after each run of user SQL that may
// have written (database.Host.OnCommit); a failure is logged, and the
// next tick reads the WAL anyway.
func (r *Replicators) Committed(ctx context.Context, id string, wait bool) {
	r.mu.Lock()
	cur, ok := r.running[id]
	r.mu.Unlock()
	if ok {
		select {
		case cur.written <- struct{}{}:
		default:
		}
	}
	switch {
	case !ok:
	case wait:
		// Right after a start on a base, the first read waits for the
		// base: a commit's file is never earlier than its base.
		ctx = context.WithoutCancel(ctx)
		if cur.wait(ctx) {
			cur.readFor(ctx, r.logger.With("database_id", id))
		}
	default:
		select {
		case cur.kick <- struct{}{}:
		default:
		}
	}
}

// Lag is how long ago each replicated database's replica last caught up
// with its WAL: at most about a quarter of the interval when all is well
// (uploadInterval), up to the interval under a busy writer.
func (r *Replicators) Lag() map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Duration, len(r.running))
	now := time.Now()
	for id, cur := range r.running {
		select {
		case <-cur.ready:
		default:
			continue // still writing its base
		}
		if at := cur.db.LastSuccessfulSyncAt(); !at.IsZero() {
			out[id] = now.Sub(at)
		}
	}
	return out
}

// Bytes is how many bytes database id's history takes in the blobs,
// without a listing once its files are known (Client).
func (r *Replicators) Bytes(ctx context.Context, id string) (int64, error) {
	return r.client(id).Bytes(ctx)
}

// Earliest is the earliest time database id can be restored to from its
// history, and false when it has none: the time of its oldest snapshot,
// or of the oldest file of level 0 or 1 that starts its first
// transaction. Levels 2 and up are left out: a compaction at an hourly
// boundary (compactionLevels) can make a file there that starts at the first
// transaction, and retention by transaction keeps the last file of a level
// until that level compacts again (up to an hour), so counting it would
// hold the window's start at the database's creation long after the
// window moved on. Leaving it out can only make the window start later,
// never promise a time that cannot be restored.
//
// It lists nothing once the database's files are known (Client keeps
// them from its first listing on), so a page view costs no LIST.
func (r *Replicators) Earliest(ctx context.Context, id string) (time.Time, bool, error) {
	earliest, ok, err := r.client(id).Earliest(ctx)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	// A restore takes the files made strictly before its time.
	return earliest.Add(time.Millisecond), true, nil
}

// RestoreTo writes database id as of at into out, a path that must not
// exist: the last transaction whose LTX file was made at or before at
// (read from the WAL at most Tuning.MonitorInterval after its commit). The
// file is fsynced with its directory.
//
// LTX files carry their time in whole milliseconds, and at covers its
// millisecond: a file read in it is taken, so a commit made less than a
// millisecond after at can be held. Taking only the milliseconds before
// at's own was tried: a commit read just before the time noted on its
// answer, in the same millisecond, was then left out, which is the
// common case (a time noted after a commit), where the other is rare.
//
// What proves it whole, in place of Litestream's PRAGMA quick_check (40%
// of a restore's CPU at 256 MiB, docs/benchmarks.md): the plan starts at
// a snapshot and its files follow each other transaction by transaction;
// the snapshot holds every page of its size, in order; every file's
// checksum (CRC-64 of all its bytes) matches; page 1 is a SQLite header.
// The file is then exactly what Litestream read from the WAL, page by
// page, as a WAL replay would give it.
func (r *Replicators) RestoreTo(ctx context.Context, id string, at time.Time, out string) error {
	// Litestream's plan takes the files made strictly before its time;
	// at is inclusive, and timestamps are whole milliseconds.
	if err := restoreFile(ctx, r.client(id), at.Add(time.Millisecond), out, r.logger.With("database_id", id)); err != nil {
		if errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots) {
			return snapdeck.Errorf(snapdeck.Invalid, "Database %s has no history at %s.", id, at.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("restore database %s to %s: %w", id, at.UTC().Format(time.RFC3339), err)
	}
	return durable.SyncDir(filepath.Dir(out))
}

// Close stops every replicator, after a last upload each.
func (r *Replicators) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	running := maps.Clone(r.running)
	r.mu.Unlock()
	var errs []error
	for id, cur := range running {
		errs = append(errs, r.stop(ctx, id, cur))
	}
	return errors.Join(errs...)
}
