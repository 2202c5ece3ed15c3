package database

import (
	"context"
	"fmt"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TakeOverCheckpoints makes owner (a point-in-time replicator, issue 16)
// the one that checkpoints database id's WAL: the database's checkpointer
// stands aside, now and whenever its pools are reopened, until giveBack is
// called, which is safe to call more than once. The console's connections
// never checkpoint on commit (wal_autocheckpoint(0)), so from then on
// only owner copies the WAL into the file, except that closing the
// database's pools (pause, replace, delete, stop) checkpoints what is
// left: an owner that must see every frame stops first. A database's
// checkpoints have one owner at a time; a second one is refused.
func (h *Host) TakeOverCheckpoints(id, owner string) (giveBack func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, taken := h.ckptOwners[id]; taken {
		return nil, &snapdeck.Error{Code: snapdeck.Conflict, Reason: "checkpoints-taken",
			Message: fmt.Sprintf("The checkpoints of database %s are already taken by %s.", id, cur)}
	}
	h.ckptOwners[id] = owner
	if p, ok := h.pools[id]; ok {
		p.ckpt.StandAside()
	}
	h.logger.Info("checkpoints taken over", "database_id", id, "owner", owner)
	var given bool
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if given {
			return
		}
		given = true
		delete(h.ckptOwners, id)
		if p, ok := h.pools[id]; ok {
			p.ckpt.Resume()
		}
		h.logger.Info("checkpoints given back", "database_id", id, "owner", owner)
	}, nil
}

// OnCommit has f told of every run of user SQL that may have committed,
// with its database's id: a Query-tab run before it returns (wait), a
// lease's Nudge without waiting, as a lease may commit thousands of times
// a second. A point-in-time replicator reads the WAL there, so that the
// time it gives a Query-tab commit is before anyone saw it committed. Set
// it once, before serving.
func (h *Host) OnCommit(f func(ctx context.Context, id string, wait bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.committed = f
}

// commit tells OnCommit's function of a commit to database id.
func (h *Host) commit(ctx context.Context, id string, wait bool) {
	h.mu.Lock()
	f := h.committed
	h.mu.Unlock()
	if f != nil {
		f(ctx, id, wait)
	}
}
