package pitr_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/checkpoint"
	"github.com/snapdeck/snapdeck/internal/pitr"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// logged keeps the lines a handler was given, and closes snapshot when
// Litestream's "snapshot complete" comes.
type logged struct {
	mu       sync.Mutex
	lines    []slog.Record
	snapshot chan struct{}
	once     sync.Once
}

func (l *logged) handler() slog.Handler { return &captured{l: l} }

type captured struct {
	l     *logged
	attrs []slog.Attr
}

func (c *captured) Enabled(context.Context, slog.Level) bool { return true }
func (c *captured) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(c.attrs...)
	c.l.mu.Lock()
	c.l.lines = append(c.l.lines, r)
	c.l.mu.Unlock()
	if r.Message == "snapshot complete" && c.l.snapshot != nil {
		c.l.once.Do(func() { close(c.l.snapshot) })
	}
	return nil
}
func (c *captured) WithAttrs(as []slog.Attr) slog.Handler {
	return &captured{l: c.l, attrs: append(append([]slog.Attr{}, c.attrs...), as...)}
}
func (c *captured) WithGroup(string) slog.Handler { return c }

// TestLitestreamLogsThroughTheConfigLogger replicates a database until
// Litestream takes a snapshot: its lines reach the Config's Logger, its
// Info lines at Debug, tagged with the database, and none reaches slog's
// default logger.
func TestLitestreamLogsThroughTheConfigLogger(t *testing.T) {
	ctx := context.Background()
	def := &logged{}
	prev := slog.Default()
	slog.SetDefault(slog.New(def.handler()))
	t.Cleanup(func() { slog.SetDefault(prev) })
	ours := &logged{snapshot: make(chan struct{})}

	dir := t.TempDir()
	path := filepath.Join(dir, "db.sqlite")
	w := openWriter(t, path)
	if _, err := w.Exec("CREATE TABLE t(n); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	ck := checkpoint.New(w, nil)
	defer ck.Close()
	blobs, err := snapstore.NewLocal(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	reps, err := pitr.New(pitr.Config{Blobs: blobs, Checkpoints: checkpointsOf{ck}, Interval: 100 * time.Millisecond,
		Logger: slog.New(ours.handler())})
	if err != nil {
		t.Fatal(err)
	}
	// A one-second window snapshots at every whole second.
	if err := reps.Start(ctx, "db1", path, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec("INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	reps.Committed(ctx, "db1", true)
	select {
	case <-ours.snapshot:
	case <-time.After(30 * time.Second): // only turns a hang into a failure
		t.Fatal("no snapshot complete in the Config's logger after 30 s")
	}
	if err := reps.Close(ctx); err != nil {
		t.Fatal(err)
	}

	ours.mu.Lock()
	defer ours.mu.Unlock()
	for _, r := range ours.lines {
		if r.Message != "snapshot complete" {
			continue
		}
		if r.Level != slog.LevelDebug {
			t.Errorf("snapshot complete logged at %s, want DEBUG", r.Level)
		}
		tagged := false
		r.Attrs(func(a slog.Attr) bool {
			tagged = tagged || a.Key == "database_id" && a.Value.String() == "db1"
			return true
		})
		if !tagged {
			t.Errorf("snapshot complete without database_id=db1")
		}
	}
	def.mu.Lock()
	defer def.mu.Unlock()
	for _, r := range def.lines {
		t.Errorf("slog's default logger got %s %q", r.Level, r.Message)
	}
}
