package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/securedeviceaccess/sda/token"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	dev1 = "0123456789abcdef0123456789abcdef"
	dev2 = "fedcba9876543210fedcba9876543210"
	dev3 = "00000000000000000000000000000003"
)

// directory used by the semantic tests.
func testDirectory() []Change {
	return []Change{
		PutSubject(&Subject{ID: "alice", Kind: User, Groups: []string{"techs"}}),
		PutSubject(&Subject{ID: "bob", Kind: User, Groups: []string{"contractors", "techs-east"}}),
		PutSubject(&Subject{ID: "carol", Kind: User}),
		PutSubject(&Subject{ID: "tool", Kind: Application, Groups: []string{"automation"}}),
		PutDevice(&Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof", "model": "x"}}),
		PutDevice(&Device{ID: dev2, EndpointName: "hvac-2", Attributes: map[string]string{"site": "basement", "model": "x"}}),
		PutDevice(&Device{ID: dev3, EndpointName: "pump-1", Attributes: map[string]string{"site": "roof", "model": "y"}}),
	}
}

type polOpt func(*Policy)

// pol returns an active allow policy for alice, operation "read", all
// devices, 24 h lifetime, changed by opts.
func pol(id string, opts ...polOpt) *Policy {
	p := &Policy{
		ID: id, Status: Active, Effect: Allow,
		Subjects:      Subjects{Users: []string{"alice"}},
		Operations:    []OperationRule{{Name: "read"}},
		Devices:       DeviceSelector{All: true},
		TokenLifetime: 24 * time.Hour,
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func denyEffect(p *Policy)            { p.Effect = Deny; p.TokenLifetime = 0 }
func inactive(p *Policy)              { p.Status = Inactive }
func lifetime(d time.Duration) polOpt { return func(p *Policy) { p.TokenLifetime = d } }
func ops(names ...string) polOpt {
	return func(p *Policy) {
		p.Operations = nil
		for _, n := range names {
			p.Operations = append(p.Operations, OperationRule{Name: n})
		}
	}
}
func users(u ...string) polOpt  { return func(p *Policy) { p.Subjects = Subjects{Users: u} } }
func groups(g ...string) polOpt { return func(p *Policy) { p.Subjects = Subjects{Groups: g} } }
func apps(a ...string) polOpt   { return func(p *Policy) { p.Subjects = Subjects{Applications: a} } }
func devices(s DeviceSelector) polOpt {
	return func(p *Policy) { p.Devices = s }
}
func window(from, until time.Duration) polOpt {
	return func(p *Policy) {
		if from != 0 {
			p.ValidFrom = t0.Add(from)
		}
		if until != 0 {
			p.ValidUntil = t0.Add(until)
		}
	}
}
func constrained(op string, cons ...ArgConstraint) polOpt {
	return func(p *Policy) { p.Operations = append(p.Operations, OperationRule{Name: op, Constraints: cons}) }
}
func rangeArg(arg int, lo, hi int64) ArgConstraint {
	return ArgConstraint{Arg: arg, Range: &[2]int64{lo, hi}}
}

func TestDecide(t *testing.T) {
	type want struct {
		allowed  bool
		reason   error
		denyID   string
		denyAud  string
		denyOp   string
		expiry   time.Duration // from the request time
		policies []string
		grants   []Grant
	}
	readGrant := []Grant{{Operation: "read"}}
	tests := []struct {
		name       string
		policies   []*Policy
		subject    string
		aud        []string
		ops        []string
		at         time.Duration // request time relative to t0
		structured bool
		want       want
	}{
		{
			name:     "single allow",
			policies: []*Policy{pol("p1")},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name: "no policy",
			want: want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "other subject's policy does not apply",
			policies: []*Policy{pol("p1", users("bob"))},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "deny wins over allow",
			policies: []*Policy{pol("allow"), pol("zdeny", denyEffect), pol("adeny", denyEffect, ops("*"))},
			want:     want{reason: ErrDenyPolicy, denyID: "adeny", denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "deny of another operation does not matter",
			policies: []*Policy{pol("allow", ops("read", "write")), pol("deny", denyEffect, ops("write"))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"allow"}, grants: readGrant},
		},
		{
			name:     "deny of another device does not matter",
			policies: []*Policy{pol("allow"), pol("deny", denyEffect, devices(DeviceSelector{IDs: []string{dev2}}))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"allow"}, grants: readGrant},
		},
		{
			name:     "inactive allow ignored",
			policies: []*Policy{pol("p1", inactive)},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "inactive deny ignored",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, inactive)},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "expired allow ignored",
			policies: []*Policy{pol("p1", window(-48*time.Hour, -time.Hour))},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "expired deny ignored",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, window(-48*time.Hour, -time.Hour))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "allow not yet valid",
			policies: []*Policy{pol("p1", window(time.Hour, 0))},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "valid from is inclusive",
			policies: []*Policy{pol("p1", window(time.Hour, 0))},
			at:       time.Hour,
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "valid until is exclusive",
			policies: []*Policy{pol("p1", window(0, time.Hour))},
			at:       time.Hour,
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "expiry capped by valid until",
			policies: []*Policy{pol("p1", window(-time.Hour, 2*time.Hour))},
			want:     want{allowed: true, expiry: 2 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "expiry capped by the start of a later deny",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, window(3*time.Hour, 0))},
			want:     want{allowed: true, expiry: 3 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "wildcard devices",
			policies: []*Policy{pol("p1")},
			aud:      []string{"ep:hvac-1", "id:" + dev2, "endpoint-name:pump-1", "device-id:" + dev1},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "device by id and endpoint name",
			policies: []*Policy{pol("p1", devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: []string{"hvac-2"}}))},
			aud:      []string{"ep:hvac-1", "id:" + dev2},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "device not selected",
			policies: []*Policy{pol("p1", devices(DeviceSelector{IDs: []string{dev1}}))},
			aud:      []string{"ep:hvac-1", "ep:pump-1"},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:pump-1", denyOp: "read"},
		},
		{
			name:     "unknown device",
			policies: []*Policy{pol("p1")},
			aud:      []string{"ep:hvac-1", "ep:nope"},
			want:     want{reason: ErrUnknownDevice, denyAud: "ep:nope", denyOp: "read"},
		},
		{
			name:     "unknown subject",
			policies: []*Policy{pol("p1", users("mallory"))},
			subject:  "mallory",
			want:     want{reason: ErrUnknownSubject, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "attribute selector matches",
			policies: []*Policy{pol("p1", devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}}))},
			aud:      []string{"ep:hvac-1", "ep:pump-1"},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "attribute selector does not match",
			policies: []*Policy{pol("p1", devices(DeviceSelector{Attributes: map[string][]string{"site": {"roof"}}}))},
			aud:      []string{"ep:hvac-2"},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-2", denyOp: "read"},
		},
		{
			name: "attribute selector keys all hold",
			policies: []*Policy{pol("p1", devices(DeviceSelector{Attributes: map[string][]string{
				"site": {"roof", "basement"}, "model": {"x"}}}))},
			aud:  []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"},
			want: want{reason: ErrNoAllowPolicy, denyAud: "ep:pump-1", denyOp: "read"},
		},
		{
			name: "attribute selector with several values",
			policies: []*Policy{pol("p1", devices(DeviceSelector{Attributes: map[string][]string{
				"site": {"roof", "basement"}, "model": {"x", "y"}}}))},
			aud:  []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"},
			want: want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "attribute deny",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, devices(DeviceSelector{Attributes: map[string][]string{"model": {"y"}}}))},
			aud:      []string{"ep:hvac-1", "ep:pump-1"},
			want:     want{reason: ErrDenyPolicy, denyID: "d", denyAud: "ep:pump-1", denyOp: "read"},
		},
		{
			name:     "group membership",
			policies: []*Policy{pol("p1", groups("techs"))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "other group",
			policies: []*Policy{pol("p1", groups("techs-east"))},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "group deny wins over user allow",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, groups("techs"))},
			want:     want{reason: ErrDenyPolicy, denyID: "d", denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "application subject",
			policies: []*Policy{pol("p1", apps("tool"))},
			subject:  "tool",
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "application listed as user does not match",
			policies: []*Policy{pol("p1", users("tool"))},
			subject:  "tool",
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "all or nothing: one operation missing",
			policies: []*Policy{pol("p1", ops("read", "write"))},
			ops:      []string{"read", "write", "reboot"},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "reboot"},
		},
		{
			name:     "all or nothing: one device missing",
			policies: []*Policy{pol("p1", devices(DeviceSelector{EndpointNames: []string{"hvac-1", "hvac-2"}}))},
			aud:      []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"},
			want:     want{reason: ErrNoAllowPolicy, denyAud: "ep:pump-1", denyOp: "read"},
		},
		{
			name: "all or nothing: pairs covered by different policies",
			policies: []*Policy{
				pol("p1", ops("read"), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
				pol("p2", ops("write"), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}}), lifetime(2*time.Hour)),
				pol("p3", ops("*"), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}), lifetime(5*time.Hour)),
			},
			aud:  []string{"ep:hvac-1", "ep:hvac-2"},
			ops:  []string{"read", "write"},
			want: want{allowed: true, expiry: 2 * time.Hour, policies: []string{"p1", "p2", "p3"}, grants: []Grant{{Operation: "read"}, {Operation: "write"}}},
		},
		{
			name:     "lifetime: smallest among the policies used",
			policies: []*Policy{pol("p1", lifetime(10*time.Hour), ops("read")), pol("p2", lifetime(3*time.Hour), ops("write"))},
			ops:      []string{"read", "write"},
			want:     want{allowed: true, expiry: 3 * time.Hour, policies: []string{"p1", "p2"}, grants: []Grant{{Operation: "read"}, {Operation: "write"}}},
		},
		{
			name:     "lifetime: the longest allow of one pair is used",
			policies: []*Policy{pol("short", lifetime(time.Hour)), pol("long", lifetime(48*time.Hour))},
			want:     want{allowed: true, expiry: 48 * time.Hour, policies: []string{"long"}, grants: readGrant},
		},
		{
			name:     "duplicate audiences and operations collapse",
			policies: []*Policy{pol("p1")},
			aud:      []string{"ep:hvac-1", "ep:hvac-1"},
			ops:      []string{"read", "read"},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "constrained allow in v1 is denied",
			policies: []*Policy{pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)))},
			ops:      []string{"set-temp"},
			want:     want{reason: ErrStructuredScopeRequired, denyAud: "ep:hvac-1", denyOp: "set-temp"},
		},
		{
			name:       "constrained allow in v2 carries its constraints",
			policies:   []*Policy{pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)))},
			ops:        []string{"set-temp"},
			structured: true,
			want: want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"},
				grants: []Grant{{Operation: "set-temp", Alternatives: [][]ArgConstraint{{rangeArg(0, 16, 28)}}}}},
		},
		{
			name:       "unconstrained allow beats a constrained one",
			policies:   []*Policy{pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28))), pol("p2", ops("set-temp"), lifetime(2*time.Hour))},
			ops:        []string{"set-temp"},
			structured: true,
			want:       want{allowed: true, expiry: 2 * time.Hour, policies: []string{"p2"}, grants: []Grant{{Operation: "set-temp"}}},
		},
		{
			name: "constraints common to all devices",
			policies: []*Policy{
				pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
				pol("p2", ops(), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}), lifetime(4*time.Hour)),
				pol("p3", ops("set-temp"), devices(DeviceSelector{EndpointNames: []string{"pump-1"}})),
			},
			aud:        []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"},
			ops:        []string{"set-temp"},
			structured: true,
			want: want{allowed: true, expiry: 4 * time.Hour, policies: []string{"p1", "p2", "p3"},
				grants: []Grant{{Operation: "set-temp", Alternatives: [][]ArgConstraint{{rangeArg(0, 16, 28)}}}}},
		},
		{
			name: "constraints that differ between devices",
			policies: []*Policy{
				pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
				pol("p2", ops(), constrained("set-temp", rangeArg(0, 10, 20)), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}})),
			},
			aud:        []string{"ep:hvac-1", "ep:hvac-2"},
			ops:        []string{"set-temp"},
			structured: true,
			want:       want{reason: ErrConstraintsDiffer, denyAud: "ep:hvac-2", denyOp: "set-temp"},
		},
		{
			// The selector is indexed by model (fewest values): hvac-2 is a
			// candidate, and must still be checked against site.
			name: "attribute selector: the indexed attribute alone is not enough",
			policies: []*Policy{pol("p1", devices(DeviceSelector{Attributes: map[string][]string{
				"model": {"x"}, "site": {"roof", "attic"}}}))},
			aud:  []string{"ep:hvac-1", "ep:hvac-2"},
			want: want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-2", denyOp: "read"},
		},
		{
			name: "attribute selector: a missing attribute does not match",
			policies: []*Policy{pol("p1", devices(DeviceSelector{Attributes: map[string][]string{
				"model": {"x"}, "color": {"red"}}}))},
			want: want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name: "selector endpoint names match whatever the attributes",
			policies: []*Policy{pol("p1", devices(DeviceSelector{EndpointNames: []string{"hvac-2"}, Attributes: map[string][]string{
				"site": {"roof"}, "model": {"x"}}}))},
			aud:  []string{"ep:hvac-1", "ep:hvac-2"},
			want: want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name: "selector device ids match whatever the attributes",
			policies: []*Policy{pol("p1", devices(DeviceSelector{IDs: []string{dev2}, Attributes: map[string][]string{
				"site": {"roof"}, "model": {"x"}}}))},
			aud:  []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"},
			want: want{reason: ErrNoAllowPolicy, denyAud: "ep:pump-1", denyOp: "read"},
		},
		{
			name:     "expiry: a valid until after the lifetime does not lengthen it",
			policies: []*Policy{pol("p1", window(-time.Hour, 48*time.Hour))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "expiry: a later allow policy does not cap it",
			policies: []*Policy{pol("p1"), pol("p2", window(3*time.Hour, 0))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "expiry: an inactive later deny does not cap it",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, inactive, window(3*time.Hour, 0))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "expiry: a later deny of another operation does not cap it",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, ops("write"), window(3*time.Hour, 0))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name:     "expiry: a deny starting after the lifetime does not lengthen it",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, window(48*time.Hour, 0))},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1"}, grants: readGrant},
		},
		{
			name: "expiry: the earliest of several later denies caps it",
			policies: []*Policy{pol("p1", ops("read", "write")), pol("d5", denyEffect, window(5*time.Hour, 0)),
				pol("d3", denyEffect, ops("write"), window(3*time.Hour, 0)), pol("d4", denyEffect, ops("*"), window(4*time.Hour, 0))},
			ops:  []string{"read", "write"},
			want: want{allowed: true, expiry: 3 * time.Hour, policies: []string{"p1"}, grants: []Grant{{Operation: "read"}, {Operation: "write"}}},
		},
		{
			name:     "expiry: a deny starting at the request time applies",
			policies: []*Policy{pol("p1"), pol("d", denyEffect, window(0, 0), func(p *Policy) { p.ValidFrom = t0 })},
			want:     want{reason: ErrDenyPolicy, denyID: "d", denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name:     "equal expiries: the smaller policy id is used",
			policies: []*Policy{pol("b"), pol("c"), pol("a"), pol("d")},
			want:     want{allowed: true, expiry: 24 * time.Hour, policies: []string{"a"}, grants: readGrant},
		},
		{
			name:     "the deny with the smallest id is reported",
			policies: []*Policy{pol("p1"), pol("d2", denyEffect), pol("d1", denyEffect), pol("d3", denyEffect)},
			want:     want{reason: ErrDenyPolicy, denyID: "d1", denyAud: "ep:hvac-1", denyOp: "read"},
		},
		{
			name: "denials in request order: devices outer, operations inner",
			policies: []*Policy{
				pol("p1", ops("read"), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
				pol("p2", ops("write"), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}})),
			},
			aud:  []string{"ep:hvac-1", "ep:hvac-2"},
			ops:  []string{"read", "write"},
			want: want{reason: ErrNoAllowPolicy, denyAud: "ep:hvac-1", denyOp: "write"},
		},
		{
			// Each device has its own results per operation: hvac-1 allows
			// set-temp without constraints, hvac-2 only within a range.
			name: "several devices and operations: each device's own results",
			policies: []*Policy{
				pol("p1", ops("read", "set-temp"), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}}), lifetime(5*time.Hour)),
				pol("p2", ops(), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}), lifetime(3*time.Hour)),
				pol("p3", ops("read"), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}), lifetime(7*time.Hour)),
			},
			aud:        []string{"ep:hvac-1", "ep:hvac-2"},
			ops:        []string{"read", "set-temp"},
			structured: true,
			want: want{allowed: true, expiry: 3 * time.Hour, policies: []string{"p1", "p2", "p3"},
				grants: []Grant{{Operation: "read"}, {Operation: "set-temp", Alternatives: [][]ArgConstraint{{rangeArg(0, 16, 28)}}}}},
		},
		{
			name: "several devices and operations: the constrained device is reported in v1",
			policies: []*Policy{
				pol("p1", ops("read", "set-temp"), devices(DeviceSelector{EndpointNames: []string{"hvac-1", "pump-1"}})),
				pol("p2", ops("read"), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}})),
			},
			aud:  []string{"ep:hvac-1", "ep:pump-1", "ep:hvac-2"},
			ops:  []string{"read", "set-temp"},
			want: want{reason: ErrStructuredScopeRequired, denyAud: "ep:hvac-2", denyOp: "set-temp"},
		},
		{
			name: "several devices and operations: constraints differ on the last device",
			policies: []*Policy{
				pol("p1", ops("read"), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-1", "hvac-2"}})),
				pol("p2", ops("read"), constrained("set-temp", rangeArg(0, 10, 20)), devices(DeviceSelector{EndpointNames: []string{"pump-1"}})),
			},
			aud:        []string{"ep:hvac-1", "ep:hvac-2", "ep:pump-1"},
			ops:        []string{"read", "set-temp"},
			structured: true,
			want:       want{reason: ErrConstraintsDiffer, denyAud: "ep:pump-1", denyOp: "set-temp"},
		},
		{
			// hvac-2 allows set-temp unconstrained for 2 h and within the
			// range for 6 h: the alternative's bound is used there.
			name: "constrained alternative: a device's longer constrained allow is used",
			policies: []*Policy{
				pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}}), lifetime(8*time.Hour)),
				pol("p2", ops("set-temp"), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}), lifetime(2*time.Hour)),
				pol("p3", ops(), constrained("set-temp", rangeArg(0, 16, 28)), devices(DeviceSelector{EndpointNames: []string{"hvac-2"}}), lifetime(6*time.Hour)),
			},
			aud:        []string{"ep:hvac-1", "ep:hvac-2"},
			ops:        []string{"set-temp"},
			structured: true,
			want: want{allowed: true, expiry: 6 * time.Hour, policies: []string{"p1", "p3"},
				grants: []Grant{{Operation: "set-temp", Alternatives: [][]ArgConstraint{{rangeArg(0, 16, 28)}}}}},
		},
		{
			name: "constrained alternative: the longer of two policies with the same constraints",
			policies: []*Policy{
				pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)), lifetime(3*time.Hour)),
				pol("p2", ops(), constrained("set-temp", rangeArg(0, 16, 28)), lifetime(9*time.Hour)),
				pol("p3", ops(), constrained("set-temp", rangeArg(0, 16, 28)), lifetime(9*time.Hour)),
			},
			ops:        []string{"set-temp"},
			structured: true,
			want: want{allowed: true, expiry: 9 * time.Hour, policies: []string{"p2"},
				grants: []Grant{{Operation: "set-temp", Alternatives: [][]ArgConstraint{{rangeArg(0, 16, 28)}}}}},
		},
		{
			name: "constrained alternatives: only those every device allows, in key order",
			policies: []*Policy{
				pol("p1", ops(), constrained("set-temp", rangeArg(0, 16, 28)), constrained("set-temp", rangeArg(0, 0, 5)),
					constrained("set-temp", rangeArg(1, 1, 1)), devices(DeviceSelector{EndpointNames: []string{"hvac-1"}})),
				pol("p2", ops(), constrained("set-temp", rangeArg(1, 1, 1)), constrained("set-temp", rangeArg(0, 16, 28)),
					devices(DeviceSelector{EndpointNames: []string{"hvac-2"}})),
			},
			aud:        []string{"ep:hvac-1", "ep:hvac-2"},
			ops:        []string{"set-temp"},
			structured: true,
			want: want{allowed: true, expiry: 24 * time.Hour, policies: []string{"p1", "p2"},
				grants: []Grant{{Operation: "set-temp", Alternatives: [][]ArgConstraint{{rangeArg(0, 16, 28)}, {rangeArg(1, 1, 1)}}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Engine
			changes := testDirectory()
			for _, p := range tt.policies {
				changes = append(changes, PutPolicy(p))
			}
			if err := e.Apply(changes...); err != nil {
				t.Fatal(err)
			}
			req := &Request{
				Subject:    cmpOr(tt.subject, "alice"),
				Audience:   tt.aud,
				Operations: tt.ops,
				Time:       t0.Add(tt.at),
				Structured: tt.structured,
			}
			if req.Audience == nil {
				req.Audience = []string{"ep:hvac-1"}
			}
			if req.Operations == nil {
				req.Operations = []string{"read"}
			}
			d, err := e.Decide(req)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Allowed != tt.want.allowed {
				t.Fatalf("Allowed = %v, want %v (denial %+v)", d.Allowed, tt.want.allowed, d.Denied)
			}
			if !d.Allowed {
				err := d.Err()
				if !errors.Is(err, ErrDenied) || !errors.Is(err, tt.want.reason) {
					t.Errorf("Err() = %v, want %v", err, tt.want.reason)
				}
				var de *DeniedError
				if !errors.As(err, &de) || de.Decision != d {
					t.Errorf("Err() is not a *DeniedError for this decision")
				}
				if d.Denied.PolicyID != tt.want.denyID || d.Denied.Audience != tt.want.denyAud || d.Denied.Operation != tt.want.denyOp {
					t.Errorf("Denied = %+v, want policy %q audience %q operation %q", d.Denied, tt.want.denyID, tt.want.denyAud, tt.want.denyOp)
				}
				if d.Grants != nil || !d.Expiry.IsZero() {
					t.Errorf("denied decision carries grants %v or expiry %v", d.Grants, d.Expiry)
				}
				return
			}
			if d.Err() != nil || d.Denied != nil {
				t.Errorf("allowed decision has Err %v, Denied %+v", d.Err(), d.Denied)
			}
			if got := d.Lifetime(req.Time); got != tt.want.expiry {
				t.Errorf("lifetime = %v, want %v", got, tt.want.expiry)
			}
			if !slices.Equal(d.Policies, tt.want.policies) {
				t.Errorf("Policies = %v, want %v", d.Policies, tt.want.policies)
			}
			if diff := cmp.Diff(tt.want.grants, d.Grants); diff != "" {
				t.Errorf("Grants mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestDecideInvalidRequest(t *testing.T) {
	var e Engine
	if err := e.Apply(testDirectory()...); err != nil {
		t.Fatal(err)
	}
	long := make([]string, token.MaxAudiences+1)
	for i := range long {
		long[i] = "ep:hvac-1"
	}
	tooMany := make([]string, token.MaxScopeItems+1)
	for i := range tooMany {
		tooMany[i] = "read"
	}
	for name, r := range map[string]*Request{
		"no subject":    {Audience: []string{"ep:hvac-1"}, Operations: []string{"read"}, Time: t0},
		"no time":       {Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"read"}},
		"no audience":   {Subject: "alice", Operations: []string{"read"}, Time: t0},
		"too many aud":  {Subject: "alice", Audience: long, Operations: []string{"read"}, Time: t0},
		"bad prefix":    {Subject: "alice", Audience: []string{"xx:hvac-1"}, Operations: []string{"read"}, Time: t0},
		"bad device id": {Subject: "alice", Audience: []string{"id:XYZ"}, Operations: []string{"read"}, Time: t0},
		"long endpoint": {Subject: "alice", Audience: []string{"ep:" + string(make([]byte, 61))}, Operations: []string{"read"}, Time: t0},
		"no operations": {Subject: "alice", Audience: []string{"ep:hvac-1"}, Time: t0},
		"too many ops":  {Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: tooMany, Time: t0},
		"bad op":        {Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"1read"}, Time: t0},
		"wildcard op":   {Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{"*"}, Time: t0},
		"empty op":      {Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: []string{""}, Time: t0},
		"prefix only":   {Subject: "alice", Audience: []string{"ep:"}, Operations: []string{"read"}, Time: t0},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := e.Decide(r)
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || len(ve.Fields) == 0 || d != nil {
				t.Errorf("Decide = %v, %v; want a ValidationError", d, err)
			}
		})
	}
}

// TestEngineIndexModes checks that policies indexed by subject only or by
// device only (too large for the pair index) decide like small ones.
func TestEngineIndexModes(t *testing.T) {
	manyUsers := []string{"alice"}
	for i := range 200 {
		manyUsers = append(manyUsers, "user"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	manyDevices := []string{dev1}
	for i := range 200 {
		manyDevices = append(manyDevices, "ep-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	tests := []struct {
		name string
		p    *Policy
		aud  string
		ok   bool
	}{
		{"by subject, device matches", pol("p", users(manyUsers...), devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: manyDevices[1:100]})), "ep:hvac-1", true},
		{"by subject, device does not match", pol("p", users(manyUsers...), devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: manyDevices[1:100]})), "ep:hvac-2", false},
		{"by device, subject matches", pol("p", users(manyUsers[:100]...), devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: manyDevices[1:]})), "ep:hvac-1", true},
		{"by device, subject does not match", pol("p", users(manyUsers[1:100]...), devices(DeviceSelector{IDs: []string{dev1}, EndpointNames: manyDevices[1:]})), "ep:hvac-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Engine
			if err := e.Apply(append(testDirectory(), PutPolicy(tt.p))...); err != nil {
				t.Fatal(err)
			}
			req := &Request{Subject: "alice", Audience: []string{tt.aud}, Operations: []string{"read"}, Time: t0}
			d, err := e.Decide(req)
			if err != nil || d.Allowed != tt.ok {
				t.Fatalf("Decide = %+v, %v; want allowed %v", d, err, tt.ok)
			}
			// Deleting the policy removes it from whichever index holds it.
			if err := e.Apply(DeleteRecord(KindPolicy, "p")); err != nil {
				t.Fatal(err)
			}
			if d, err := e.Decide(req); err != nil || d.Allowed {
				t.Fatalf("after delete: Decide = %+v, %v", d, err)
			}
			if len(views(e.st).pair)+len(views(e.st).bySubj)+len(views(e.st).byDev) != 0 {
				t.Errorf("index not empty after delete")
			}
		})
	}
}

