package database

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// A lease is a connection to a hosted database that a long-lived session
// (a data-plane stream, issue 15) keeps across requests. It is guarded as
// the Query tab's connections are: the same authorizer, value and ATTACH
// limits, and defensive mode. Host owns it: replacing, pausing or deleting
// the database, or stopping the console, revokes it first.
const (
	// maxLeasesPerDatabase bounds the sessions of one database. SQLite
	// runs one writer at a time per file, so more sessions add no
	// throughput, and each open read transaction pins the WAL: 16 long
	// readers already keep most checkpoints from finishing.
	maxLeasesPerDatabase = 16
	// maxLeases bounds the sessions of the whole console. Each is an open
	// SQLite connection: three file descriptors (file, WAL, shared memory)
	// and a page cache of up to 2 MiB (SQLite's default cache_size). 128
	// of them stay under 400 descriptors of the usual 1,024 and a quarter
	// of the 512 MiB the console is meant to serve in.
	maxLeases = 128
)

// LeaseOptions says what kind of lease to give.
type LeaseOptions struct {
	// ReadOnly opens the connection read-only: SQLite itself refuses its
	// writes.
	ReadOnly bool
	// Owner names who holds the lease (for example "stream 12 of token
	// ab12"), for logs.
	Owner string
}

// Lease is a dedicated, guarded connection to a hosted database. Its holder
// uses Conn across requests, runs each statement under a context from Bind
// (so that a revocation interrupts it), watches Done, and calls Close when
// the session ends. Once Done is closed, Err says why and the connection is
// closed: its open transaction was rolled back.
type Lease struct {
	host   *Host
	pool   *pool
	id     string
	opts   LeaseOptions
	conn   *sql.Conn
	ctx    context.Context // cancelled when the lease ends
	cancel context.CancelFunc
	policy *queryPolicy

	// why is the first reason given to end the lease; it is set before
	// ctx is cancelled.
	whyMu sync.Mutex
	why   error

	// mu is held while the connection is being set up and while it is
	// closed, so that a revocation waits for a lease being made.
	mu   sync.Mutex
	done chan struct{}
	err  error // set once, before done is closed
}

// Lease gives a dedicated connection to database id that a long-lived
// session keeps across requests. It is refused with a Busy error while the
// database is being replaced, and with a TooMany error past the caps on
// sessions per database and for the console.
func (h *Host) Lease(ctx context.Context, id string, opts LeaseOptions) (*Lease, error) {
	p, err := h.open(id)
	if err != nil {
		return nil, err
	}
	l := &Lease{host: h, pool: p, id: id, opts: opts, policy: &queryPolicy{readOnly: opts.ReadOnly}, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := h.register(id, p, l); err != nil {
		l.cancel()
		return nil, err
	}
	db := p.lease
	if opts.ReadOnly {
		db = p.leaseRO
	}
	// Getting the connection stops when the caller gives up or when the
	// lease is revoked meanwhile.
	cctx, stop := context.WithCancel(ctx)
	defer context.AfterFunc(l.ctx, stop)()
	defer stop()
	conn, err := db.Conn(cctx)
	if err == nil {
		if gerr := h.guard(conn, l.policy); gerr != nil {
			conn.Close()
			err = fmt.Errorf("guard connection to %s: %w", id, gerr)
		}
	}
	if err == nil && l.ctx.Err() != nil {
		// Revoked while it was being made.
		conn.Close()
		err = l.reason()
	}
	if err != nil {
		revoked := l.ctx.Err() != nil
		l.end(l.reason())
		if revoked {
			return nil, l.reason()
		}
		return nil, fmt.Errorf("connect to %s: %w", id, err)
	}
	l.conn = conn
	h.logger.Debug("lease opened", "database_id", id, "owner", opts.Owner, "read_only", opts.ReadOnly)
	return l, nil
}

// register counts l against the caps and adds it to the pool's leases,
// unless the pool has been closed or replaced meanwhile.
func (h *Host) register(id string, p *pool, l *Lease) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.suspended[id] || h.pools[id] != p {
		return errReplacing()
	}
	if len(p.leases) >= maxLeasesPerDatabase {
		return &snapdeck.Error{Code: snapdeck.TooMany, Reason: "too-many-sessions",
			Message: fmt.Sprintf("This database already has %d open sessions, the most it may have; close one and try again.", maxLeasesPerDatabase)}
	}
	if h.leases >= maxLeases {
		return &snapdeck.Error{Code: snapdeck.TooMany, Reason: "too-many-sessions",
			Message: fmt.Sprintf("The console already has %d open sessions, the most it may have; close one and try again.", maxLeases)}
	}
	p.leases[l] = struct{}{}
	h.leases++
	return nil
}

