package policy

// A Service with MaxStaleness 0 reads its Store's changes before every
// decision. Under load, the callers that arrive while one read is in
// flight queue on syncMu; instead of each reading the Store again in
// turn, they share the first read that starts after they arrived, which
// sees everything committed before any of them came. So n concurrent
// decisions cost at most two reads, not n. A caller arrives when it calls
// sync: the token endpoint decides once it has read the request's body,
// so that a change acknowledged while a client was still sending it holds
// for the decision.

// syncMark returns the caller's arrival, to pass to syncAfter: the number
// of Store reads started so far.
func (s *Service) syncMark() uint64 { return s.syncStarts.Load() }
