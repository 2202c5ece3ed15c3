package dataplane

// OnEnd tells f of every stream that ends, for tests that wait for an
// idle stream to expire.
func (s *Server) OnEnd(f func()) { s.onEnd = f }
