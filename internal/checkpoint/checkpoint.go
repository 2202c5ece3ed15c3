// Package checkpoint copies a SQLite database's WAL into the database file
// off the path of commits.
package checkpoint

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Every is the least time between two checkpoints of one
// database: its WAL holds at most this long of commits, plus whatever a
// long reader (a snapshot's capture) keeps from being copied. Measured
// with the engine benchmark's writer (about 12,000 commits a second, one
// run each): with SQLite's autocheckpoint its p99 was 0.12-0.16 ms, its
// worst commit up to 210 ms after a capture; with a checkpoint every
// 200 ms, p99 0.23-0.32 ms; every second, p99 0.21-0.26 ms but single
// checkpoints holding the disk long enough for 48 ms commits; every
// 500 ms, p99 0.22-0.28 ms and worst commits of 8-29 ms (65 ms once, in a
// first capture into an empty store).
const Every = 500 * time.Millisecond

// A Checkpointer copies a database's WAL into the database file off the
// path of user commits. SQLite's own autocheckpoint runs inside the commit
// that crosses its threshold: that commit copies and fsyncs the whole
// backlog, which after a snapshot's capture (whose read transaction keeps
// checkpoints from copying what is committed meanwhile) made one commit
// wait 60-210 ms on the benchmark machine, and up to 570 ms during a
// first capture. The console's write connections
// therefore run with wal_autocheckpoint(0), and a commit only nudges this
// goroutine, which runs a passive checkpoint, one that never waits for and
// never blocks a writer, at most every Every.
type Checkpointer struct {
	db     *sql.DB
	logger *slog.Logger
	kick   chan struct{}
	// stop asks the goroutine to end, done says it ended; closeOnce
	// makes Close safe to call more than once.
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	// aside is set while another owner (a replicator) takes the
	// database's checkpoints: nudges are dropped and nothing is
	// checkpointed. running is held for each checkpoint, so StandAside
	// can wait for one under way.
	aside   atomic.Bool
	running sync.Mutex
}

