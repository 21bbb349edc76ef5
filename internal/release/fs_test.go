package release

import (
	"testing"
	"testing/fstest"
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
