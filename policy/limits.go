package policy

import (
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// Limits on records and requests. They bound the memory and work that one
// record or request can cost. A token request is held to the limits that
// [token.AccessRequest.Validate] checks, those of the original service
// (docs/PROTOCOL.md section 9, "Token endpoint"): [token.MaxAudiences]
// audience entries of at most [token.MaxAudienceValueLength] characters
// after the prefix, [token.MaxScopeItems] operations named by at most
// [token.MaxNameLength] characters; an operation name in a policy rule has
// the same bound.
const (
	// DefaultMaxRateTracked is the number of client addresses, and of API
	// keys, that a [RateLimit] tracks when its MaxTracked is zero: about
	// 200 bytes each.
	DefaultMaxRateTracked = 10000

	// MinTokenLifetime and MaxTokenLifetime bound [Policy].TokenLifetime.
	// The original service's policies allowed one hour at least; one
	// minute lets a policy grant the short-lived tokens the SDK
	// recommends, in both profiles (docs/PROTOCOL.md section 9, "Policy
	// model": no deployed client or device depends on the hour). A device
	// accepts a token up to its leeway after exp (device.DefaultLeeway,
	// 300 s as in SDA v1), so a token shorter than the leeway is usable
	// for its lifetime plus the leeway.
	MinTokenLifetime = time.Minute
	MaxTokenLifetime = 999 * 24 * time.Hour

	maxIDLen           = 128
	maxNameLen         = 256
	maxDescriptionLen  = 4096
	maxListLen         = 1000                 // subjects, device ids, endpoint names per policy; groups per subject
	maxRules           = 100                  // operation rules per policy
	maxConstraints     = token.MaxConstraints // constraints per operation rule
	maxArgIndex        = token.MaxArgs - 1    // highest argument index a constraint may name
	maxOneOf           = token.MaxSetValues   // values in a one_of constraint
	maxArgValueLen     = 256                  // text and byte-string argument values
	maxAttributes      = 32                   // attributes per device, attribute keys per selector
	maxAttrValues      = 100                  // values per attribute key in a selector
	maxAttrKeyLen      = 64
	maxAttrValueLen    = 256
	maxTokenBodyBytes  = 64 << 10 // POST /ace-auth/token body
	maxAdminBodyBytes  = 1 << 20  // administration API bodies
	maxCnfPEMBytes     = 8 << 10
	maxBearerLen       = 512 // bytes of a bearer credential
	maxChangesPerApply = 10000
	maxDelegationDepth = token.MaxDelegationDepth // a policy's delegation max_depth
	maxTokenIDBytes    = 64                       // a cti in the ledger and in revocations
	maxKeyIDBytes      = 64                       // an anchor key id in the ledger and in revocations
)

// Limits of the what-if, diff and change history (docs/PROTOCOL.md
// section 9, "What-if and diff").
const (
	// DefaultImpactDetails and MaxImpactDetails bound the (subject,
	// device, operation) triples an [Impact] lists in Details; the counts
	// and the summary cover all of them.
	DefaultImpactDetails = 100
	MaxImpactDetails     = 10000

	// MaxImpactChanges bounds the changes of one [Engine.WhatIf].
	MaxImpactChanges = 1000

	// MaxHistory is the number of applied changes whose previous records
	// a [Service] keeps, so that it can rebuild the state at an earlier
	// sequence number for [Service.Diff]: the changes it applied itself
	// and those it followed from its Store since it last loaded a
	// snapshot. Each entry holds one record, so the history holds at most
	// MaxHistory records.
	MaxHistory = 10000
	// MaxHistoryBytes bounds the size of the records the history holds,
	// as encoded in JSON: the oldest entries are dropped beyond it too.
	MaxHistoryBytes = 16 << 20

	maxImpactSummary = 1000    // summary rows of an Impact
	maxImpactPairs   = 1 << 22 // (subject class, device class) pairs one impact evaluates
	maxChangeLog     = 1000    // entries of one page of GET /admin/v1/changes
)

// Limits of the owner's tools: explain, policy tests and groups
// (docs/PROTOCOL.md section 9, "Explain and policy tests").
const (
	// maxNearMisses bounds the near misses Explain reports per denied pair.
	maxNearMisses = 3
	// maxNearMissCandidates bounds the policies Explain examines, per
	// denied pair, when it looks for near misses: the cost of an
	// explanation does not grow with the number of policies.
	maxNearMissCandidates = 64

	// maxPolicyTests bounds the tests of one policy test suite.
	maxPolicyTests = 1000
	// maxPolicyTestChecks bounds the (subject, device, operation) triples
	// that one run of a test suite decides: about 2 µs each, with the
	// engine's read lock held.
	maxPolicyTestChecks = 100000
	// maxPolicyTestLookups bounds the directory entries (subjects scanned
	// for a group's members, devices scanned or looked up for a selector
	// or audience) that one run of a test suite examines to find what its
	// tests decide, even when they select nothing: about 40 ns each.
	maxPolicyTestLookups = 1000000
	// maxTestFailures bounds the failures a test result lists.
	maxTestFailures = 5
	// maxMembershipAttempts bounds the times a group membership change
	// reads and writes its subject when the subject keeps changing
	// meanwhile.
	maxMembershipAttempts = 8
)
