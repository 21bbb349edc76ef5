package config_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/resolve"
)

func TestNotServableKinds(t *testing.T) {
	tests := []struct {
		name string
		p    config.Problems
		want errs.Kind
	}{
		{"unresolved", config.Problems{{Rule: resolve.RuleUnresolved, Path: "a", Diagnostic: diag.Errorf(diag.Pos{File: "c.yaml", Line: 1, Column: 4}, "a: X is not set")}}, errs.Conflict},
		{"too big to serve", config.Problems{{Rule: resolve.RuleSize, Path: "b", Diagnostic: diag.Errorf(diag.Pos{File: "c.yaml", Line: 2, Column: 4}, "b: too big")}}, errs.Unprocessable},
	}
	for _, tt := range tests {
		err := tt.p.NotServable("dev", "")
		if got := errs.KindOf(err); got != tt.want {
			t.Errorf("%s: kind %v, want %v", tt.name, got, tt.want)
		}
	}
	if config.Problems(nil).NotServable("dev", "") != nil {
		t.Error("no problems, yet an error")
	}
}

// TestStrictReportsStructuredProblems: Strict names unknown environments,
// then resolution problems with their key and place, then (only when those
// are none) schema violations — one entry point for CLI, server and release.
func TestStrictReportsStructuredProblems(t *testing.T) {
	fsys := fstest.MapFS{
		"envplane.yaml": {Data: []byte("environments: [{name: dev}, {name: prod}]\nconfig:\n  layers: [\"{env}.yaml\"]\n  schema: schema.json\n")},
		"dev.yaml":      {Data: []byte("port: 70000\n")},
		"prod.yaml":     {Data: []byte("port: ${PORT}\n")},
		"schema.json":   {Data: []byte(`{"type":"object","properties":{"port":{"type":"integer","maximum":65535}}}`)},
	}
	c, err := config.Compile(fsys)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Rule, Key, Text string }
	rows := func(err error) []row {
		var out []row
		for _, p := range err.(config.Problems) {
			out = append(out, row{p.Rule, p.Path, p.Error()})
		}
		return out
	}
	_, err = c.Strict(resolve.Request{Env: "staging"})
	if diff := cmp.Diff([]row{{resolve.RuleLayer, "", `envplane.yaml: unknown environment "staging" (known: dev, prod)`}}, rows(err)); diff != "" {
		t.Errorf("unknown environment (-want +got):\n%s", diff)
	}
	_, err = c.Strict(resolve.Request{Env: "prod"})
	if diff := cmp.Diff([]row{{resolve.RuleUnresolved, "port", "prod.yaml:1:7: port: PORT is not set"}}, rows(err)); diff != "" {
		t.Errorf("prod (-want +got):\n%s", diff)
	}
	_, err = c.Strict(resolve.Request{Env: "dev"})
	if diff := cmp.Diff([]row{{config.RuleSchema, "port", "dev.yaml:1:7: port: schema: maximum: got 70000, want 65535"}}, rows(err)); diff != "" {
		t.Errorf("dev (-want +got):\n%s", diff)
	}
}
