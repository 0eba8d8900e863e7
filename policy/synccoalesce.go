package policy

import "context"

// A Service with MaxStaleness 0 reads its Store's changes before every
// decision. Under load, the callers that arrive while one read is in
// flight queue on syncMu; instead of each reading the Store again in
// turn, they share the first read that starts after they arrived, which
// sees everything committed before any of them came. So n concurrent
// decisions cost at most two reads, not n, and a request that both
// authenticates and decides (a token request) reads once: the request's
// arrival, recorded by the token endpoint in its context once the request
// is complete (its body read), is what both ask to be up to date with. Admin requests do not record it: one that finds
// a conflict reads the Store again to answer it, and must see what is
// there by then.

// syncMark returns the caller's arrival, to pass to syncAfter: the number
// of Store reads started so far.
func (s *Service) syncMark() uint64 { return s.syncStarts.Load() }

// syncArrivalKey is the context key of a request's arrival.
type syncArrivalKey struct{}

// syncArrival is a request's arrival at the Service s.
type syncArrival struct {
	s    *Service
	mark uint64
}

// withArrival returns ctx recording that a request arrives at s now.
func (s *Service) withArrival(ctx context.Context) context.Context {
	return context.WithValue(ctx, syncArrivalKey{}, syncArrival{s, s.syncMark()})
}

// arrival returns the arrival withArrival recorded in ctx for s, else now.
func (s *Service) arrival(ctx context.Context) uint64 {
	if a, ok := ctx.Value(syncArrivalKey{}).(syncArrival); ok && a.s == s {
		return a.mark
	}
	return s.syncMark()
}
