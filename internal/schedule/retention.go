package schedule

import (
	"context"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/store"
)

// sweepBatch bounds one query of the sweeper, so a backlog (a first start
// after months) is worked through without holding thousands of rows.
const sweepBatch = 500

// reclaimEvery is how often the snapshot store is swept even when
// retention deleted nothing: prepared exports age out meanwhile.
const reclaimEvery = time.Hour

// Sweep applies retention: it deletes every snapshot past its expiry and,
// on the free plan, every completed snapshot but the latest, then reclaims
// the storage nothing references any more. The latest completed snapshot
// of a live database is never deleted: the queries leave it out and
// Snapshots.DeleteSnapshot refuses it besides. It returns how many snapshots
// it deleted and how many bytes it reclaimed.
func (s *Scheduler) Sweep(ctx context.Context) (deleted int, reclaimed int64, err error) {
	now := s.clock.Now()
	defer func() { s.cfg.Metrics.Swept(deleted, reclaimed, err) }()
	for _, find := range []func() ([]store.SnapshotRecord, error){
		func() ([]store.SnapshotRecord, error) { return s.cfg.Store.FindExpiredSnapshots(ctx, now, sweepBatch) },
		func() ([]store.SnapshotRecord, error) {
			return s.cfg.Store.FindSupersededFreeSnapshots(ctx, sweepBatch)
		},
	} {
		for {
			recs, err := find()
			if err != nil {
				return deleted, 0, err
			}
			n := 0
			for _, r := range recs {
				switch err := s.cfg.Snapshots.DeleteSnapshot(ctx, r.ID); snapdeck.ErrorCode(err) {
				case snapdeck.Conflict, snapdeck.NotFound:
					// Became the latest since the query, or already gone.
				default:
					if err != nil {
						return deleted, 0, err
					}
					n++
					s.logger.Info("snapshot deleted by retention", "database_id", r.DatabaseID, "snapshot_id", r.ID,
						"type", r.Type, "created", r.CreatedAt, "expired", r.ExpiresAt)
				}
			}
			deleted += n
			if len(recs) < sweepBatch || n == 0 {
				break
			}
		}
	}
	s.mu.Lock()
	due := deleted > 0 || now.Sub(s.reclaim) >= reclaimEvery
	if due {
		s.reclaim = now
	}
	s.mu.Unlock()
	if due {
		s.giveWay(ctx)
		reclaimed, err = s.cfg.Snapshots.Reclaim(ctx)
		if err != nil {
			return deleted, reclaimed, err
		}
	}
	if deleted > 0 {
		s.logger.Info("retention sweep", "deleted", deleted, "reclaimed_bytes", reclaimed)
	}
	return deleted, reclaimed, nil
}

// giveWay waits until no job of the console runs (Config.Quiet), for at
// most Config.ReclaimGiveWay. At the housekeeping's first run, a minute
// after the start, the reclaim landed in whatever a user was waiting for:
// in BenchmarkConsole at 1 GiB, the export, with 0.28 of its 3.4 CPU-s.
func (s *Scheduler) giveWay(ctx context.Context) {
	if s.cfg.Quiet == nil {
		return
	}
	budget := s.cfg.ReclaimGiveWay
	if budget <= 0 {
		budget = time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	_ = s.cfg.Quiet.WaitQuiet(wctx)
}
