package policy

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/securedeviceaccess/sda/token"
)

// SubjectKind says whether a subject is a person or a program.
type SubjectKind string

// Subject kinds.
const (
	User        SubjectKind = "user"
	Application SubjectKind = "application"
)

// Subject is a directory entry: a user or application and the groups it
// belongs to. Policies name subjects by id under their kind, or by group.
type Subject struct {
	ID     string      `json:"id"`
	Kind   SubjectKind `json:"kind"`
	Groups []string    `json:"groups,omitempty"`
}

// Validate reports whether the subject is well formed (see [Policy.Validate]).
func (s *Subject) Validate() error {
	var f fieldErrs
	checkID(&f, "id", s.ID)
	if s.Kind != User && s.Kind != Application {
		f.add("kind", "must be %q or %q", User, Application)
	}
	checkIDList(&f, "groups", s.Groups, checkID)
	return f.err()
}

func (s *Subject) clone() *Subject {
	c := *s
	c.Groups = slices.Clone(s.Groups)
	return &c
}

// Device is a directory entry: a device's identity and its custom
// attributes. Token audiences name devices as "id:<ID>" or
// "ep:<EndpointName>" (legacy "device-id:" and "endpoint-name:").
type Device struct {
	// ID is the device id, 32 lower-case hexadecimal digits.
	ID string `json:"id"`
	// EndpointName is optional; when set it is unique among devices.
	EndpointName string            `json:"endpoint_name,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

// Validate reports whether the device is well formed (see [Policy.Validate]).
func (d *Device) Validate() error {
	var f fieldErrs
	checkDeviceID(&f, "id", d.ID)
	if d.EndpointName != "" {
		checkEndpointName(&f, "endpoint_name", d.EndpointName)
	}
	if len(d.Attributes) > maxAttributes {
		f.add("attributes", "more than %d attributes", maxAttributes)
	} else {
		var buf [4]string
		for _, k := range sortedKeys(buf[:0], d.Attributes) {
			// The field's name is built only for a report.
			m := len(f.list)
			checkAttrKey(&f, "", k)
			checkAttrValue(&f, "", d.Attributes[k])
			for i := m; i < len(f.list); i++ {
				f.list[i].Name = "attributes." + k
			}
		}
	}
	return f.err()
}

func (d *Device) clone() *Device {
	c := *d
	c.Attributes = maps.Clone(d.Attributes)
	return &c
}

// APIKey maps a bearer credential to a subject. Only the SHA-256 hash of
// the secret is kept; the secret itself is shown once, when it is created
// (see [NewAPIKey]). Admin keys may also use the administration API. A key
// authenticates only while its subject is in the directory; the
// administration API deletes a subject's keys with the subject, and a
// program that deletes subjects through a [Store] should do the same, in
// the same batch, so that reusing the subject's id cannot revive them.
type APIKey struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Admin     bool      `json:"admin,omitempty"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// apiKeyPrefix starts every secret made by [NewAPIKey], so that leaked
// secrets are easy to recognise.
const apiKeyPrefix = "sda_"

// HashAPIKey returns the hash under which an API key secret is stored.
// Secrets are 256-bit random values, so a fast hash suffices.
func HashAPIKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Validate reports whether the API key record is well formed.
func (k *APIKey) Validate() error {
	var f fieldErrs
	checkID(&f, "id", k.ID)
	checkID(&f, "subject", k.Subject)
	if len(k.Hash) != sha256.Size {
		f.add("hash", "must be a %d-byte SHA-256 hash", sha256.Size)
	}
	return f.err()
}

func (k *APIKey) clone() *APIKey {
	c := *k
	c.Hash = slices.Clone(k.Hash)
	return &c
}

// devRef is a parsed audience entry: a device id or an endpoint name.
type devRef struct {
	byID bool   // v is a device id; otherwise an endpoint name
	v    string // a substring of the audience entry
}

// key returns r's device key: "i\x00<id>" or "e\x00<name>".
func (r devRef) key() string {
	if r.byID {
		return "i\x00" + r.v
	}
	return "e\x00" + r.v
}

// refOfKey returns the devRef of the device key k ("i\x00<id>" or
// "e\x00<name>").
func refOfKey(k string) devRef { return devRef{byID: k[0] == 'i', v: k[2:]} }

// parseAudience splits a token audience into its device key: "i\x00<id>"
// for device ids and "e\x00<name>" for endpoint names.
func parseAudience(aud string) (key string, err error) {
	r, err := parseAudienceRef(aud)
	if err != nil {
		return "", err
	}
	return r.key(), nil
}

// parseAudienceRef parses a token audience entry into the device it
// names, without allocating: the result refers to aud.
func parseAudienceRef(aud string) (devRef, error) {
	var prefix, v string
	for _, p := range [...]string{token.PrefixEndpoint, token.PrefixLegacyEndpoint, token.PrefixDeviceID, token.PrefixLegacyDeviceID} {
		if strings.HasPrefix(aud, p) {
			prefix, v = p, aud[len(p):]
			break
		}
	}
	var f fieldErrs
	var r devRef
	switch prefix {
	case token.PrefixEndpoint, token.PrefixLegacyEndpoint:
		checkEndpointName(&f, "aud", v)
		r = devRef{v: v}
	case token.PrefixDeviceID, token.PrefixLegacyDeviceID:
		checkDeviceID(&f, "aud", v)
		r = devRef{byID: true, v: v}
	default:
		f.add("aud", "must start with ep:, id:, endpoint-name: or device-id:")
	}
	if err := f.err(); err != nil {
		return devRef{}, err
	}
	return r, nil
}

// validateAudience reports whether aud is a well-formed token audience
// entry: a prefix ("ep:", "id:", "endpoint-name:", "device-id:") and a
// device identity within the limits of the original service.
func validateAudience(aud string) error {
	_, err := parseAudience(aud)
	if err != nil {
		return fmt.Errorf("audience %q: %w", aud, err)
	}
	return nil
}
