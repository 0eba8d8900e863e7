package policy

import (
	"reflect"
	"testing"
)

// decodePolicyOld decodes a policy the way stores did before decodePolicy:
// strictUnmarshal into a *Policy, which calls Policy.UnmarshalJSON.
func decodePolicyOld(b []byte) (*Policy, error) {
	p := new(Policy)
	if err := strictUnmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// policyBodies returns policy records, valid and not, as stores hold them.
func policyBodies(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range benchSnapshot(20).Policies {
		c := PutPolicy(p)
		body, err := EncodeRecord(&c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, body)
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"id":"p"`, `{"id":"p"} {}`, `{"id":"p","unknown":1}`,
		`{"id":"p","subjects":{"users":[1]}}`, `{"id":"p","operations":[{"name":"x","constraints":[{"arg":"a"}]}]}`,
		`{"id":"p","token_lifetime_seconds":-1}`, `{"id":"p","token_lifetime_seconds":99999999999}`,
		`{"id":"p","token_lifetime_seconds":"60"}`, `{"id":"p","delegation":{"max_depth":"x"}}`,
		`{"id":"p","effect":"allow","ID":"q"}`, `{"id":"p","id":"q"}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// TestDecodePolicy: decodePolicy decodes every record, and refuses every
// bad one, exactly as strictUnmarshal into a *Policy does, with fewer
// allocations (it decodes once).
func TestDecodePolicy(t *testing.T) {
	bodies := policyBodies(t)
	for _, b := range bodies {
		got, gotErr := decodePolicy(b)
		want, wantErr := decodePolicyOld(b)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
			t.Errorf("%s:\ngot  %+v, %v\nwant %+v, %v", b, got, gotErr, want, wantErr)
		}
	}
	c, err := DecodeChange(KindPolicy, bodies[0])
	if err != nil || c.Policy == nil || c.ID != c.Policy.ID {
		t.Fatalf("DecodeChange: %+v, %v", c, err)
	}
	if raceEnabled {
		return // allocation counts differ under the race detector
	}
	body := bodies[0]
	newAllocs := testing.AllocsPerRun(100, func() { _, _ = DecodeChange(KindPolicy, body) })
	oldAllocs := testing.AllocsPerRun(100, func() { _, _ = decodePolicyOld(body) })
	if newAllocs >= oldAllocs {
		t.Errorf("DecodeChange of a policy allocates %v times, decoding through Policy.UnmarshalJSON %v: want fewer", newAllocs, oldAllocs)
	}
}

// FuzzDecodePolicy: decodePolicy agrees with strictUnmarshal into a
// *Policy on every input.
func FuzzDecodePolicy(f *testing.F) {
	for _, b := range policyBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := decodePolicy(b)
		want, wantErr := decodePolicyOld(b)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("%q:\ngot  %+v, %v\nwant %+v, %v", b, got, gotErr, want, wantErr)
		}
	})
}
