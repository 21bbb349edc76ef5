package config_test

import (
	"maps"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/resolve"
)

// memCache is config.Cache in memory; gets counts the hits.
type memCache struct {
	m    map[string][]byte
	hits int
}

func (c *memCache) Get(k string) ([]byte, bool) {
	v, ok := c.m[k]
	if ok {
		c.hits++
	}
	return v, ok
}
func (c *memCache) Put(k string, v []byte) { c.m[k] = v }

func cacheWorkspace() fstest.MapFS {
	return fstest.MapFS{
		"envplane.yaml": {Data: []byte("environments: [dev]\nconfig:\n  layers: [\"{env}.yaml\"]\n  schema: schema.json\n" +
			"policies:\n  - name: p\n    rule: config.port > 0\n")},
		"dev.yaml":    {Data: []byte("port: 80\n")},
		"schema.json": {Data: []byte(`{"type": "object", "properties": {"port": {"$ref": "common.json#/$defs/port"}}}`)},
		"common.json": {Data: []byte(`{"$defs": {"port": {"type": "integer", "maximum": 65535}}}`)},
	}
}

// compileErr is CompileWith's problems as text, "" for none.
func compileErr(t *testing.T, fsys fstest.MapFS, o config.Options) string {
	t.Helper()
	c, err := config.CompileWith(fsys, o)
	if err != nil {
		return err.Error()
	}
	res, err := c.Strict(resolve.Request{Env: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Tree.Get("port").Scalar(); got != "80" {
		t.Errorf("port = %s", got)
	}
	if !o.CheckPoliciesOnly && c.Policies == nil {
		t.Error("policies not compiled for evaluation")
	}
	return ""
}

// TestCompileCache: what the cache skips never changes what is reported.
// A schema whose referenced file changed, or a policy that no longer
// compiles, is reported as without the cache.
func TestCompileCache(t *testing.T) {
	cache := &memCache{m: map[string][]byte{}}
	o := config.Options{Cache: cache, CheckPoliciesOnly: true}
	fsys := cacheWorkspace()
	if got := compileErr(t, fsys, o); got != "" {
		t.Fatal(got)
	}
	if len(cache.m) != 2 || cache.hits != 0 {
		t.Fatalf("after the first compile: %d entries, %d hits; want 2 (policies, schema), 0", len(cache.m), cache.hits)
	}
	if got := compileErr(t, fsys, o); got != "" || cache.hits != 2 {
		t.Fatalf("second compile: %q, %d hits; want no problems and 2 hits", got, cache.hits)
	}
	if c, err := config.CompileWith(fsys, o); err != nil || c.Policies != nil {
		t.Fatalf("known policies compiled again for a caller that only checks them (%v)", err)
	}
	withPolicies := o
	withPolicies.CheckPoliciesOnly = false
	if got := compileErr(t, fsys, withPolicies); got != "" {
		t.Fatal(got)
	}

	broken := map[string]fstest.MapFS{
		"referenced file breaks the metaschema": {"common.json": {Data: []byte(`{"$defs": {"port": {"type": 12}}}`)}},
		"referenced file gone":                  {"common.json": nil},
		"policy does not compile": {"envplane.yaml": {Data: []byte("environments: [dev]\nconfig:\n  layers: [\"{env}.yaml\"]\n  schema: schema.json\n" +
			"policies:\n  - name: p\n    rule: config.port >\n")}},
	}
	for name, change := range broken {
		fsys := maps.Clone(cacheWorkspace())
		for f, v := range change {
			if v == nil {
				delete(fsys, f)
			} else {
				fsys[f] = v
			}
		}
		want := compileErr(t, fsys, config.Options{})
		if want == "" {
			t.Fatalf("%s: no problem without the cache", name)
		}
		for _, o := range []config.Options{o, withPolicies} {
			if got := compileErr(t, fsys, o); got != want {
				t.Errorf("%s: with the cache:\n%s\nwithout:\n%s", name, got, want)
			}
		}
	}

	// A corrupt value is a miss.
	for k := range cache.m {
		cache.m[k] = []byte("garbage")
	}
	if diff := cmp.Diff("", compileErr(t, cacheWorkspace(), o)); diff != "" {
		t.Error(diff)
	}
}
