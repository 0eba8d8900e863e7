package token

// SignedRequestAlgorithm gives the external tests the algorithm named in a
// request's protected header.
func SignedRequestAlgorithm(r *SignedRequest) Algorithm { return r.algorithm() }
