package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRecordEncoding: EncodeRecord and DecodeChange carry a record of each
// kind through its JSON encoding unchanged, and refuse what is not one.
func TestRecordEncoding(t *testing.T) {
	_, key, err := NewAPIKey(nil, "k1", "alice", true, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Change{
		PutPolicy(pol("p1", constrained("set", rangeArg(0, 1, 2)), window(-time.Hour, time.Hour))),
		PutSubject(&Subject{ID: "alice", Kind: User, Groups: []string{"techs"}}),
		PutDevice(&Device{ID: dev1, EndpointName: "hvac-1", Attributes: map[string]string{"site": "roof"}}),
		PutAPIKey(key),
	} {
		t.Run(string(c.Kind), func(t *testing.T) {
			b, err := EncodeRecord(&c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeChange(c.Kind, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if _, err := DecodeChange(c.Kind, append(b[:len(b)-1:len(b)-1], `,"x":1}`...)); !errors.Is(err, ErrInvalid) {
				t.Errorf("unknown field: %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := EncodeRecord(&Change{Kind: KindPolicy, ID: "p1", Delete: true}); err == nil {
		t.Error("EncodeRecord of a deletion succeeded")
	}
	if _, err := DecodeChange("widget", []byte(`{}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v, want ErrInvalid", err)
	}
}
