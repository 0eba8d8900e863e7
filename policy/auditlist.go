package policy

import (
	"encoding/json"
	"strings"
)

// auditList is a list of strings in an audit event, such as a token
// request's audiences. slog's text handler writes a value of a type of
// its own with fmt's "%+v" (reflection, about 40% of the cost of an
// event); a list written through MarshalText ("[a b]", what "%+v" writes
// of a []string) and MarshalJSON (the JSON array of the strings) reads
// the same in the text and JSON handlers, for less. Handlers of the
// user's see a value of kind Any holding an auditList, a []string by
// reflection.
type auditList []string

// MarshalText returns the list as fmt's "%+v" formats a []string: the
// strings between brackets, separated by single spaces.
func (l auditList) MarshalText() ([]byte, error) {
	n := 2
	for _, s := range l {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return append(b, ']'), nil
}

// MarshalJSON returns the JSON array of the strings (null when nil), as
// encoding/json writes a []string.
func (l auditList) MarshalJSON() ([]byte, error) { return json.Marshal([]string(l)) }

// String returns the text of MarshalText.
func (l auditList) String() string { return "[" + strings.Join(l, " ") + "]" }
