package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// maxAdminFile bounds a record, change, or test file that the admin
// commands read; the service takes bodies of at most 1 MiB of JSON, which
// YAML may spell longer.
const maxAdminFile = 4 << 20

// readJSONOrYAML reads a JSON or YAML file ("-": stdin) and returns it as
// JSON. YAML is converted with sigs.k8s.io/yaml's YAMLToJSON and the
// result is then decoded as strictly as JSON (strictJSON), so that a field
// the service does not know is refused whatever the file's syntax: a
// typing mistake in a policy file must not silently drop a restriction.
func (e *env) readJSONOrYAML(path string) ([]byte, error) {
	data, err := e.readFile(path, maxAdminFile)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, inputErr(fmt.Errorf("%s: empty", path))
	}
	if json.Valid(trimmed) {
		return trimmed, nil // JSON, decoded as it is
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: neither JSON nor YAML: %w", path, err))
	}
	return j, nil
}

// strictJSON decodes exactly one JSON value into v, refusing unknown
// fields and trailing data, as the service does.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}
