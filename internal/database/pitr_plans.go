package database

import (
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// PITRWindows is how much point-in-time history each plan keeps as this
// console runs it (--pitr-*); a plan missing keeps none. The console says
// which plans have a window to a database whose plan has none.
func (ss *Snapshots) PITRWindows() map[snapdeck.Plan]time.Duration {
	out := make(map[snapdeck.Plan]time.Duration, len(snapdeck.Plans))
	for _, plan := range snapdeck.Plans {
		if w := ss.pitrWindow(plan); w > 0 {
			out[plan] = w
		}
	}
	return out
}
