package schedule

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Where the versions of the previous start are kept in the store's meta.
const (
	metaVersion = "console_version"
	metaSQLite  = "sqlite_version"
)

// SystemChange compares the running console and SQLite versions with the
// ones recorded at the previous start. When either differs it takes a
// Scheduled snapshot, "System upgrade A -> B", of every database that has
// data to protect (running or paused), at most Workers at a time, and
// returns when all have ended; then it records the running versions. The
// caller runs it before the console listens, so no database serves a query
// under the new system before it was snapshotted. A snapshot that still
// fails after its retries is logged and counted; the database serves all
// the same. The first start only records the versions.
func (s *Scheduler) SystemChange(ctx context.Context) (reason string, err error) {
	prevV, err := s.cfg.Store.Meta(ctx, metaVersion)
	if err != nil {
		return "", err
	}
	prevS, err := s.cfg.Store.Meta(ctx, metaSQLite)
	if err != nil {
		return "", err
	}
	if prevV == "" && prevS == "" {
		return "", s.recordVersions(ctx)
	}
	var changes []string
	if prevV != s.cfg.Version {
		changes = append(changes, fmt.Sprintf("%s -> %s", orUnknown(prevV), s.cfg.Version))
	}
	if prevS != s.cfg.SQLiteVersion {
		changes = append(changes, fmt.Sprintf("SQLite %s -> %s", orUnknown(prevS), s.cfg.SQLiteVersion))
	}
	if len(changes) == 0 {
		return "", nil
	}
	reason = "System upgrade " + strings.Join(changes, ", ")
	dbs, err := s.cfg.Store.FindDatabases(ctx)
	if err != nil {
		return reason, err
	}
	s.logger.Info("system changed; snapshotting every database before serving", "reason", reason, "databases", len(dbs))
	ids := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := s.run(ctx, id, onUpgrade, reason); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		}()
	}
	for _, d := range dbs {
		if d.Status == snapdeck.StatusRunning || d.Status == snapdeck.StatusPaused {
			select {
			case ids <- d.ID:
			case <-ctx.Done():
			}
		}
	}
	close(ids)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return reason, err
	}
	if failed > 0 {
		s.logger.Error("system upgrade snapshots failed for some databases; they serve without one", "failed", failed, "reason", reason)
	}
	return reason, s.recordVersions(ctx)
}

func (s *Scheduler) recordVersions(ctx context.Context) error {
	if err := s.cfg.Store.SetMeta(ctx, metaVersion, s.cfg.Version); err != nil {
		return err
	}
	return s.cfg.Store.SetMeta(ctx, metaSQLite, s.cfg.SQLiteVersion)
}

func orUnknown(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}