func TestApplyAtomic(t *testing.T) {
	var e Engine
	if err := e.Apply(testDirectory()...); err != nil {
		t.Fatal(err)
	}
	before := e.Snapshot()
	// A valid policy followed by an invalid one: neither is applied.
	bad := pol("bad")
	bad.TokenLifetime = 59 * time.Second
	err := e.Apply(PutPolicy(pol("good")), PutPolicy(bad))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply = %v, want ErrInvalid", err)
	}
	// A device taking another device's endpoint name: conflict, nothing applied.
	err = e.Apply(PutPolicy(pol("good")), PutDevice(&Device{ID: dev3, EndpointName: "hvac-1"}))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Apply = %v, want ErrConflict", err)
	}
	if diff := cmp.Diff(before, e.Snapshot()); diff != "" {
		t.Fatalf("state changed by failed Apply:\n%s", diff)
	}
	// Swapping endpoint names in one batch is fine.
	err = e.Apply(
		PutDevice(&Device{ID: dev1, EndpointName: "tmp"}),
		PutDevice(&Device{ID: dev2, EndpointName: "hvac-1"}),
		PutDevice(&Device{ID: dev1, EndpointName: "hvac-2"}),
	)
	if err != nil {
		t.Fatalf("swap: %v", err)
	}
	// Two API keys with one hash conflict.
	h := HashAPIKey("secret")
	err = e.Apply(PutAPIKey(&APIKey{ID: "k1", Subject: "alice", Hash: h}), PutAPIKey(&APIKey{ID: "k2", Subject: "bob", Hash: h}))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Apply = %v, want ErrConflict", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name  string
		mod   polOpt
		field string
	}{
		{"empty id", func(p *Policy) { p.ID = "" }, "id"},
		{"bad id", func(p *Policy) { p.ID = "a b" }, "id"},
		{"no status", func(p *Policy) { p.Status = "" }, "status"},
		{"bad effect", func(p *Policy) { p.Effect = "maybe" }, "effect"},
		{"window reversed", window(time.Hour, -time.Hour), "valid_until"},
		{"no subjects", func(p *Policy) { p.Subjects = Subjects{} }, "subjects"},
		{"duplicate user", users("a", "a"), "subjects.users[1]"},
		{"no operations", ops(), "operations"},
		{"bad operation", ops("9x"), "operations[0].name"},
		{"duplicate operation", ops("a", "a"), "operations[1].name"},
		{"constraint on wildcard", constrained("*", rangeArg(0, 1, 2)), "operations[1].constraints"},
		{"constraint in deny", func(p *Policy) { denyEffect(p); constrained("x", rangeArg(0, 1, 2))(p) }, "operations[1].constraints"},
		{"range reversed", constrained("x", rangeArg(0, 3, 2)), "operations[1].constraints[0].range"},
		{"arg out of range", constrained("x", rangeArg(99, 1, 2)), "operations[1].constraints[0].arg"},
		{"two kinds", constrained("x", ArgConstraint{Range: &[2]int64{1, 2}, OneOf: []ArgValue{{Int: new(int64)}}}), "operations[1].constraints[0]"},
		{"empty value", constrained("x", ArgConstraint{Equals: &ArgValue{}}), "operations[1].constraints[0].equals"},
		{"no devices", devices(DeviceSelector{}), "devices"},
		{"all and ids", devices(DeviceSelector{All: true, IDs: []string{dev1}}), "devices.all"},
		{"bad device id", devices(DeviceSelector{IDs: []string{"ABC"}}), "devices.ids[0]"},
		{"bad endpoint", devices(DeviceSelector{EndpointNames: []string{"a\nb"}}), "devices.endpoint_names[0]"},
		{"empty attribute values", devices(DeviceSelector{Attributes: map[string][]string{"site": {}}}), "devices.attributes.site"},
		{"bad attribute key", devices(DeviceSelector{Attributes: map[string][]string{"1site": {"x"}}}), "devices.attributes.1site"},
		{"lifetime too short", lifetime(59 * time.Second), "token_lifetime_seconds"},
		{"lifetime too long", lifetime(MaxTokenLifetime + time.Second), "token_lifetime_seconds"},
		{"lifetime fractional", lifetime(time.Hour + time.Millisecond), "token_lifetime_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pol("p1")
			tt.mod(p)
			err := p.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ValidationError", err)
			}
			if !slices.ContainsFunc(ve.Fields, func(f FieldError) bool { return f.Name == tt.field }) {
				t.Errorf("fields = %+v, want %q", ve.Fields, tt.field)
			}
		})
	}
	for _, p := range []*Policy{pol("ok"), pol("ok", denyEffect), pol("ok", lifetime(MinTokenLifetime)), pol("ok", lifetime(MaxTokenLifetime))} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
}

