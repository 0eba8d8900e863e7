package token

import "crypto"

// SignedRequestAlgorithm gives the external tests the algorithm named in a
// request's protected header.
func SignedRequestAlgorithm(r *SignedRequest) Algorithm { return r.algorithm() }

// ExportSignSign1 signs payload as a tagged COSE_Sign1 without external
// data, as tokens are signed: the tests use it to build status updates
// whose payload SignStatus would not make, and one signed without the
// status AAD.
func ExportSignSign1(payload []byte, key crypto.Signer) ([]byte, error) {
	return signSign1(tagSign1Prefix, payload, key, nil, nil, 0)
}

// ExportSignStatusPayload signs payload with the status AAD.
func ExportSignStatusPayload(payload []byte, key crypto.Signer) ([]byte, error) {
	return signSign1AAD(tagSign1Prefix, payload, key, nil, nil, 0, statusAAD)
}
