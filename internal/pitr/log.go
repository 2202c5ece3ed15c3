package pitr

import (
	"context"
	"log/slog"
)

// quieter is a slog.Handler that logs Litestream's lines through the
// console's logger, its Info lines at Debug: Litestream tells of every
// snapshot, compaction and retention pass ("snapshot complete", "l0
// retention enforced"), several a minute per replicated database with a
// short window, which would flood the console's log. Its warnings and
// errors keep their level.
type quieter struct{ slog.Handler }

// litestreamLogger is logger for Litestream's own lines.
func litestreamLogger(logger *slog.Logger) *slog.Logger {
	return slog.New(quieter{logger.Handler()})
}

func (q quieter) level(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}

// Enabled implements slog.Handler.
func (q quieter) Enabled(ctx context.Context, l slog.Level) bool {
	return q.Handler.Enabled(ctx, q.level(l))
}

// Handle implements slog.Handler.
func (q quieter) Handle(ctx context.Context, r slog.Record) error {
	r.Level = q.level(r.Level)
	return q.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (q quieter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quieter{q.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (q quieter) WithGroup(name string) slog.Handler {
	return quieter{q.Handler.WithGroup(name)}
}
