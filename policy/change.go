package policy

import (
	"encoding/json"
	"fmt"
)

// Kind names a kind of record.
type Kind string

// Record kinds.
const (
	KindPolicy  Kind = "policy"
	KindSubject Kind = "subject"
	KindDevice  Kind = "device"
	KindAPIKey  Kind = "api_key"
	// KindRevocation records are [Revocation] values, written by
	// [Service.Revoke].
	KindRevocation Kind = "revocation"
)

// Change is one write: a record to put (the field matching Kind is set) or
// an id to delete. Stores apply a batch of changes atomically and number
// each with a sequence number, so that other instances can follow them.
type Change struct {
	// Seq is set by the store: changes are numbered in commit order.
	Seq    int64  `json:"seq,omitempty"`
	Kind   Kind   `json:"kind"`
	ID     string `json:"id"`
	Delete bool   `json:"delete,omitempty"`
	// Create makes a put a creation: the batch fails with [ErrConflict]
	// when a record of this kind and id exists. It is a condition on the
	// write, not part of the record: stores do not keep it, and
	// [Store.Changes] returns the change as a plain put.
	Create bool `json:"-"`
	// IfMatch makes a put or a delete conditional on the present value of
	// its record: the batch fails with [ErrConflict] unless the record of
	// this kind and id exists (counting the batch's earlier changes) and
	// equals IfMatch's record, a put of the same kind and id. Records are
	// compared by their JSON encoding. It is how a read-modify-write (a
	// group membership added to a subject) is kept from losing a
	// concurrent write: read, change, write with IfMatch set to what was
	// read, and read again on a conflict. Like Create it is a condition on
	// the write, not part of the record, and [Store.Changes] returns the
	// change without it.
	IfMatch *Change `json:"-"`

	Policy  *Policy  `json:"policy,omitempty"`
	Subject *Subject `json:"subject,omitempty"`
	Device  *Device  `json:"device,omitempty"`
	APIKey  *APIKey  `json:"api_key,omitempty"`

	Revocation *Revocation `json:"revocation,omitempty"`
}

// PutPolicy returns a change that creates or replaces p.
func PutPolicy(p *Policy) Change { return Change{Kind: KindPolicy, ID: p.ID, Policy: p} }

// PutSubject returns a change that creates or replaces s.
func PutSubject(s *Subject) Change { return Change{Kind: KindSubject, ID: s.ID, Subject: s} }

// PutDevice returns a change that creates or replaces d.
func PutDevice(d *Device) Change { return Change{Kind: KindDevice, ID: d.ID, Device: d} }

// PutAPIKey returns a change that creates or replaces k.
func PutAPIKey(k *APIKey) Change { return Change{Kind: KindAPIKey, ID: k.ID, APIKey: k} }

// CreateAPIKey returns a change that creates k, failing the batch with
// [ErrConflict] when an API key with k's id exists, instead of replacing it
// as [PutAPIKey] does. Creating an id twice at once, even through two
// service instances sharing a database, gives one success and one conflict.
func CreateAPIKey(k *APIKey) Change {
	return Change{Kind: KindAPIKey, ID: k.ID, APIKey: k, Create: true}
}

// DeleteRecord returns a change that deletes the record of the given kind and id.
func DeleteRecord(kind Kind, id string) Change { return Change{Kind: kind, ID: id, Delete: true} }

