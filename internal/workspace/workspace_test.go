package workspace_test

import (
	"errors"
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
