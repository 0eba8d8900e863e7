package policy

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// strictUnmarshal decodes exactly one JSON value into v, rejecting unknown
// fields and trailing data. A refusal is a *[JSONError] naming the JSON
// path of the failing value, except an error of a type's own UnmarshalJSON
// that is not about the JSON's shape (such as a *[ValidationError]), which
// is returned as it is.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return &JSONError{Problem: JSONSyntax, Offset: se.Offset}
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return &JSONError{Problem: JSONSyntax, Offset: int64(len(b))}
		}
		// encoding/json names neither the path of an unknown field nor
		// list indexes: walk the document along v's type to find the
		// first value it refused.
		if je := locateJSONError(b, reflect.TypeOf(v)); je != nil {
			return je
		}
		return err
	}
	// More would miss a trailing ']' or '}': only the end of input may follow.
	if _, err := dec.Token(); err != io.EOF {
		return &JSONError{Problem: JSONTrailingData, Offset: dec.InputOffset()}
	}
	return nil
}

// jsonShaper is implemented by the types whose UnmarshalJSON decodes the
// JSON shape of another type (as [Policy] does), so that locateJSONError
// can look inside them.
type jsonShaper interface {
	jsonShape() reflect.Type
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	jsonShaperType      = reflect.TypeFor[jsonShaper]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// locateJSONError walks the valid JSON document b along the Go type t as
// encoding/json decodes it (DisallowUnknownFields set) and returns the
// first value, in document order, that encoding/json refuses: an unknown
// member, or a value of the wrong JSON type. It returns nil when it finds
// none. The walk is bounded by the size of b and the depth of t.
func locateJSONError(b []byte, t reflect.Type) *JSONError {
	if t == nil {
		return nil
	}
	return walkJSON(b, t, "")
}

func walkJSON(raw []byte, t reflect.Type, path string) *JSONError {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] == 'n' { // null leaves any value as it is
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	wrong := func(expected string) *JSONError {
		return &JSONError{Problem: JSONWrongType, Path: path, Expected: expected}
	}
	pt := reflect.PointerTo(t)
	switch {
	case t == timeType:
		var tm time.Time
		if raw[0] != '"' || tm.UnmarshalJSON(raw) != nil {
			return wrong("RFC 3339 time")
		}
		return nil
	case pt.Implements(jsonShaperType):
		t = reflect.New(t).Interface().(jsonShaper).jsonShape()
	case pt.Implements(jsonUnmarshalerType):
		return nil // its own format
	case pt.Implements(textUnmarshalerType):
		if raw[0] != '"' {
			return wrong("string")
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if raw[0] != '{' {
			return wrong("object")
		}
		fields := jsonFieldsOf(t)
		return eachMember(raw, func(key string, v []byte) *JSONError {
			ft, ok := fields.lookup(key)
			if !ok {
				return &JSONError{Problem: JSONUnknownField, Path: joinPath(path, key)}
			}
			return walkJSON(v, ft, joinPath(path, key))
		})
	case reflect.Map:
		if raw[0] != '{' {
			return wrong("object")
		}
		return eachMember(raw, func(key string, v []byte) *JSONError {
			return walkJSON(v, t.Elem(), joinPath(path, key))
		})
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(jsonUnmarshalerType) {
			var s string
			if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
				return wrong("base64")
			}
			if _, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(s)); err != nil {
				return wrong("base64")
			}
			return nil
		}
		if raw[0] != '[' {
			return wrong("array")
		}
		return eachElement(raw, func(i int, v []byte) *JSONError {
			return walkJSON(v, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		})
	case reflect.String:
		if raw[0] != '"' {
			return wrong("string")
		}
	case reflect.Bool:
		if raw[0] != 't' && raw[0] != 'f' {
			return wrong("boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(string(raw), 10, t.Bits()); err != nil {
			return wrong("integer")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if _, err := strconv.ParseUint(string(raw), 10, t.Bits()); err != nil {
			return wrong("integer")
		}
	case reflect.Float32, reflect.Float64:
		if raw[0] == '"' || raw[0] == '{' || raw[0] == '[' || raw[0] == 't' || raw[0] == 'f' {
			return wrong("number")
		}
		if _, err := strconv.ParseFloat(string(raw), t.Bits()); err != nil {
			return wrong("number")
		}
	}
	return nil
}

// joinPath appends a member name to a JSON path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// eachMember calls f with each member of the JSON object raw, in order,
// until f returns an error.
func eachMember(raw []byte, f func(key string, v []byte) *JSONError) *JSONError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return nil
		}
		if je := f(key, v); je != nil {
			return je
		}
	}
	return nil
}

// eachElement calls f with each element of the JSON array raw, in order,
// until f returns an error.
func eachElement(raw []byte, f func(i int, v []byte) *JSONError) *JSONError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	for i := 0; dec.More(); i++ {
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return nil
		}
		if je := f(i, v); je != nil {
			return je
		}
	}
	return nil
}

// jsonFields are the members a struct type decodes, by JSON name, as
// encoding/json finds them: tagged or exported fields, with the fields of
// untagged embedded structs promoted (the shallower field wins).
type jsonFields struct {
	names []string
	types []reflect.Type
}

func jsonFieldsOf(t reflect.Type) *jsonFields {
	fs := &jsonFields{}
	seen := map[string]bool{}
	level := []reflect.Type{t}
	for depth := 0; len(level) > 0 && depth < 8; depth++ {
		var next []reflect.Type
		for _, st := range level {
			for i := range st.NumField() {
				f := st.Field(i)
				tag := f.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				ft := f.Type
				if f.Anonymous && name == "" {
					for ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if ft.Kind() == reflect.Struct {
						next = append(next, ft)
						continue
					}
				}
				if !f.IsExported() {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if !seen[name] {
					seen[name] = true
					fs.names = append(fs.names, name)
					fs.types = append(fs.types, f.Type)
				}
			}
		}
		level = next
	}
	return fs
}

// lookup finds the field a member name decodes into: the exact name, else
// one equal under case folding, as encoding/json matches them.
func (fs *jsonFields) lookup(key string) (reflect.Type, bool) {
	for i, n := range fs.names {
		if n == key {
			return fs.types[i], true
		}
	}
	for i, n := range fs.names {
		if strings.EqualFold(n, key) {
			return fs.types[i], true
		}
	}
	return nil, false
}
