package dataplane

import "time"

// OnEnd tells f of every stream that ends, for tests that wait for an
// idle stream to expire.
func (s *Server) OnEnd(f func()) { s.onEnd = f }

// SetClock replaces the clock that ages the statuses read.
func (s *Server) SetClock(now func() time.Time) { s.now = now }

// StatusTTL is how long a status read is believed for an open stream.
const StatusTTL = statusTTL
