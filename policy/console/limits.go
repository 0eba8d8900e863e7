package console

import "time"

// Defaults of [Options]. They bound what the console keeps in memory and
// how long a signed-in administrator stays signed in.
const (
	// DefaultIdleTimeout ends a session not used for this long.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMaxLifetime ends a session this long after sign-in, used or not.
	DefaultMaxLifetime = 12 * time.Hour
	// DefaultMaxSessions bounds the sessions held at once: about 300 bytes
	// each. When it is reached, expired sessions are swept and then the
	// least recently used one ends.
	DefaultMaxSessions = 1000
	// DefaultSignInFailures failed sign-ins from one client address within
	// DefaultSignInWindow make further attempts from it wait (429) until
	// the window ends.
	DefaultSignInFailures = 10
	// DefaultSignInWindow is the window of DefaultSignInFailures.
	DefaultSignInWindow = 10 * time.Minute
)

const (
	sessionIDBytes   = 32 // 256-bit session ids
	csrfTokenBytes   = 32
	maxAPIKeyLen     = 512     // bytes of an API key typed at sign-in (policy's bearer bound)
	maxFormBytes     = 1 << 20 // a form body; the API's own bound on JSON bodies
	maxAPIResponse   = 8 << 20 // bytes of one answer of the administration API kept
	maxTrackedIPs    = 10000   // client addresses the sign-in limiter tracks
	pageSize         = 50      // records per list page
	searchPageSize   = 1000    // records per API page while searching (the API's maximum)
	maxSearchScanned = 20000   // records a search reads at most before it stops
	maxLines         = 1000    // entries in one multi-line form field
)
