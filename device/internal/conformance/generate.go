package conformance

import (
	"bytes"
	"encoding/json"
)

// groups make the files of vectors, in order.
var groups = []func(*gen){
	accepted,
	size,
	envelope,
	parseBundle,
	parseToken,
	cwtForms,
	weakKeys,
	anchors,
	tokenSignature,
	profile,
	anchorConstraints,
	delegation,
	audience,
	timeChecks,
	proofOfPossession,
	nonces,
	revocation,
	scope,
	operation,
	v2Responses,
}

// Files returns the vector files by name: keys.json and one file per group.
// The result is the same on every call.
func Files() (files map[string][]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			ge, ok := r.(genError)
			if !ok {
				panic(r)
			}
			files, err = nil, ge.err
		}
	}()
	g := &gen{keys: map[string]*key{}, names: map[string]bool{}}
	keys := Keys{
		Format: Format,
		Description: "The keys of the conformance vectors. TEST ONLY: the private halves are published, " +
			"so that an implementation can make the same tokens and requests; never trust these keys outside tests.",
	}
	for _, s := range keySpecs {
		k := must(newKey(s.name, s.role, s.alg))
		g.keys[s.name] = k
		keys.Keys = append(keys.Keys, k.Key)
	}
	for _, add := range groups {
		add(g)
	}
	files = map[string][]byte{KeysFile: encode(keys)}
	for _, gr := range g.groups {
		for _, c := range gr.cases {
			if len(c.Steps) == 0 || len(c.Setup.Nonces) > c.Setup.MaxNonces {
				fail("%s: %d steps, %d nonces outstanding of %d", c.Name, len(c.Steps), len(c.Setup.Nonces), c.Setup.MaxNonces)
			}
			gr.file.Cases = append(gr.file.Cases, *c)
		}
		files[gr.file.Group+".json"] = encode(gr.file)
	}
	return files, nil
}

// encode returns v as indented JSON with a final newline.
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fail("encoding JSON: %v", err)
	}
	return buf.Bytes()
}
