package token

import (
	"fmt"
	"slices"

	"github.com/securedeviceaccess/sda/internal/codec"
)

// Delegation is the delegation claim of a v2 token (claim key -65537,
// docs/PROTOCOL.md section 13): the owner's permission for the holder to
// pass a narrower part of the token on to other keys, offline, by signing
// links ([Delegate]).
//
//	Delegation = {1: depth: uint, ? 2: operations: [+ tstr]}
type Delegation struct {
	// Depth is how many links may follow the token, 1 to
	// MaxDelegationDepth.
	Depth int
	// Operations names the permissions of the token's scope that may be
	// passed on: a link may pass on a permission only when its operation
	// is listed, and an AllOperations permission only when the list is
	// nil. nil: every permission of the scope. 1 to MaxScopeItems valid
	// operation names, no repeats.
	Operations []string
}

// Delegation claim map keys.
const (
	delegationDepth      = 1
	delegationOperations = 2
)

func (d *Delegation) clone() *Delegation {
	if d == nil {
		return nil
	}
	return &Delegation{Depth: d.Depth, Operations: slices.Clone(d.Operations)}
}

// validate checks d for a token of scope s: each listed operation must be
// the name of one of its permissions, or s must hold an AllOperations
// permission.
func (d *Delegation) validate(s Scope) error {
	if d.Depth < 1 || d.Depth > MaxDelegationDepth {
		return invalid("delegation depth %d, want 1..%d", d.Depth, MaxDelegationDepth)
	}
	if d.Operations == nil {
		return nil
	}
	if err := checkOperationList(d.Operations); err != nil {
		return invalid("delegation operations: %v", err)
	}
	if err := d.checkScope(s); err != nil {
		return invalid("delegation operations: %v", err)
	}
	return nil
}

// checkScope reports an operation of d's list that is not the name of a
// permission of s, when s holds no AllOperations permission.
func (d *Delegation) checkScope(s Scope) error {
	names := s.Names()
	if slices.Contains(names, AllOperations) {
		return nil
	}
	for _, op := range d.Operations {
		if !slices.Contains(names, op) {
			return fmt.Errorf("operation %q is not in the scope %v", op, s)
		}
	}
	return nil
}

func checkOperationList(ops []string) error {
	if len(ops) == 0 || len(ops) > MaxScopeItems {
		return fmt.Errorf("%d operations, want 1..%d", len(ops), MaxScopeItems)
	}
	for i, op := range ops {
		if err := ValidateName(op); err != nil {
			return err
		}
		if slices.Contains(ops[:i], op) {
			return fmt.Errorf("operation %q repeated", op)
		}
	}
	return nil
}

// append appends the claim's value, deterministically encoded.
func (d *Delegation) append(b []byte) []byte {
	if d.Operations == nil {
		b = append(b, 0xa1)
		return codec.AppendUint(codec.AppendUint(b, delegationDepth), uint64(d.Depth))
	}
	b = append(b, 0xa2)
	b = codec.AppendUint(codec.AppendUint(b, delegationDepth), uint64(d.Depth))
	b = codec.AppendHead(codec.AppendUint(b, delegationOperations), 4, uint64(len(d.Operations)))
	for _, op := range d.Operations {
		b = codec.AppendText(b, op)
	}
	return b
}

// decodeDelegation decodes the claim strictly: keys 1 and 2 only, in
// order, each once, depth 1..MaxDelegationDepth, a valid operation list.
func decodeDelegation(f string, raw []byte) (*Delegation, error) {
	var vals [delegationOperations + 1][]byte
	if err := readIntKeyMap(f, raw, vals[:]); err != nil {
		return nil, err
	}
	if vals[delegationDepth] == nil {
		return nil, malformed(f+".depth", "missing")
	}
	depth, err := codec.ReadUint(vals[delegationDepth])
	if err != nil {
		return nil, wrapMalformed(f+".depth", err)
	}
	if depth < 1 || depth > MaxDelegationDepth {
		return nil, malformed(f+".depth", "%d, want 1..%d", depth, MaxDelegationDepth)
	}
	d := &Delegation{Depth: int(depth)}
	if v := vals[delegationOperations]; v != nil {
		if d.Operations, err = readTextArray(f+".operations", v, MaxScopeItems); err != nil {
			return nil, err
		}
		if err := checkOperationList(d.Operations); err != nil {
			return nil, malformed(f+".operations", "%v", err)
		}
	}
	return d, nil
}

// readTextArray reads an array of 1 to max text strings.
func readTextArray(f string, v []byte, max int) ([]string, error) {
	items, err := readEntries(f, v, max)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		if out[i], err = codec.ReadText(it); err != nil {
			return nil, wrapMalformed(f, err)
		}
	}
	return out, nil
}
