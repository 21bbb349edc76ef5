package workspace_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/workspace"
)

// config.env.select lists the variables that may name the environment.
func TestEnvSelect(t *testing.T) {
	const head = "environments: [{name: development}, {name: production}]\nconfig:\n  env:\n"
	tests := []struct {
		name    string
		env     string
		want    []string
		wantErr []string
	}{
		{name: "absent", env: "    prefix: APP\n"},
		{name: "in order", env: "    select: [ARKA_ENV, NODE_ENV]\n", want: []string{"ARKA_ENV", "NODE_ENV"}},
		{
			name: "every problem at its place",
			env:  "    select: [NODE_ENV, 1BAD, NODE_ENV, \"\", [x], ~]\n",
			want: []string{"NODE_ENV"},
			wantErr: []string{
				`envplane.yaml:4:24: config.env.select: "1BAD" is not a valid environment variable name`,
				`envplane.yaml:4:30: config.env.select: NODE_ENV is listed twice`,
				`envplane.yaml:4:40: config.env.select: "" is not a valid environment variable name`,
				`envplane.yaml:4:44: config.env.select: expected a string, found a list`,
				`envplane.yaml:4:49: config.env.select: expected a string, found nothing`,
			},
		},
		{
			name:    "not a list",
			env:     "    select: NODE_ENV\n",
			wantErr: []string{`envplane.yaml:4:13: config.env.select: expected a list of environment variable names (like [APP_ENV, NODE_ENV]), found "NODE_ENV"`},
		},
		{
			name:    "typo in the field name",
			env:     "    selct: [NODE_ENV]\n",
			wantErr: []string{`envplane.yaml:4:5: unknown field "selct" in config.env (did you mean "select"?)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, err := workspace.Parse(fstest.MapFS{}, []byte(head+tt.env))
			var got []string
			for _, d := range diag.Of(err) {
				got = append(got, d.Error())
			}
			if diff := cmp.Diff(tt.wantErr, got); diff != "" {
				t.Fatalf("errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, ws.Config.Env.Select); diff != "" {
				t.Errorf("select (-want +got):\n%s", diff)
			}
		})
	}
}
