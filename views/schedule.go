package views

import "time"

// ScheduleInfo is what the Settings tab shows of a database's snapshot
// schedule.
type ScheduleInfo struct {
	// Text is the override in the form: the stored one, or what the user
	// typed when it was refused.
	Text string
	// PlanDefault is the plan's cadence in words, e.g. "every 1h".
	PlanDefault string
	// Problem says why the stored override cannot be used and the plan's
	// cadence runs instead; empty when it is in use or there is none.
	Problem string
	// Next is when the next Scheduled snapshot is due; zero when unknown.
	Next time.Time
	Now  time.Time
}
