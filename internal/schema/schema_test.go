package schema_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/schema"
	"github.com/envplane/envplane/internal/tree"
)

const doc = `{
  // comments are allowed
  "type": "object",
  "properties": {
    "server": {
      "type": "object",
      "properties": {
        "port": {"type": "integer", "maximum": 65535, "default": 8080},
        "hosts": {"type": "array", "items": {"type": "string"}}
      }
    },
    "ratio": {"type": ["number", "null"]},
    "any": {}
  },
}`

func load(t *testing.T) *schema.Schema {
	t.Helper()
	s, err := schema.Load(fstest.MapFS{"s.json": {Data: []byte(doc)}}, "s.json", diag.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDefaults(t *testing.T) {
	d := load(t).Defaults()
	if diff := cmp.Diff(map[string]any{"server": map[string]any{"port": int64(8080)}}, d.Interface()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	port := d.Lookup([]string{"server", "port"})
	if port.Src.Kind != tree.SourceDefault || port.Src.Name != "s.json" || port.Src.Line != 8 {
		t.Errorf("port default source = %+v, want s.json:8", port.Src)
	}
}

func TestKindAt(t *testing.T) {
	s := load(t)
	type kinds struct {
		Kind, Elem tree.Kind
		OK         bool
	}
	tests := map[string]kinds{
		"server.port":    {tree.Int, 0, true},
		"server.hosts":   {tree.Array, tree.String, true},
		"server.hosts.0": {tree.String, 0, true},
		"ratio":          {tree.Float, 0, true},
		"any":            {0, 0, false},
		"missing":        {0, 0, false},
	}
	for path, want := range tests {
		k, e, ok := s.KindAt(splitDots(path))
		if diff := cmp.Diff(want, kinds{k, e, ok}); diff != "" {
			t.Errorf("KindAt(%s) (-want +got):\n%s", path, diff)
		}
	}
}

func TestValidate(t *testing.T) {
	cfg, errs := tree.ParseYAML("c.yaml", []byte("server:\n  port: 70000\n  hosts: [a, 1]\n"))
	if errs != nil {
		t.Fatal(errs)
	}
	got := load(t).Validate(cfg)
	want := []schema.Violation{
		{Path: "server.hosts.1", Message: "got number, want string"},
		{Path: "server.port", Message: "maximum: got 70000, want 65535"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func splitDots(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}
