package pkcs11

// Limits on what this package reads. They bound the memory one URI or PIN
// can cost.
const (
	// MaxURILength bounds the length of a PKCS#11 URI in bytes.
	MaxURILength = 4096
	// MaxPINLength bounds a PIN in bytes (after the line end is removed).
	MaxPINLength = 256
	// MaxIDLength bounds the decoded id attribute (CKA_ID) in bytes.
	MaxIDLength = 64

	// generatedIDLength is the length of the random CKA_ID Generate
	// gives a key whose URI names no id.
	generatedIDLength = 16
)