// TestDecideScopeBudget: a scope holds at most token.MaxScopeItems
// permissions. Surplus alternatives are dropped, keeping room for one
// permission per operation still to come and counting those granted before.
func TestDecideScopeBudget(t *testing.T) {
	alternatives := func(op string, n int) polOpt {
		return func(p *Policy) {
			for k := range n {
				constrained(op, rangeArg(0, int64(k), int64(k)))(p)
			}
		}
	}
	var e Engine
	err := e.Apply(append(testDirectory(), PutPolicy(pol("p1", ops("c", "d"), alternatives("a", 3), alternatives("b", 25))))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ops  []string
		want []int // alternatives per operation; 0 for unconstrained
	}{
		{[]string{"b"}, []int{token.MaxScopeItems}},
		{[]string{"b", "c"}, []int{token.MaxScopeItems - 1, 0}},
		{[]string{"c", "b"}, []int{0, token.MaxScopeItems - 1}},
		{[]string{"c", "d", "b"}, []int{0, 0, token.MaxScopeItems - 2}},
		{[]string{"a", "b", "c"}, []int{3, token.MaxScopeItems - 3 - 1, 0}},
		{[]string{"c", "a", "b", "d"}, []int{0, 3, token.MaxScopeItems - 1 - 3 - 1, 0}},
	} {
		t.Run(strings.Join(tc.ops, " "), func(t *testing.T) {
			d, err := e.Decide(&Request{Subject: "alice", Audience: []string{"ep:hvac-1"}, Operations: tc.ops, Time: t0, Structured: true})
			if err != nil || !d.Allowed {
				t.Fatalf("Decide = %+v, %v", d, err)
			}
			perms := 0
			for i, g := range d.Grants {
				if g.Operation != tc.ops[i] || len(g.Alternatives) != tc.want[i] {
					t.Errorf("grant %d: %s with %d alternatives, want %s with %d", i, g.Operation, len(g.Alternatives), tc.ops[i], tc.want[i])
				}
				perms += max(1, len(g.Alternatives))
			}
			if perms != token.MaxScopeItems {
				t.Errorf("%d permissions, want %d", perms, token.MaxScopeItems)
			}
		})
	}
}

// TestDeniedErrorWithoutDenial: a Decision that is not allowed and names
// no pair still gives an error matching ErrDenied, and only that.
func TestDeniedErrorWithoutDenial(t *testing.T) {
	err := (&Decision{}).Err()
	var de *DeniedError
	if !errors.Is(err, ErrDenied) || !errors.As(err, &de) || errors.Is(err, ErrNoAllowPolicy) || err.Error() == "" {
		t.Errorf("Err() = %v", err)
	}
	err = (&Decision{Denied: &Denial{Audience: "ep:x", Operation: "read"}}).Err()
	if !errors.Is(err, ErrDenied) || err.Error() == "" {
		t.Errorf("Err() without a reason = %v", err)
	}
}