// validate checks the change's shape and its record, and returns a copy
// that shares nothing with the caller.
func (c *Change) validate() (Change, error) {
	out := Change{Seq: c.Seq, Kind: c.Kind, ID: c.ID, Delete: c.Delete, Create: c.Create}
	var f fieldErrs
	if c.IfMatch != nil {
		m := c.IfMatch
		switch {
		case c.Create:
			f.add("if_match", "a creation has no present value to match")
		case m.Kind != c.Kind || m.ID != c.ID || m.Delete || m.Create || m.IfMatch != nil:
			f.add("if_match", "must be a plain put of the same kind and id")
		default:
			mv, err := m.validate()
			if err != nil {
				f.prefixed("if_match.", err)
			} else {
				out.IfMatch = &mv
			}
		}
	}
	set := 0
	for _, p := range []bool{c.Policy != nil, c.Subject != nil, c.Device != nil, c.APIKey != nil, c.Revocation != nil} {
		if p {
			set++
		}
	}
	if c.Delete {
		if set != 0 {
			f.add("delete", "a deletion carries no record")
		}
		if c.Create {
			f.add("create", "a deletion is not a creation")
		}
		switch c.Kind {
		case KindPolicy, KindSubject, KindAPIKey, KindRevocation:
			checkID(&f, "id", c.ID)
		case KindDevice:
			checkDeviceID(&f, "id", c.ID)
		default:
			f.add("kind", "unknown kind %q", c.Kind)
		}
		return out, f.err()
	}
	if set != 1 {
		f.add("kind", "a put carries exactly one record")
		return out, f.err()
	}
	var id string
	var err error
	switch c.Kind {
	case KindPolicy:
		if c.Policy == nil {
			break
		}
		out.Policy = c.Policy.clone()
		id, err = out.Policy.ID, out.Policy.Validate()
	case KindSubject:
		if c.Subject == nil {
			break
		}
		out.Subject = c.Subject.clone()
		id, err = out.Subject.ID, out.Subject.Validate()
	case KindDevice:
		if c.Device == nil {
			break
		}
		out.Device = c.Device.clone()
		id, err = out.Device.ID, out.Device.Validate()
	case KindAPIKey:
		if c.APIKey == nil {
			break
		}
		out.APIKey = c.APIKey.clone()
		id, err = out.APIKey.ID, out.APIKey.Validate()
	case KindRevocation:
		if c.Revocation == nil {
			break
		}
		out.Revocation = c.Revocation.clone()
		id, err = out.Revocation.ID, out.Revocation.Validate()
	default:
		f.add("kind", "unknown kind %q", c.Kind)
		return out, f.err()
	}
	if out.Policy == nil && out.Subject == nil && out.Device == nil && out.APIKey == nil && out.Revocation == nil {
		f.add("kind", "record does not match kind %q", c.Kind)
		return out, f.err()
	}
	if err != nil {
		f.prefixed(string(c.Kind)+".", err)
	}
	if id != c.ID {
		f.add("id", "change id %q differs from record id %q", c.ID, id)
	}
	return out, f.err()
}

// record returns the JSON encoding of the change's record.
func (c *Change) record() ([]byte, error) {
	switch {
	case c.Policy != nil:
		return json.Marshal(c.Policy)
	case c.Subject != nil:
		return json.Marshal(c.Subject)
	case c.Device != nil:
		return json.Marshal(c.Device)
	case c.APIKey != nil:
		return json.Marshal(c.APIKey)
	case c.Revocation != nil:
		return json.Marshal(c.Revocation)
	}
	return nil, fmt.Errorf("policy: change carries no record")
}

// DecodeChange builds a put change of the given kind from the JSON encoding
// of its record, decoded strictly. It is for stores that keep records as JSON.
func DecodeChange(kind Kind, body []byte) (Change, error) {
	c := Change{Kind: kind}
	var err error
	switch kind {
	case KindPolicy:
		if c.Policy, err = decodePolicy(body); err == nil {
			c.ID = c.Policy.ID
		}
	case KindSubject:
		c.Subject = new(Subject)
		err = strictUnmarshal(body, c.Subject)
		c.ID = c.Subject.ID
	case KindDevice:
		c.Device = new(Device)
		err = strictUnmarshal(body, c.Device)
		c.ID = c.Device.ID
	case KindAPIKey:
		c.APIKey = new(APIKey)
		err = strictUnmarshal(body, c.APIKey)
		c.ID = c.APIKey.ID
	case KindRevocation:
		c.Revocation = new(Revocation)
		err = strictUnmarshal(body, c.Revocation)
		c.ID = c.Revocation.ID
	default:
		return Change{}, fmt.Errorf("%w: unknown kind %q", ErrInvalid, kind)
	}
	if err != nil {
		return Change{}, fmt.Errorf("%w: %s record: %w", ErrInvalid, kind, err)
	}
	return c, nil
}

// EncodeRecord returns the JSON encoding of a put change's record, for
// stores that keep records as JSON.
func EncodeRecord(c *Change) ([]byte, error) { return c.record() }

// Snapshot is the whole content of a store at one sequence number.
type Snapshot struct {
	Seq      int64      `json:"seq"`
	Policies []*Policy  `json:"policies"`
	Subjects []*Subject `json:"subjects"`
	Devices  []*Device  `json:"devices"`
	APIKeys  []*APIKey  `json:"api_keys"`
	// Revocations are absent from the files of stores written before
	// revocations existed.
	Revocations []*Revocation `json:"revocations,omitempty"`
}

// changes returns the snapshot as a list of put changes.
func (s *Snapshot) changes() []Change {
	out := make([]Change, 0, len(s.Policies)+len(s.Subjects)+len(s.Devices)+len(s.APIKeys)+len(s.Revocations))
	for _, p := range s.Policies {
		out = append(out, PutPolicy(p))
	}
	for _, x := range s.Subjects {
		out = append(out, PutSubject(x))
	}
	for _, x := range s.Devices {
		out = append(out, PutDevice(x))
	}
	for _, x := range s.APIKeys {
		out = append(out, PutAPIKey(x))
	}
	for _, x := range s.Revocations {
		out = append(out, Change{Kind: KindRevocation, ID: x.ID, Revocation: x})
	}
	return out
}
