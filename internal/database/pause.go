package database

import (
	"context"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// Pause stops a running database from serving: its connections close and
// queries are refused until Resume. Its file and snapshots stay.
func (m *Manager) Pause(ctx context.Context, id string) (snapdeck.Database, error) {
	d, err := m.db.TransitionDatabase(ctx, id, []snapdeck.Status{snapdeck.StatusRunning}, snapdeck.StatusPaused)
	if err != nil {
		return d, err
	}
	m.stopPITR(ctx, id)
	if err := m.host.CloseDatabase(ctx, id); err != nil {
		// The status already refuses queries; an unclosed pool only holds
		// file handles until the next restart.
		m.logger.Warn("close paused database", "database_id", id, "err", err)
	}
	m.logger.Info("database paused", "database_id", id)
	d.SizeBytes = m.host.Size(id)
	return d, nil
}

// Resume lets a paused database serve again.
func (m *Manager) Resume(ctx context.Context, id string) (snapdeck.Database, error) {
	d, err := m.db.TransitionDatabase(ctx, id, []snapdeck.Status{snapdeck.StatusPaused}, snapdeck.StatusRunning)
	if err != nil {
		return d, err
	}
	m.startPITR(ctx, d)
	m.logger.Info("database resumed", "database_id", id)
	d.SizeBytes = m.host.Size(id)
	return d, nil
}