// New starts a checkpointer that checkpoints through db, a pool of write
// connections to the database, each opened with wal_autocheckpoint(0).
func New(db *sql.DB, logger *slog.Logger) *Checkpointer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Checkpointer{db: db, logger: logger, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// Nudge says a commit happened; it never blocks. While the checkpointer
// stands aside, it does nothing.
func (c *Checkpointer) Nudge() {
	if c.aside.Load() {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// loop checkpoints when nudged, at most every Every, until Close. Its
// checkpoints run with a context never cancelled, and Close waits for one
// under way: cancelling a statement interrupts its connection
// (sqlite3_interrupt), and an interrupt that lands as the statement ends
// stays on the connection until its next statement starts. Closed as the
// pool's last connection (a pause, a restore's swap), such a connection
// has its closing checkpoint interrupted too, and the WAL stays: the swap
// then refused the file ("the database still has a write-ahead log"), in
// about 1 load in 450 on a loaded machine, each time with the pool's one
// connection running this checkpoint as the swap closed the pool. A
// checkpoint never waits long: a passive one never waits for a lock, a
// resetting one waits restartWait at most.
//
// A long WAL is truncated only once the writers are quiet, when no commit
// came in the Every after the checkpoint that copied it; while they are
// busy it is restarted instead (see reset).
func (c *Checkpointer) loop() {
	defer close(c.done)
	// shrink is set while the WAL file may be longer than truncateFrames:
	// a restart leaves the file as long as it was.
	shrink := false
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if c.checkpoint() {
			shrink = true
			if len(c.kick) != 0 {
				// A writer is busy: the WAL is not shrunk, but it is
				// started again from its beginning (see reset).
				c.resetIfOwned("RESTART")
			}
		}
		select {
		case <-c.stop:
			return
		case <-time.After(Every):
		}
		if shrink && len(c.kick) == 0 && c.resetIfOwned("TRUNCATE") {
			shrink = false
		}
	}
}

// StandAside stops the checkpointer from checkpointing until Resume, for
// a database whose checkpoints another owner takes (a replicator such as
// Litestream, which must decide when the WAL is copied). It drops a nudge
// waiting and waits for a checkpoint under way, so once it returns no
// checkpoint of this Checkpointer runs.
func (c *Checkpointer) StandAside() {
	c.aside.Store(true)
	select {
	case <-c.kick:
	default:
	}
	c.running.Lock()
	defer c.running.Unlock()
}

// Resume gives the checkpoints back after StandAside, and checkpoints what
// the other owner left.
func (c *Checkpointer) Resume() {
	c.aside.Store(false)
	c.Nudge()
}

// checkpoint runs one passive checkpoint unless the checkpointer stands
// aside, and tells whether it copied the whole of a WAL longer than
// truncateFrames, which is then worth truncating.
func (c *Checkpointer) checkpoint() (long bool) {
	c.running.Lock()
	defer c.running.Unlock()
	if c.aside.Load() {
		return false
	}
	var busy, frames, copied int
	err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	if err != nil {
		// The next commit tries again; closing the database
		// checkpoints whatever is left.
		c.logger.Warn("checkpoint failed", "err", err)
	}
	return err == nil && busy == 0 && copied == frames && frames > truncateFrames
}

// resetIfOwned resets the WAL (reset) unless the checkpointer stands
// aside.
func (c *Checkpointer) resetIfOwned(mode string) (done bool) {
	c.running.Lock()
	defer c.running.Unlock()
	return !c.aside.Load() && c.reset(mode)
}

// truncateFrames is the WAL length, in frames, past which a checkpoint that
// copied every frame also resets the WAL (reset). SQLite reuses a WAL from
// its start once it is copied, but never shrinks it: after a load or a big
// batch of inserts the file stayed at 1.08 GB, all of it already in the
// database file, for as long as the database was open. And under a writer
// that never pauses, a passive checkpoint never catches up with it, so the
// WAL is never started again and grows without end (1.5-1.8 GB in 12 s of
// the engine benchmark's writer). 16,384 frames is 64 MiB at the default
// 4 KiB page: the console's usual commits never reach it, so a truncated
// WAL is not regrown at once.
var truncateFrames = 16384

// restartWait is how long, in ms, a RESTART waits for the lock and the
// readers. A busy writer's every transaction reads as well, so with no wait
// at all the restart found one under way 2 times in 3 and the WAL went on
// growing (to 500 MB in 12 s of the engine benchmark's writer); with a few
// ms it waits for that transaction to end, and new ones wait for it.
const restartWait = 20

// restartTries is how many times a RESTART is tried in a row: under the
// tests' writer that never pauses, one try restarted the WAL about half
// the time.
const restartTries = 3

// reset checkpoints the whole WAL so that the next commit starts it again
// from its beginning: RESTART, or TRUNCATE, which also empties the file.
// Either takes the write lock and then waits for readers; with the busy
// timeout at 0 (restartWait for a RESTART) it hardly waits, so a writer is
// held up only for the reset itself and a capture's long read transaction
// simply makes it give up until the next time. The truncation is not short: it fsyncs the WAL
// and frees its blocks while holding the write lock, and with the engine
// benchmark's writer (internal/pitr, one row a commit, as fast as it goes)
// that held a commit 100-440 ms (fsync 15-115 ms, the ftruncate of a WAL
// of 64 MiB and more 100-165 ms). So loop truncates only when no commit
// came in the Every after the checkpoint, and while a writer is busy it
// restarts the WAL right after the passive checkpoint, when little is left
// to copy: the file keeps its largest size, reused from its start.
// It tells whether the WAL was reset; a RESTART is tried restartTries
// times, as the writer it waits for may begin again meanwhile.
func (c *Checkpointer) reset(mode string) (done bool) {
	ctx := context.Background()
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	// The pool's own timeout (its DSN's), given back afterwards.
	var timeoutMS int
	if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeoutMS); err != nil {
		return false
	}
	wait := 0
	if mode == "RESTART" {
		wait = restartWait
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait)); err != nil {
		return false
	}
	tries := 1
	if mode == "RESTART" {
		tries = restartTries
	}
	for range tries {
		var busy, frames, copied int
		err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
		if err != nil {
			c.logger.Debug("resetting checkpoint skipped", "mode", mode, "err", err)
			break
		}
		if done = busy == 0; done {
			break
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", timeoutMS)); err != nil {
		// A pooled connection must not keep the zero timeout: drop it.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return done
}

// Close stops the goroutine once a checkpoint under way has ended (it is
// not interrupted: see loop); the pool's last connection to close
// checkpoints what is left.
func (c *Checkpointer) Close() {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
}
