package release_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
)

func TestDigest(t *testing.T) {
	a := map[string][]byte{"envplane.yaml": []byte("x"), "b": []byte("y")}
	b := map[string][]byte{"b": []byte("y"), "envplane.yaml": []byte("x")}
	if release.Digest(a) != release.Digest(b) {
		t.Error("digest depends on map order")
	}
	// Moving bytes between path and content must change the digest.
	c := map[string][]byte{"ab": []byte(""), "envplane.yaml": []byte("x")}
	d := map[string][]byte{"a": []byte("b"), "envplane.yaml": []byte("x")}
	if release.Digest(c) == release.Digest(d) {
		t.Error("digest is ambiguous")
	}
	if id := release.ID(release.Digest(a)); !strings.HasPrefix(id, "rel_") || len(id) != 20 {
		t.Errorf("ID = %q", id)
	}
}

func TestValidateExample(t *testing.T) {
	files := map[string][]byte{}
	root := "../../examples/arka"
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := release.Validate(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Workspace.Environments); got != 3 {
		t.Errorf("%d environments, want 3", got)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		kind  errs.Kind
		want  []errs.FieldError
	}{
		{"no files", map[string]string{}, errs.Invalid, []errs.FieldError{{Field: "files", Message: "a release needs at least envplane.yaml"}}},
		{"bad paths", map[string]string{"/etc/passwd": "", "a/../b": "", "envplane.yaml": "environments: [dev]"}, errs.Invalid, []errs.FieldError{
			{Field: "files./etc/passwd", Message: "paths are relative and use /"},
			{Field: "files.a/../b", Message: "use a clean path inside the workspace (no .., no ./, no //)"},
		}},
		{"workspace and files that do not load", map[string]string{
			"envplane.yaml":    "environments: [dev, prod]\nconfig: {layers: ['config/{env}.yaml']}\n",
			"config/dev.yaml":  "a: [1\n",
			"config/prod.yaml": "b: 1\nb: 2\n",
		}, errs.Invalid, []errs.FieldError{
			{Field: "files.config/dev.yaml", Message: "config/dev.yaml:1:1: invalid YAML: did not find expected ',' or ']'"},
			{Field: "files.config/prod.yaml", Message: `config/prod.yaml:2:1: key "b" is defined twice in this mapping`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for p, c := range tt.files {
				files[p] = []byte(c)
			}
			_, err := release.Validate(context.Background(), files)
			e, ok := err.(*errs.Error)
			if !ok || e.Kind != tt.kind {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if diff := cmp.Diff(tt.want, e.Fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSizeLimits(t *testing.T) {
	big := map[string][]byte{"envplane.yaml": []byte("environments: [dev]")}
	for i := 0; i < 5; i++ {
		big[strings.Repeat("x", i+1)] = make([]byte, release.MaxFileSize)
	}
	if _, err := release.Validate(context.Background(), big); !errs.Is(err, errs.TooLarge) {
		t.Errorf("oversized release: err = %v, want too large", err)
	}
}

// TestValidationBudget: an upload whose validation outlives its budget is
// 422 (Unprocessable); one whose client went away is not blamed on size.
func TestValidationBudget(t *testing.T) {
	files := map[string][]byte{"envplane.yaml": []byte("environments: [{name: dev}]\n")}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := release.Validate(expired, files); !errs.Is(err, errs.Unprocessable) {
		t.Errorf("past the budget: %v", err)
	}
	gone, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := release.Validate(gone, files); !errs.Is(err, errs.Unavailable) {
		t.Errorf("client gone: %v", err)
	}
	if _, err := release.Validate(context.Background(), files); err != nil {
		t.Errorf("in time: %v", err)
	}
}
