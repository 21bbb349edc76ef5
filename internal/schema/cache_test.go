package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// compilerDoc builds what decoding the re-encoded document gave the
// compiler before: the same maps, slices, json.Numbers and strings.
func TestCompilerDocIsTheDecodedJSON(t *testing.T) {
	docs := map[string]string{
		"arka":    string(must(os.ReadFile("../../examples/arka/config/schema.json"))),
		"ws100":   string(must(os.ReadFile("../../scripts/compare/ws100/config/schema.json"))),
		"numbers": `{"a": 1, "b": -0, "c": 1.5e300, "d": 18446744073709551615, "e": 9223372036854775808, "f": 0.1, "g": 1e-7, "h": 1E+2}`,
		"strings": `{"a": "\u00e9\ud83d\ude00", "b": "\ud800", "c": "tab\tquote\"", "": "empty key", "dup": 1, "dup": 2}`,
		"nested":  `{"a": [[], {}, [null, true, false, {"x": [1, "y"]}]], /* comment */ "b": {"c": {"d": {}},},}`,
	}
	for name, src := range docs {
		v, problems := tree.ParseJSON("s.json", []byte(src))
		if problems != nil {
			if name == "strings" { // duplicate keys are refused by the parser
				continue
			}
			t.Fatalf("%s: %v", name, problems)
		}
		want, err := jsonschema.UnmarshalJSON(bytes.NewReader(standardJSON(v)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, compilerDoc(v)); diff != "" {
			t.Errorf("%s (-decoded +built):\n%s", name, diff)
		}
	}
	// Values no parser makes still come out as decoding would make them.
	odd := &tree.Value{Kind: tree.Map, Fields: []tree.Field{
		{Key: "bad\xffkey", Value: &tree.Value{Kind: tree.String, Str: "x"}},
	}}
	for _, v := range []*tree.Value{odd, {Kind: tree.String, Str: "a\xffb"}, {Kind: tree.Kind(99)}} {
		want, _ := jsonschema.UnmarshalJSON(bytes.NewReader(standardJSON(v)))
		if diff := cmp.Diff(want, compilerDoc(v)); diff != "" {
			t.Errorf("%#v (-decoded +built):\n%s", v, diff)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type memCache struct {
	m          map[string][]byte
	gets, hits int
}

func (c *memCache) Get(k string) ([]byte, bool) {
	c.gets++
	v, ok := c.m[k]
	if ok {
		c.hits++
	}
	return v, ok
}
func (c *memCache) Put(k string, v []byte) { c.m[k] = v }

// The trusted compile skips the metaschema check and nothing else. If a
// jsonschema release checks documents under json-schema.org too, the first
// part fails: LoadCached then gains nothing (and loses nothing).
func TestTrustedCompile(t *testing.T) {
	bad := fstest.MapFS{"s.json": {Data: []byte(`{"type": 12}`)}}
	if _, err := Load(bad, "s.json", diag.Pos{}); err == nil {
		t.Fatal("a schema breaking the metaschema compiled")
	}
	if _, _, err := compile(bad, "s.json", bad["s.json"].Data, true); err != nil {
		t.Errorf("the trusted compile checked the metaschema: %v", err)
	}

	// Validation is the same either way, across files, for every keyword
	// kind the example schemas use and a few more.
	fsys := fstest.MapFS{
		"config/schema.json": {Data: []byte(`{
			"type": "object",
			"properties": {
				"port": {"$ref": "common/defs.json#/$defs/port"},
				"name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
				"mode": {"enum": ["a", "b"]},
				"tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 2},
				"limits": {"type": "object", "required": ["cpu"], "additionalProperties": false,
					"properties": {"cpu": {"type": "number", "exclusiveMinimum": 0}}},
				"either": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]},
				"url": {"type": "string", "format": "uri"}
			},
			"required": ["port", "name"],
			"unevaluatedProperties": {"type": ["string", "integer", "object", "array", "boolean"]}
		}`)},
		"config/common/defs.json": {Data: []byte(`{"$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}}}`)},
	}
	configs := []string{
		"port: 80\nname: web\n",
		"port: 70000\nname: W\nmode: c\ntags: [a, a, b]\nlimits: {cpu: 0, mem: 1}\neither: x\nurl: 'not a uri'\nextra: 1.5\n",
		"name: 1\nlimits: {}\n",
		"{}\n",
	}
	cache := &memCache{m: map[string][]byte{}}
	for round := 0; round < 2; round++ {
		full, err := Load(fsys, "config/schema.json", diag.Pos{})
		if err != nil {
			t.Fatal(err)
		}
		cached, err := LoadCached(fsys, "config/schema.json", diag.Pos{}, cache)
		if err != nil {
			t.Fatal(err)
		}
		if cached.trusted != (round == 1) {
			t.Fatalf("round %d: trusted = %v", round, cached.trusted)
		}
		for _, c := range configs {
			cfg, problems := tree.ParseYAML("c.yaml", []byte(c))
			if problems != nil {
				t.Fatal(problems)
			}
			want, got := full.Validate(cfg), cached.Validate(cfg)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round %d, %q (-full +cached):\n%s", round, c, diff)
			}
			if c != configs[0] && len(want) == 0 {
				t.Errorf("%q: no violations", c)
			}
		}
	}
	if cache.hits != 1 {
		t.Errorf("%d cache hits, want 1", cache.hits)
	}

	// A referenced file that changed since is compiled with every check.
	changed := fstest.MapFS{"config/schema.json": fsys["config/schema.json"],
		"config/common/defs.json": {Data: []byte(`{"$defs": {"port": {"type": "integer", "minimum": "1"}}}`)}}
	_, want := Load(changed, "config/schema.json", diag.Pos{})
	_, got := LoadCached(changed, "config/schema.json", diag.Pos{}, cache)
	if want == nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changed referenced file: got %v, want %v", got, want)
	}
}

// countFS counts the reads of each file.
type countFS struct {
	fstest.MapFS
	reads map[string]int
}

func (c countFS) Open(name string) (fs.File, error) {
	c.reads[name]++
	return c.MapFS.Open(name)
}

func (c countFS) ReadFile(name string) ([]byte, error) {
	c.reads[name]++
	return c.MapFS.ReadFile(name)
}

// On a hit, LoadCached compiles nothing until the first Validate; files
// that changed in between are compiled as Load does, problems included.
func TestKnownSchemaCompilesOnFirstValidate(t *testing.T) {
	fsys := countFS{fstest.MapFS{
		"schema.json": {Data: []byte(`{"properties": {"port": {"$ref": "defs.json#/$defs/port"}}}`)},
		"defs.json":   {Data: []byte(`{"$defs": {"port": {"type": "integer", "maximum": 10}}}`)},
	}, map[string]int{}}
	cache := &memCache{m: map[string][]byte{}}
	if _, err := LoadCached(fsys, "schema.json", diag.Pos{}, cache); err != nil {
		t.Fatal(err)
	}
	cfg, _ := tree.ParseYAML("c.yaml", []byte("port: 11\n"))
	want := []Violation{{Path: "port", Message: "maximum: got 11, want 10"}}
	for _, change := range []bool{false, true} {
		clear(fsys.reads)
		s, err := LoadCached(fsys, "schema.json", diag.Pos{}, cache)
		if err != nil {
			t.Fatal(err)
		}
		if !s.trusted || fsys.reads["defs.json"] != 1 {
			t.Fatalf("hit: trusted %v, defs.json read %d times before Validate; want true, 1 (its digest)", s.trusted, fsys.reads["defs.json"])
		}
		if change {
			fsys.MapFS["defs.json"] = &fstest.MapFile{Data: []byte(`{"$defs": {"port": {"type": 12}}}`)}
			_, err := Load(fsys.MapFS, "schema.json", diag.Pos{})
			if err == nil {
				t.Fatal("the changed file compiles")
			}
			want = []Violation{{Message: err.Error()}}
		}
		if diff := cmp.Diff(want, s.Validate(cfg)); diff != "" {
			t.Errorf("changed %v (-want +got):\n%s", change, diff)
		}
		// Once for the digest, once by the compile; changed, once more by
		// the compile with every check.
		if n := map[bool]int{false: 2, true: 3}[change]; fsys.reads["defs.json"] != n {
			t.Errorf("defs.json read %d times, want %d", fsys.reads["defs.json"], n)
		}
	}
}

// A cache entry is only a hint: one that is not JSON, misses the file,
// names another digest, or lists more files than a schema may read is a
// miss (and never makes LoadCached read more than maxFiles files).
func TestKnownRefusesOddEntries(t *testing.T) {
	data := []byte(`{"type": "object"}`)
	fsys := fstest.MapFS{"s.json": {Data: data}}
	if known(fsys, "s.json", data, `{"s.json":"`+digest(data)+`"}`) == nil {
		t.Fatal("a good entry was refused")
	}
	many := map[string]string{"s.json": digest(data)}
	for i := 0; i <= maxFiles; i++ {
		many[fmt.Sprintf("f%d.json", i)] = digest(nil)
		fsys[fmt.Sprintf("f%d.json", i)] = &fstest.MapFile{}
	}
	b, _ := json.Marshal(many)
	for _, entry := range []string{"garbage", `{}`, `{"s.json":"00"}`, string(b)} {
		if known(fsys, "s.json", data, entry) != nil {
			t.Errorf("entry %.60q was taken", entry)
		}
	}
}
