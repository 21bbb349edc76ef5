package workspace_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/workspace"
)

func TestDetect(t *testing.T) {
	f := func(names ...string) fstest.MapFS {
		m := fstest.MapFS{}
		for _, n := range names {
			m[n] = &fstest.MapFile{Data: []byte("{}\n")}
		}
		return m
	}
	tests := []struct {
		name string
		fs   fstest.MapFS
		want workspace.Adoption
	}{
		{"empty", f(), workspace.Adoption{}},
		{"unrelated files only", f("README.md", "docker-compose.yaml", "config/schema.json", ".env.example"), workspace.Adoption{}},
		{
			"arka: config/environments, any name there",
			f("config/environments/development.yaml", "config/environments/production.yaml", "config/environments/sandbox.yaml", "config/feature-flags.yaml"),
			workspace.Adoption{
				Environments: []string{"development", "sandbox", "production"},
				Layers:       []workspace.Layer{{Path: "config/environments/{env}.yaml"}},
				Flags:        []string{"config/feature-flags.yaml"},
			},
		},
		{
			"progressive: a base, {env}.json, mounted agents",
			f("config/default.json", "config/development.json", "config/staging.json", "config/production.json",
				"config/agents/default.json", "config/agents/production.json", "config/schema.json"),
			workspace.Adoption{
				Environments: []string{"development", "staging", "production"},
				Layers: []workspace.Layer{
					{Path: "config/default.json"}, {Path: "config/{env}.json"},
					{Path: "config/agents/default.json", At: "agents"}, {Path: "config/agents/{env}.json", At: "agents"},
				},
			},
		},
		{
			"mixed extensions, one per environment",
			f("config/development.yaml", "config/production.json"),
			workspace.Adoption{
				Environments: []string{"development", "production"},
				Layers:       []workspace.Layer{{Path: "config/{env}.*"}},
			},
		},
		{
			"mixed extensions, a duplicate, dotenv",
			f("config/dev.yaml", "config/prod.json", "config/prod.yaml", "base.yml", ".env", ".env.prod", ".env.sample", "config/custom-environment-variables.yaml"),
			workspace.Adoption{
				Environments: []string{"dev", "prod"},
				Layers:       []workspace.Layer{{Path: "base.yml"}, {Path: "config/{env}.yaml"}, {Path: ".env"}, {Path: ".env.{env}"}},
				Ignored:      []string{"config/prod.json (the layer reads .yaml files; one file per environment)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, workspace.Detect(tt.fs)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"my-app": "MY_APP", "other-thing": "OTHER_THING", "arka": "ARKA", "My App!": "MY_APP",
		"9lives": "APP_9LIVES", "---": "APP", "a..b": "A_B",
	} {
		if got := workspace.EnvPrefix(in); got != want {
			t.Errorf("EnvPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMissingOwnFile(t *testing.T) {
	tests := []struct {
		name, layers string
		files        []string
		wantExpected []string
		wantMissing  bool
	}{
		{"has its file", "['config/{env}.yaml']", []string{"config/production.yaml"}, []string{"config/production.yaml"}, false},
		{"file missing", "[config/default.yaml, 'config/{env}.yaml', 'config/agents/{env}.json']", []string{"config/default.yaml"},
			[]string{"config/production.yaml", "config/agents/production.json"}, true},
		{"a service file counts", "['config/{env}.yaml', 'config/{service}/{env}.yaml']", []string{"config/api/production.yaml"},
			[]string{"config/production.yaml"}, false},
		{"no {env} layer: nothing to miss", "[config/default.yaml]", nil, nil, false},
		{"a broken layer is reported as such", "['config/{env}.*']", []string{"config/production.yaml", "config/production.json"},
			[]string{"config/production.*"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys[f] = &fstest.MapFile{Data: []byte("a: 1\n")}
			}
			ws, err := workspace.Parse(fsys, []byte("environments: [development, production]\nservices: [api]\nconfig:\n  layers: "+tt.layers+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			expected, missing := ws.MissingOwnFile("production")
			if missing != tt.wantMissing {
				t.Errorf("missing = %v, want %v", missing, tt.wantMissing)
			}
			if diff := cmp.Diff(tt.wantExpected, expected); diff != "" && tt.wantMissing {
				t.Errorf("expected (-want +got):\n%s", diff)
			}
		})
	}
}