// errReplacing is the refusal of a database whose file is being replaced.
func errReplacing() error {
	return &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
		Message: "The database is being replaced (restore or load); try again in a moment."}
}

// Why a lease ended.
var (
	errLeaseReplaced = &snapdeck.Error{Code: snapdeck.Busy, Reason: "session-revoked",
		Message: "The database was replaced (restore, overwrite or load): this session was ended and its open transaction rolled back. Open a new session."}
	errLeasePaused = &snapdeck.Error{Code: snapdeck.Busy, Reason: "session-revoked",
		Message: "The database was paused: this session was ended and its open transaction rolled back."}
	errLeaseDeleted = &snapdeck.Error{Code: snapdeck.NotFound, Reason: "session-revoked",
		Message: "The database was deleted: this session was ended and its open transaction rolled back."}
	errLeaseStopping = &snapdeck.Error{Code: snapdeck.Busy, Reason: "session-revoked",
		Message: "The console is stopping: this session was ended and its open transaction rolled back."}
	errLeaseClosed = &snapdeck.Error{Code: snapdeck.Invalid, Reason: "session-closed",
		Message: "This session was closed."}
)

// Conn returns the lease's connection. Run statements on it under a
// context from Bind.
func (l *Lease) Conn() *sql.Conn { return l.conn }

// DatabaseID returns the database the lease is on.
func (l *Lease) DatabaseID() string { return l.id }

// ReadOnly reports whether the lease's connection is read-only.
func (l *Lease) ReadOnly() bool { return l.opts.ReadOnly }

// Refused returns the authorizer's reason when it refused something on this
// connection, to put in the words of the statement's error.
func (l *Lease) Refused() string { return l.policy.refused }

// Bind returns a context that ends with ctx or when the lease ends,
// whichever comes first. A statement run under it is interrupted by a
// revocation, and its rows are closed, so a replace never waits for a
// session's statement.
func (l *Lease) Bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// Done is closed when the lease ends: closed by its holder or revoked.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err says why the lease ended, or is nil while it lasts. A revoked lease's
// error is a snapdeck.Error with reason "session-revoked" that says what
// happened to the database.
func (l *Lease) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// Nudge tells the database's checkpointer, and the replicator that
// listens (Host.OnCommit), that the lease committed.
func (l *Lease) Nudge() {
	l.pool.ckpt.Nudge()
	l.host.commit(l.ctx, l.id, false)
}

// Close ends the lease: an open transaction is rolled back and the
// connection closed. Closing an ended lease does nothing.
func (l *Lease) Close() error {
	return l.revoke(errLeaseClosed)
}

// revoke ends the lease with why: it interrupts a statement running under
// Bind, rolls back an open transaction and closes the connection.
func (l *Lease) revoke(why error) error {
	l.whyMu.Lock()
	if l.why == nil {
		l.why = why
	}
	l.whyMu.Unlock()
	l.cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end(l.reason())
}

// reason is the first reason given to revoke the lease, or errLeaseClosed.
func (l *Lease) reason() error {
	l.whyMu.Lock()
	defer l.whyMu.Unlock()
	if l.why == nil {
		return errLeaseClosed
	}
	return l.why
}

// end does revoke's work with l.mu held.
func (l *Lease) end(why error) error {
	select {
	case <-l.done:
		return nil
	default:
	}
	l.err = why
	close(l.done)
	l.cancel()
	h := l.host
	h.mu.Lock()
	if _, ok := l.pool.leases[l]; ok {
		delete(l.pool.leases, l)
		h.leases--
	}
	h.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	// Closing would roll back as well; rolling back first ends the
	// transaction even if the close has to wait for the holder's rows.
	rollBack(context.Background(), l.conn)
	err := l.conn.Close()
	h.logger.Debug("lease ended", "database_id", l.id, "owner", l.opts.Owner, "why", why)
	return err
}

// revokeLeases ends every lease of p with why, before its pools close.
func (h *Host) revokeLeases(p *pool, why error) {
	h.mu.Lock()
	leases := make([]*Lease, 0, len(p.leases))
	for l := range p.leases {
		leases = append(leases, l)
	}
	h.mu.Unlock()
	for _, l := range leases {
		l.revoke(why)
	}
}

// ForgetRefusal clears the authorizer's reason, so that Refused tells of
// the next statement alone: a session runs many on one connection.
func (l *Lease) ForgetRefusal() { l.policy.refused = "" }
