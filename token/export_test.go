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

// ExportSignLinkRaw builds a link from the given raw header bytes and
// payload, signed with key under parentHash as SignLink signs (so that only
// the structure is at fault): the tests use it for links SignLink would not
// make.
func ExportSignLinkRaw(protected, unprotected, payload []byte, parentHash [32]byte, key crypto.Signer) ([]byte, error) {
	alg, err := AlgorithmFor(key.Public())
	if err != nil {
		return nil, err
	}
	var aad [14 + 32]byte
	sig, err := sign(key, alg, sigStructure(protected, linkAAD(&aad, parentHash), payload), nil)
	if err != nil {
		return nil, err
	}
	out := appendBstr([]byte{0x84}, protected)
	out = append(out, unprotected...)
	out = appendBstr(out, payload)
	return appendBstr(out, sig), nil
}

// ExportLinkPayload returns the encoded payload of l, as SignLink signs it.
func ExportLinkPayload(l *Link) ([]byte, error) { return encodeLinkClaims(l) }
