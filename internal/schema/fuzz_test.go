package schema

import (
	"testing"
	"testing/fstest"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// FuzzLoad: any schema bytes load or fail with positioned problems; none
// panics or recurses without bound.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"a":{"$ref":"common.json#/$defs/a"}}}`,
		`{"$ref":"file:///etc/passwd"}`, `{"$id":"file:///tmp/","$ref":"x"}`, `{"$ref":"../x"}`,
		`{"a":[[[[{"b":"[[["}]]]]}`, "{// x\n/* {[ */\"a\":1}", `{"$schema":"https://json-schema.org/draft/2020-12/schema"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{
			"s.json":      {Data: data},
			"common.json": {Data: []byte(`{"$defs":{"a":{"type":"integer"}}}`)},
		}
		Load(fsys, "s.json", diag.Pos{})
	})
}

// FuzzTooDeep: on every input the JSON parser accepts, the byte scanner
// finds exactly the nesting the parsed tree has, so strings and comments
// never count.
func FuzzTooDeep(f *testing.F) {
	for _, s := range []string{`{"a":[[1]]}`, `{"a":"[[[[[[","b":{}}`, "{// [[[[[[\n\"a\":[/* {{{{{{ */]}", `{"a\"[[[[[[":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, deep := tooDeep(data, 1000); deep {
			return // too deep for the parser to be asked
		}
		doc, problems := tree.ParseJSON("f.json", data)
		if len(problems) > 0 || doc == nil {
			return
		}
		const max = 3
		if _, _, deep := tooDeep(data, max); deep != (depthOf(doc) > max) {
			t.Fatalf("%q: tooDeep = %v, tree depth %d", data, deep, depthOf(doc))
		}
	})
}

func depthOf(v *tree.Value) int {
	if v.Kind != tree.Map && v.Kind != tree.Array {
		return 0
	}
	d := 0
	for _, it := range v.Items {
		d = max(d, depthOf(it))
	}
	for _, f := range v.Fields {
		d = max(d, depthOf(f.Value))
	}
	return d + 1
}
