package workspace_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/workspace"
)

func TestParseErrorsAllAtOnce(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "missing environments",
			yaml: "name: x\n",
			want: []string{"envplane.yaml:1:1: missing `environments:`: list at least one environment"},
		},
		{
			name: "unknown fields, duplicates, bad references",
			yaml: `environmnets: []
environments:
  - name: development
  - name: development
  - name: Prod
    data: real
    promotion: {from: qa}
config:
  layers:
    - /etc/app.yaml
    - config/{region}.yaml
    - {path: "config/a.yaml", at: "a..b"}
  env:
    bind: {"1BAD": server.port}
policies:
  - name: p
    environments: [nowhere]
`,
			want: []string{
				`envplane.yaml:1:1: unknown field "environmnets" in envplane.yaml (did you mean "environments"?)`,
				`envplane.yaml:4:5: environment "development" is listed twice (first at line 3)`,
				`envplane.yaml:5:5: environment name "Prod": use lower-case letters, digits and dashes, starting with a letter`,
				`envplane.yaml:6:11: data: "real" is not one of synthetic | anonymized | production-like | live`,
				`envplane.yaml:7:16: environment "Prod": promotion from unknown environment "qa" (known: development, Prod)`,
				`envplane.yaml:10:7: layer "/etc/app.yaml": paths are relative to the workspace root`,
				`envplane.yaml:11:7: layer "config/{region}.yaml": unknown placeholder {region} (use {env} or {service})`,
				`envplane.yaml:12:7: layer "config/a.yaml": ` + "`at: a..b`" + ` must be a dotted key path like agents or server.tls`,
				`envplane.yaml:14:12: env.bind: "1BAD" is not a valid environment variable name`,
				`envplane.yaml:16:5: policy "p" needs a ` + "`rule:`" + ` (a CEL expression over config, env, service, environment)`,
				`envplane.yaml:16:5: policy "p": unknown environment "nowhere" (known: development, Prod)`,
			},
		},
		{
			name: "promotion must come from an earlier environment",
			yaml: "environments:\n  - name: a\n    promotion: {from: b}\n  - name: b\n",
			want: []string{`envplane.yaml:3:16: environment "a": promotion from "b" must come from an environment listed before it`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := workspace.Parse(fstest.MapFS{}, []byte(tt.yaml))
			var l diag.List
			if !errors.As(err, &l) {
				t.Fatalf("want a diag.List, got %v", err)
			}
			var got []string
			for _, d := range l {
				got = append(got, d.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultsFollowThePromotionPath(t *testing.T) {
	ws, err := workspace.Parse(fstest.MapFS{}, []byte("environments: [dev, qa, prod]\n"))
	if err != nil {
		t.Fatal(err)
	}
	type env struct {
		Name       string
		Data       domain.DataClass
		Protection domain.Protection
	}
	var got []env
	for _, e := range ws.Environments {
		got = append(got, env{e.Name, e.Data, e.Protection})
	}
	want := []env{
		{"dev", domain.DataSynthetic, domain.ProtectionOpen},
		{"qa", domain.DataAnonymized, domain.ProtectionGuarded},
		{"prod", domain.DataLive, domain.ProtectionRestricted},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestExamplesLoad(t *testing.T) {
	for _, dir := range []string{"../../examples/arka", "../../examples/progressive"} {
		if _, err := workspace.Load(osDirFS(dir)); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
	}
}

func TestReferencedFiles(t *testing.T) {
	ws, err := workspace.Load(osDirFS("../../examples/progressive"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"config/agents/default.json", "config/agents/development.json", "config/agents/preproduction.json",
		"config/agents/production.json", "config/agents/staging.json", "config/default.json",
		"config/development.json", "config/preproduction.json", "config/production.json", "config/staging.json",
		"envplane.yaml",
	}
	if diff := cmp.Diff(want, ws.ReferencedFiles()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Layer and schema paths written ./config/… or config//… are tidied, not
// refused; paths leaving the workspace still are.
func TestPathsAreCleaned(t *testing.T) {
	tests := []struct {
		path, want, err string
	}{
		{path: "./config/{env}.yaml", want: "config/{env}.yaml"},
		{path: "config//default.*", want: "config/default.*"},
		{path: "./config/./a/b.json", want: "config/a/b.json"},
		{path: "config/{env}.yaml", want: "config/{env}.yaml"},
		{path: "./../x.yaml", err: `envplane.yaml:4:7: layer "./../x.yaml": use a path to a file inside the workspace (no ..)`},
		{path: "config/../../x.yaml", err: `envplane.yaml:4:7: layer "config/../../x.yaml": use a path to a file inside the workspace (no ..)`},
		{path: "./", err: `envplane.yaml:4:7: layer "./": use a path to a file inside the workspace (no ..)`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			src := "environments: [development]\nconfig:\n  layers:\n    - \"" + tt.path + "\"\n  schema: ./config/schema.json\n"
			ws, err := workspace.Parse(fstest.MapFS{}, []byte(src))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ws.Config.Layers[0].Path; got != tt.want {
				t.Errorf("layer path = %q, want %q", got, tt.want)
			}
			if ws.Config.Schema != "config/schema.json" {
				t.Errorf("schema = %q", ws.Config.Schema)
			}
		})
	}
}

// A symbolic link that leads back to itself is named as a loop, whether a
// glob or a plain path meets it; directories never match a layer.
func TestLayerSymlinkLoop(t *testing.T) {
	dir := t.TempDir()
	mustSymlink := func(old, name string) {
		t.Helper()
		if err := os.Symlink(old, filepath.Join(dir, name)); err != nil {
			t.Skipf("symlinks unavailable: %v", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "config", "default.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "default.yaml"), []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink("a.yaml", "config/b.yaml")
	mustSymlink("b.yaml", "config/a.yaml")
	ws, err := workspace.Parse(os.DirFS(dir), []byte("environments: [development]\nconfig:\n  layers: [config/default.*, config/a.*, config/b.yaml]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range ws.Config.Layers {
		f, err := ws.LayerFiles(l, "development", "")
		if err != nil {
			got = append(got, err.Error())
		} else {
			got = append(got, f)
		}
	}
	want := []string{
		"config/default.yaml",
		`envplane.yaml:3:30: layer "config/a.*": config/a.yaml is a symbolic link loop (it leads back to itself); point it at a file or remove it`,
		`envplane.yaml:3:42: layer "config/b.yaml": config/b.yaml is a symbolic link loop (it leads back to itself); point it at a file or remove it`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
