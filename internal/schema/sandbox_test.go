package schema_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/schema"
	"github.com/envplane/envplane/internal/tree"
)

const help = `a schema may reference only schema files of the same workspace, by relative path (such as "common.json#/$defs/port"), and the JSON Schema metaschemas; it is not read`

// TestRefSandbox: a schema reaches files of its workspace and the
// metaschemas, and nothing else: no file of the disk, no URL of the
// network, whatever the reference looks like.
func TestRefSandbox(t *testing.T) {
	// A file outside the workspace, with a canary: its content must never
	// reach an error, and a real file proves the refusal is not just a
	// missing file.
	outside := t.TempDir()
	const canary = "CANARY-schema-4d1e"
	if err := os.WriteFile(filepath.Join(outside, "secret.json"), []byte(`{"`+canary+`": 1`), 0o600); err != nil {
		t.Fatal(err)
	}
	fileURL := "file://" + filepath.ToSlash(outside) + "/"
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"type":"string"}`))
	}))
	defer srv.Close()

	tests := []struct {
		name   string
		schema string
		want   []string // the whole error, one problem a line; contains-match when a line ends with "…"
	}{
		{"file URL", `{"$ref":"file:///etc/passwd"}`,
			[]string{`config/schema.json:1:9: $ref "file:///etc/passwd" refers outside the workspace; ` + help}},
		{"file URL to a real file", `{"properties":{"a":{"$ref":"` + fileURL + `secret.json"}}}`,
			[]string{`config/schema.json:1:28: $ref "` + fileURL + `secret.json" refers outside the workspace; ` + help}},
		{"http URL", `{"$ref":"` + srv.URL + `/s.json"}`,
			[]string{`config/schema.json:1:9: $ref "` + srv.URL + `/s.json" refers outside the workspace; ` + help}},
		{"https URL", `{"$dynamicRef":"https://example.com/s.json#x"}`,
			[]string{`config/schema.json:1:16: $dynamicRef "https://example.com/s.json#x" refers outside the workspace; ` + help}},
		{"network-path reference", `{"$ref":"//example.com/s.json"}`,
			[]string{`config/schema.json:1:9: $ref "//example.com/s.json" refers outside the workspace; ` + help}},
		{"dot-dot escape", `{"$ref":"../../etc/passwd"}`,
			[]string{`config/schema.json:1:9: $ref "../../etc/passwd" leaves the workspace; ` + help}},
		{"absolute path", `{"$ref":"/etc/passwd"}`,
			[]string{`config/schema.json:1:9: $ref "/etc/passwd" is an absolute path; ` + help}},
		{"file $schema", `{"$schema":"file:///etc/passwd"}`,
			[]string{`config/schema.json:1:12: $schema "file:///etc/passwd" is not a JSON Schema metaschema (such as "https://json-schema.org/draft/2020-12/schema"); ` + help}},
		{"every problem at once", "{\n\"a\":{\"$ref\":\"/x\"},\n\"b\":{\"$ref\":\"" + srv.URL + "\"}}",
			[]string{`config/schema.json:2:13: $ref "/x" is an absolute path; ` + help,
				`config/schema.json:3:13: $ref "` + srv.URL + `" refers outside the workspace; ` + help}},
		// An $id makes a relative reference absolute where no check of the
		// reference text can see it: the loader refuses it all the same.
		{"$id to the disk", `{"$id":"` + fileURL + `","$ref":"secret.json"}`,
			[]string{`config/schema.json:1:1: invalid schema: failing loading "` + fileURL + `secret.json": refused: ` + help}},
		{"$id to the network", `{"$id":"` + srv.URL + `/","$ref":"s.json"}`,
			[]string{`config/schema.json:1:1: invalid schema: failing loading "` + srv.URL + `/s.json": refused: ` + help}},
		{"missing workspace file", `{"properties":{"a":{"$ref":"nope.json"}}}`,
			[]string{`config/schema.json:1:28: $ref: cannot read config/nope.json: file does not exist`}},
		{"escape from a referenced file", `{"$ref":"defs/escape.json"}`,
			[]string{`config/defs/escape.json:1:9: $ref "../../../x.json" leaves the workspace; ` + help}},
		{"deep referenced file", `{"$ref":"defs/deep.json"}`,
			[]string{`config/defs/deep.json:1:1001: nesting deeper than 200 levels`}},
	}
	fsys := fstest.MapFS{
		"config/defs/escape.json": {Data: []byte(`{"$ref":"../../../x.json"}`)},
		"config/defs/deep.json":   {Data: []byte(strings.Repeat(`{"a":`, 201))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys["config/schema.json"] = &fstest.MapFile{Data: []byte(tt.schema)}
			_, err := schema.Load(fsys, "config/schema.json", diag.Pos{File: "envplane.yaml", Line: 3, Column: 11})
			if err == nil {
				t.Fatal("loaded")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the error shows a file outside the workspace: %v", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the schema compiler made %d HTTP requests", n)
	}
}

// TestRefsInsideWorkspace: relative references between workspace files,
// # pointers, $ids and metaschemas all work, and what they reference
// validates.
func TestRefsInsideWorkspace(t *testing.T) {
	fsys := fstest.MapFS{
		"config/schema.json": {Data: []byte(`{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "port": {"$ref": "common.json#/$defs/port"},
    "db": {"$ref": "defs/db.json"},
    "name": {"$ref": "#/$defs/name"},
    "tag": {"$ref": "urn:example:tag"},
    "doc": {"const": {"$ref": "file:///etc/passwd"}, "default": {"$ref": "/x"}}
  },
  "$defs": {
    "name": {"type": "string", "minLength": 2},
    "tag": {"$id": "urn:example:tag", "type": "string", "pattern": "^v"}
  }
}`)},
		"config/common.json": {Data: []byte(`{
  // comments are allowed in referenced files too
  "$defs": {"port": {"type": "integer", "maximum": 65535}},
}`)},
		"config/defs/db.json": {Data: []byte(`{"type": "object", "properties": {"port": {"$ref": "../common.json#/$defs/port"}}}`)},
		"config/draft7.json":  {Data: []byte(`{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}`)},
	}
	s, err := schema.Load(fsys, "config/schema.json", diag.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, errs := tree.ParseYAML("c.yaml", []byte("port: 70000\ndb: {port: x}\nname: a\ntag: w1\ndoc: {\"$ref\": \"file:///etc/passwd\"}\n"))
	if errs != nil {
		t.Fatal(errs)
	}
	want := []schema.Violation{
		{Path: "db.port", Message: "got string, want integer"},
		{Path: "name", Message: "minLength: got 1, want 2"},
		{Path: "port", Message: "maximum: got 70000, want 65535"},
		{Path: "tag", Message: "'w1' does not match pattern '^v'"},
	}
	if diff := cmp.Diff(want, s.Validate(cfg)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := schema.Load(fsys, "config/draft7.json", diag.Pos{}); err != nil {
		t.Errorf("draft-07 metaschema: %v", err)
	}
}

// TestDepthBound: nesting is bounded before any parser recurses, so a
// schema of a million open brackets is a quick error, not a crash.
func TestDepthBound(t *testing.T) {
	for name, data := range map[string]string{
		"objects":  strings.Repeat(`{"a":`, 1_000_000),
		"arrays":   `{"a":` + strings.Repeat("[", 1_000_000),
		"in lines": "{\"s\": \"" + strings.Repeat("[{", 300) + "\\\"[\",\n  // {{{{ comments and \"strings {[\" do not count\n  \"a\":" + strings.Repeat("[", 199) + "1" + strings.Repeat("]", 199) + ",\n  \"b\":" + strings.Repeat("[", 199) + "\n" + strings.Repeat("[", 10),
	} {
		_, err := schema.Load(fstest.MapFS{"s.json": {Data: []byte(data)}}, "s.json", diag.Pos{})
		if err == nil || !strings.Contains(err.Error(), "nesting deeper than 200 levels") {
			t.Errorf("%s: %.300v", name, err)
		}
		if name == "in lines" && (err == nil || !strings.HasPrefix(err.Error(), "s.json:5:1:")) {
			t.Errorf("%s: %v; want it at s.json:5:1", name, err)
		}
	}
	ok := `{"a":` + strings.Repeat("[", 199) + strings.Repeat("]", 199) + "}"
	if _, err := schema.Load(fstest.MapFS{"s.json": {Data: []byte(ok)}}, "s.json", diag.Pos{}); err != nil && strings.Contains(err.Error(), "nesting") {
		t.Errorf("200 levels: %v", err)
	}
}
