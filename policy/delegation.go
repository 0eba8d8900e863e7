package policy

import (
	"slices"
	"strconv"
)

// DelegationRule says whether and how far the holder of a token that a
// policy grants may delegate it: create, offline, a signed link that
// passes part of the token's scope on to another key (docs/PROTOCOL.md
// section 9, "Delegation"). The service puts what the policies of a
// decision allow into the token's delegation claim, in the v2 profile
// only: a v1 token is never delegable.
type DelegationRule struct {
	// MaxDepth is how many links may follow the token, 1 to 4
	// (token.MaxDelegationDepth): 1 lets the holder delegate, 2 also lets
	// the delegate delegate again, and so on.
	MaxDepth int `json:"max_depth"`
	// Operations names the operations of the policy that may be passed
	// on; nil means every operation the policy grants. Each must be an
	// operation the policy names, or any operation name when the policy
	// has an [AllOperations] rule; [AllOperations] itself is not allowed
	// (leave the list out instead).
	Operations []string `json:"operations,omitempty"`
}

// validateDelegation checks p.Delegation.
func (p *Policy) validateDelegation(f *fieldErrs) {
	d := p.Delegation
	if d == nil {
		return
	}
	if p.Effect == Deny {
		f.add("delegation", "not allowed in deny policies: only a grant can be passed on")
		return
	}
	if d.MaxDepth < 1 || d.MaxDepth > maxDelegationDepth {
		f.add("delegation.max_depth", "must be between 1 and %d", maxDelegationDepth)
	}
	if d.Operations == nil {
		return
	}
	if len(d.Operations) == 0 || len(d.Operations) > maxRules {
		f.add("delegation.operations", "1 to %d operation names, or leave it out for every operation of the policy", maxRules)
		return
	}
	checkIDList(f, "delegation.operations", d.Operations, checkOperationName)
	wildcard := slices.ContainsFunc(p.Operations, func(r OperationRule) bool { return r.Name == AllOperations })
	for i, op := range d.Operations {
		if !wildcard && op != AllOperations && !slices.ContainsFunc(p.Operations, func(r OperationRule) bool { return r.Name == op }) {
			f.add("delegation.operations["+strconv.Itoa(i)+"]", "%q is not an operation of the policy", op)
		}
	}
}

// delegates reports whether the policy lets its grant of op be passed on.
func (p *Policy) delegates(op string) bool {
	return p.Delegation != nil && (p.Delegation.Operations == nil || slices.Contains(p.Delegation.Operations, op))
}

// delegationOf returns a copy of the policy's delegation when it lets
// its grant of op be passed on, or nil.
func (p *Policy) delegationOf(op string) *DelegationRule {
	if !p.delegates(op) {
		return nil
	}
	return &DelegationRule{MaxDepth: p.Delegation.MaxDepth, Operations: slices.Clone(p.Delegation.Operations)}
}
