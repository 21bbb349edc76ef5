package release

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/envplane/envplane/internal/resolve"
)

// The release file system behaves as io/fs expects of any file system.
func TestFSConforms(t *testing.T) {
	fsys := FS(map[string][]byte{
		"envplane.yaml":                    []byte("environments: [{name: dev}]\n"),
		"config/default.yaml":              []byte("a: 1\n"),
		"config/environments/dev.yaml":     []byte("b: 2\n"),
		"config/environments/staging.yaml": nil,
	})
	if err := fstest.TestFS(fsys, "envplane.yaml", "config/default.yaml", "config/environments/dev.yaml", "config/environments/staging.yaml"); err != nil {
		t.Fatal(err)
	}
}

// A loaded release's resolver reads the release's own bytes (LendFile)
// instead of keeping a copy of every file: a server holding a release keeps
// its files once. The test proves the sharing by changing a file's bytes in
// place, which nothing else may do: a copy would not see it.
func TestLoadedResolverSharesTheFiles(t *testing.T) {
	files := map[string][]byte{
		"envplane.yaml":       []byte("environments: [{name: dev}]\nconfig:\n  layers: [config/default.yaml]\n"),
		"config/default.yaml": []byte("a: 1\n"),
	}
	c, err := Load(files)
	if err != nil {
		t.Fatal(err)
	}
	get := func() int64 {
		res := c.Resolver.Resolve(resolve.Request{Env: "dev"})
		if len(res.Problems) > 0 {
			t.Fatal(res.Problems)
		}
		return res.Tree.Get("a").Int
	}
	if got := get(); got != 1 {
		t.Fatalf("a = %d, want 1", got)
	}
	files["config/default.yaml"][3] = '2'
	if got := get(); got != 2 {
		t.Errorf("a = %d after changing the release's bytes, want 2: the resolver holds its own copy", got)
	}

	l := FS(files).(resolve.LendingFS)
	if b, err := l.LendFile("config/default.yaml"); err != nil || &b[0] != &files["config/default.yaml"][0] {
		t.Errorf("LendFile: %v, or a copy", err)
	}
	for _, name := range []string{"missing.yaml", "config", "/envplane.yaml", "config/../envplane.yaml"} {
		if _, err := l.LendFile(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LendFile(%q) = %v, want not exist", name, err)
		}
	}
}
