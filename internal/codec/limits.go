package codec

// Limits applied to every CBOR item decoded from untrusted bytes. They are
// deliberately small: the largest legitimate SDA message is an operation
// request carrying an access token, a few hundred bytes long.
const (
	// MaxDepth is the deepest nesting of arrays, maps and tags accepted.
	// The deepest legitimate structure (a structured scope inside the
	// claims) nests 5 levels.
	MaxDepth = 16

	// MaxArrayLength is the largest number of elements in one array.
	MaxArrayLength = 64

	// MaxMapPairs is the largest number of key/value pairs in one map.
	MaxMapPairs = 32

	// MaxStringLength is the largest byte or text string accepted.
	MaxStringLength = 16 << 10

	// MaxInputSize is the largest encoded item accepted by the decoders.
	// Transports and the device agent apply their own, usually smaller,
	// message size limits before bytes reach this package.
	MaxInputSize = 64 << 10
)
