package dataplane

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/database"
)

// stream is one Hrana stream: a lease and what the client stored on it.
// Between requests it sits in streams.batons under its current baton;
// a request takes it out, so two requests with one baton cannot both run.
type stream struct {
	srv   *Server
	lease *database.Lease
	grant Grant
	sqls  map[int32]string
	// totalChanges is total_changes() after the last statement, to tell
	// whether a statement changed rows (session.counts).
	totalChanges int64
	// wrote is set when a request changed rows, to nudge the checkpointer.
	wrote bool
	// closing is set by a close request: the stream ends after it.
	closing bool
	// idle ends the stream when its baton goes unused (IdleTimeout).
	idle *time.Timer
}

// tombstone remembers why a stream that Host ended is gone.
type tombstone struct {
	err *stmtError
	at  time.Time
}

// streams are the open streams by baton. A baton is 32 random bytes: it
// names a stream only while the server keeps it in this map, so it cannot
// be forged or guessed, and each answer replaces it.
type streams struct {
	srv    *Server
	mu     sync.Mutex
	batons map[string]*stream
	ended  map[string]tombstone
	closed bool
	seq    uint64
}

func newStreams(s *Server) *streams {
	return &streams{srv: s, batons: map[string]*stream{}, ended: map[string]tombstone{}}
}

// errUnknownBaton answers a baton that names no stream.
var errUnknownBaton = &stmtError{code: "STREAM_EXPIRED", msg: fmt.Sprintf(
	"This stream is closed or expired (a stream ends after %s without a request, or when it is closed); open a new one.", defaultIdleTimeout)}

// open leases a connection for a new stream.
func (ss *streams) open(ctx context.Context, g Grant) (*stream, error) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil, errors.New("the data plane is stopping")
	}
	ss.seq++
	n := ss.seq
	ss.mu.Unlock()
	l, err := ss.srv.cfg.Host.Lease(ctx, g.DatabaseID, database.LeaseOptions{ReadOnly: g.ReadOnly,
		Owner: fmt.Sprintf("data plane stream %d of token %s", n, g.TokenID)})
	if err != nil {
		return nil, err
	}
	st := &stream{srv: ss.srv, lease: l, grant: g, sqls: map[int32]string{}, totalChanges: -1}
	ss.srv.cfg.Metrics.DataPlaneStreams(1)
	return st, nil
}

// acquire takes the stream a baton names, for a request with grant g.
func (ss *streams) acquire(baton string, g Grant) (*stream, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st, ok := ss.batons[baton]
	if !ok || st.grant.TokenID != g.TokenID || st.grant.DatabaseID != g.DatabaseID {
		if t, ok := ss.ended[baton]; ok {
			delete(ss.ended, baton)
			return nil, t.err
		}
		return nil, errUnknownBaton
	}
	delete(ss.batons, baton)
	st.idle.Stop()
	return st, nil
}

// release puts a stream back under a new baton, or ends it when it was
// closed or its lease ended; it returns the baton for the answer.
func (ss *streams) release(st *stream) *string {
	if st.wrote {
		// Commits never checkpoint on this console: the checkpointer
		// does, when told.
		st.lease.Nudge()
		st.wrote = false
	}
	ss.mu.Lock()
	if st.closing || ss.closed || st.lease.Err() != nil {
		ss.mu.Unlock()
		ss.end(st)
		return nil
	}
	baton := newBaton()
	ss.batons[baton] = st
	st.idle = time.AfterFunc(ss.srv.cfg.IdleTimeout, func() { ss.expire(st, baton) })
	ss.mu.Unlock()
	return &baton
}

// expire ends a stream whose baton went unused: its lease is closed, so
// an open transaction is rolled back.
func (ss *streams) expire(st *stream, baton string) {
	ss.mu.Lock()
	if ss.batons[baton] != st {
		ss.mu.Unlock()
		return
	}
	delete(ss.batons, baton)
	// A stream Host ended keeps telling why, for a client that comes
	// back late for its commit.
	if err := st.lease.Err(); err != nil {
		ss.prune()
		ss.ended[baton] = tombstone{err: leaseError(err), at: time.Now()}
	}
	ss.mu.Unlock()
	ss.srv.logger.Debug("data plane stream expired", "database_id", st.grant.DatabaseID)
	ss.end(st)
}

// prune drops old tombstones; ss.mu is held.
func (ss *streams) prune() {
	for b, t := range ss.ended {
		if time.Since(t.at) > tombstoneTTL {
			delete(ss.ended, b)
		}
	}
}

// end closes a stream's lease and counts it gone.
func (ss *streams) end(st *stream) {
	st.lease.Close()
	ss.srv.cfg.Metrics.DataPlaneStreams(-1)
	if ss.srv.onEnd != nil {
		ss.srv.onEnd()
	}
}

// closeAll ends every stream; the ones a request holds end when it
// returns them.
func (ss *streams) closeAll() {
	ss.mu.Lock()
	ss.closed = true
	idle := make([]*stream, 0, len(ss.batons))
	for b, st := range ss.batons {
		st.idle.Stop()
		idle = append(idle, st)
		delete(ss.batons, b)
	}
	ss.mu.Unlock()
	for _, st := range idle {
		ss.end(st)
	}
}

func newBaton() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// run runs a pipeline's requests in order on the stream's connection.
// Each statement runs under a context bound to the lease, so a revocation
// interrupts it; the requests after it get the lease's reason.
func (st *stream) run(ctx context.Context, reqs []streamRequest) []streamResult {
	results := make([]streamResult, 0, len(reqs))
	bctx, cancel := st.lease.Bind(ctx)
	defer cancel()
	err := st.lease.Conn().Raw(func(dc any) error {
		q, ok1 := dc.(driver.QueryerContext)
		x, ok2 := dc.(driver.ExecerContext)
		if !ok1 || !ok2 {
			return errors.New("the SQLite driver's connection cannot query")
		}
		if st.totalChanges < 0 {
			// The first request of a stream learns where the count
			// stands.
			s := &session{st: st, ctx: bctx, dc: dc, q: q, x: x, timeout: st.srv.cfg.StatementTimeout}
			var res stmtResult
			if err := s.counts(bctx, &res); err != nil {
				return err
			}
			st.wrote = false
		}
		s := &session{st: st, ctx: bctx, dc: dc, q: q, x: x, budget: st.srv.cfg.MaxResultBytes, timeout: st.srv.cfg.StatementTimeout}
		for _, req := range reqs {
			if lerr := st.lease.Err(); lerr != nil {
				results = append(results, streamResult{Type: "error", Error: leaseError(lerr).hrana()})
				continue
			}
			if st.closing {
				results = append(results, streamResult{Type: "error", Error: &errorMsg{Code: "STREAM_CLOSED",
					Message: "The stream was closed by an earlier request of this pipeline."}})
				continue
			}
			results = append(results, s.handle(req))
		}
		return nil
	})
	if err != nil {
		// The connection is gone: the lease ended before the requests
		// could start.
		e := &errorMsg{Code: "INTERNAL", Message: "Something went wrong on our side. The details are in the server log."}
		if lerr := st.lease.Err(); lerr != nil {
			e = leaseError(lerr).hrana()
		} else {
			st.srv.logger.Error("data plane connection", "database_id", st.grant.DatabaseID, "err", err)
		}
		for len(results) < len(reqs) {
			results = append(results, streamResult{Type: "error", Error: e})
		}
	}
	return results
}
