package schedule

import (
	"context"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

func TestSystemChangeSnapshotsEveryDatabaseOnce(t *testing.T) {
	e := mustEnv(t, hourly())
	ctx := context.Background()
	running := e.create("running", snapdeck.PlanFree)
	paused := e.create("paused", snapdeck.PlanEnterprise)
	setStatus(t, e, paused.ID, snapdeck.StatusPaused)
	failed := e.create("failed", snapdeck.PlanFree)
	setStatus(t, e, failed.ID, snapdeck.StatusFailed)

	starts := []struct {
		version, sqlite, want string
	}{
		{"1.2.3", "3.50.0", ""}, // first start: nothing to compare with
		{"1.2.3", "3.50.0", ""},
		{"1.3.0", "3.50.0", "System upgrade 1.2.3 -> 1.3.0"},
		{"1.3.0", "3.51.1", "System upgrade SQLite 3.50.0 -> 3.51.1"},
		{"1.4.0", "3.52.0", "System upgrade 1.3.0 -> 1.4.0, SQLite 3.51.1 -> 3.52.0"},
	}
	var want []string
	for _, st := range starts {
		e.clock.Advance(time.Hour)
		s := e.scheduler(Config{Version: st.version, SQLiteVersion: st.sqlite})
		got, err := s.SystemChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Errorf("start %s/%s: reason %q, want %q", st.version, st.sqlite, got, st.want)
		}
		if st.want != "" {
			want = append([]string{st.want}, want...)
		}
		for _, d := range []snapdeck.Database{running, paused} {
			var reasons []string
			for _, r := range e.snapshots(d.ID) {
				if r.Type != snapdeck.SnapshotScheduled || r.Status != snapdeck.SnapshotCompleted {
					t.Errorf("%s: snapshot %s %s, want Scheduled completed", d.Name, r.Type, r.Status)
				}
				reasons = append(reasons, r.Reason)
			}
			if len(reasons) != len(want) || (len(want) > 0 && reasons[0] != want[0]) {
				t.Errorf("after start %s/%s, %s has %q, want %q", st.version, st.sqlite, d.Name, reasons, want)
			}
		}
		if n := len(e.snapshots(failed.ID)); n != 0 {
			t.Errorf("failed database got %d snapshots, want none: it has no data to protect", n)
		}
	}
}
