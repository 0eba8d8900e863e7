package token

// Limits of the scope language and of operations (docs/PROTOCOL.md sections 5
// and 9: scope 1..20 items, each at most 60 characters).
const (
	MaxScopeItems     = 20 // permissions in one scope
	MaxNameLength     = 60 // characters in an operation name
	MaxConstraints    = 8  // constraints in one permission
	MaxSetValues      = 16 // values in one OneOf constraint
	MaxArgs           = 16 // arguments in one operation
	MaxArgBytes       = 1024
	MaxAudiences      = 50 // entries in aud
	MaxAudienceLength = 80 // bytes in one aud entry (a prefix plus at most 60 characters)

	// MaxAudienceValueLength is the most characters after the prefix of
	// an aud entry in an [AccessRequest].
	MaxAudienceValueLength = 60
	MaxTokenSize           = 1536 // bytes of an encoded access token

	// MinV1ScopeLength is the shortest text scope, in bytes, that [Issue]
	// puts in an SDA v1 token: deployed devices refuse a token whose scope
	// is a single byte (one operation named by one character).
	MinV1ScopeLength = 2

	// MaxCNonceLength is the most bytes of a cnonce claim (v2).
	MaxCNonceLength = 32

	// MaxScopeTextLength is the most bytes [ParseScopeText] reads: more
	// than [Scope.String] prints for the scope of any token of at most
	// [MaxTokenSize] bytes (each byte of a scope's encoding prints as at
	// most four characters).
	MaxScopeTextLength = 16 << 10
)

// Limits of delegation (docs/PROTOCOL.md section 13).
const (
	// MaxDelegationDepth is the most links below a token: the largest
	// depth of a delegation claim, and the most links of a [Chain].
	MaxDelegationDepth = 4
	// MaxLinkSubjectLength is the most bytes of a link's sub.
	MaxLinkSubjectLength = 256
	// MaxLinkSize is the most bytes of one encoded link.
	MaxLinkSize = MaxTokenSize
	// MaxChainSize is the most bytes of an encoded [Chain].
	MaxChainSize = 1 + MaxDelegationDepth*MaxLinkSize
	// MaxDelegatedTokenSize is the most bytes of an encoded
	// [DelegatedToken].
	MaxDelegatedTokenSize = 1 + 3 + MaxTokenSize + MaxChainSize
)

// pointMemoSize bounds the process-wide memo of decompressed points
// (pointmemo.go): the 256 link keys and compressed cnf keys used most
// recently, some 64 KiB at most.
const pointMemoSize = 256
