package policy_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/policy"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/workspace"
)

func config(t *testing.T, yaml string) *tree.Value {
	t.Helper()
	v, errs := tree.ParseYAML("c.yaml", []byte(yaml))
	if errs != nil {
		t.Fatal(errs)
	}
	return v
}

func TestEvaluate(t *testing.T) {
	prod := workspace.Environment{Name: "production", Data: domain.DataLive, Protection: domain.ProtectionRestricted}
	tests := []struct {
		name   string
		policy workspace.Policy
		config string
		want   []policy.Violation
	}{
		{
			name:   "holds",
			policy: workspace.Policy{Name: "p", Rule: `config.logging.level in ["warn", "error"]`, Severity: "error"},
			config: "logging: {level: warn}\n",
		},
		{
			name:   "violated, placed at the key it reads",
			policy: workspace.Policy{Name: "p", Rule: `config.logging.level in ["warn", "error"]`, Message: "too chatty", Severity: "error"},
			config: "logging:\n  level: debug\n",
			want:   []policy.Violation{{Policy: "p", Severity: "error", Message: "policy p: too chatty", Path: "logging.level", Source: "c.yaml:2:10"}},
		},
		{
			name:   "missing key is a finding, not a crash",
			policy: workspace.Policy{Name: "p", Rule: `config.database.ssl.enabled`, Severity: "warning", RulePos: diag.Pos{File: "envplane.yaml", Line: 9, Column: 11}},
			config: "database: {host: x}\n",
			want: []policy.Violation{{Policy: "p", Severity: "warning", Path: "database", Source: "c.yaml:1:11",
				Message: "policy p: cannot evaluate config.database.ssl.enabled: no such key: ssl (the key is missing from this config)"}},
		},
		{
			name:   "a rule giving a value names its type, never the value (it may be a secret)",
			policy: workspace.Policy{Name: "p", Rule: `config.db.password`, Severity: "error"},
			config: "db: {password: hunter2canary}\n",
			want:   []policy.Violation{{Policy: "p", Severity: "error", Message: "policy p: rule gave a string, expected true or false", Path: "db.password", Source: "c.yaml:1:16"}},
		},
		{
			name:   "an evaluation error does not quote the operand",
			policy: workspace.Policy{Name: "p", Rule: `timestamp(config.db.password) > timestamp("2020-01-01T00:00:00Z")`, Severity: "error"},
			config: "db: {password: hunter2canary}\n",
			want: []policy.Violation{{Policy: "p", Severity: "error", Path: "db.password", Source: "c.yaml:1:16",
				Message: `policy p: cannot evaluate timestamp(config.db.password) > timestamp("2020-01-01T00:00:00Z"): ` + `invalid RFC 3339 timestamp "<hidden>"`}},
		},
		{
			name:   "environment variables are available",
			policy: workspace.Policy{Name: "p", Rule: `environment.data != "live" || env == "production"`, Severity: "error"},
			config: "a: 1\n",
		},
		{
			name:   "scoped to other environments",
			policy: workspace.Policy{Name: "p", Rule: `false`, Environments: []string{"staging"}, Severity: "error"},
			config: "a: 1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := policy.Compile([]workspace.Policy{tt.policy})
			if err != nil {
				t.Fatal(err)
			}
			got := c.Evaluate(prod, "", config(t, tt.config))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileReportsEveryBadRule(t *testing.T) {
	_, err := policy.Compile([]workspace.Policy{
		{Name: "syntax", Rule: `config.a ==`, RulePos: diag.Pos{File: "envplane.yaml", Line: 3, Column: 11}},
		{Name: "ok", Rule: `true`},
		{Name: "type", Rule: `"not a bool"`, RulePos: diag.Pos{File: "envplane.yaml", Line: 7, Column: 11}},
	})
	if err == nil {
		t.Fatal("want errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `envplane.yaml:3:22: policy "syntax": rule does not compile`) ||
		!strings.HasPrefix(lines[1], `envplane.yaml:7:11: policy "type": rule must be true or false, but it gives string`) {
		t.Errorf("errors:\n%s", err)
	}
}
