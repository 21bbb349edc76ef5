package vars_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/vars"
	"github.com/envplane/envplane/internal/workspace"
)

func resolver(t *testing.T, files map[string]string) *resolve.Resolver {
	t.Helper()
	fsys := fstest.MapFS{}
	for n, c := range files {
		fsys[n] = &fstest.MapFile{Data: []byte(c)}
	}
	ws, err := workspace.Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	r, err := resolve.New(ws)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func str(s string) *string { return &s }

func TestFor(t *testing.T) {
	r := resolver(t, map[string]string{
		"envplane.yaml": "environments: [dev, prod]\nconfig:\n  layers: ['{env}.yaml']\n  env: {prefix: APP, bind: {TOKEN: api.token}}\n",
		"dev.yaml":      "port: 1\napi: {token: t0k}\n",
		"prod.yaml":     "port: '${PORT}'\napi:\n  token: ${API_TOKEN:-dev}\n  url: 'https://${HOST:?no host}/${PATH_X-v1}'\n",
	})
	env := map[string]string{"PORT": "8080"}
	got := vars.For(r, "prod", "", vars.Options{
		Getenv: func(n string) (string, bool) { v, ok := env[n]; return v, ok },
		Secret: func(n string) bool { return n == "HOST" },
	})
	want := []vars.Var{
		// The type of port comes from dev, where it is a number.
		{Name: "PORT", Key: "port", Kind: vars.KindReference, Type: "integer", Required: true, Set: "environment", Source: "prod.yaml:1:7"},
		// Defaults of sensitive keys are hidden.
		{Name: "API_TOKEN", Key: "api.token", Kind: vars.KindReference, Type: "string", Default: str(vars.Redacted), Source: "prod.yaml:3:10", Sensitive: true},
		{Name: "HOST", Key: "api.url", Kind: vars.KindReference, Type: "string", Required: true, Set: "secret", Source: "prod.yaml:4:8"},
		{Name: "PATH_X", Key: "api.url", Kind: vars.KindReference, Type: "string", Default: str("v1"), Source: "prod.yaml:4:8"},
		{Name: "TOKEN", Key: "api.token", Kind: vars.KindBind, Type: "string", Default: str(vars.Redacted), Sensitive: true},
		{Name: "APP_PORT", Key: "port", Kind: vars.KindPrefix, Type: "integer", Default: str("${PORT}")},
		{Name: "APP_API__TOKEN", Key: "api.token", Kind: vars.KindPrefix, Type: "string", Default: str(vars.Redacted), Sensitive: true},
		{Name: "APP_API__URL", Key: "api.url", Kind: vars.KindPrefix, Type: "string", Default: str("https://${HOST:?no host}/${PATH_X-v1}")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestUnusedVariables(t *testing.T) {
	r := resolver(t, map[string]string{
		"envplane.yaml": "environments: [dev, prod]\nservices: [api]\nconfig:\n  layers: ['{env}.yaml', '{service}.yaml']\n  env: {prefix: ARKA, bind: {ARKA_API_PORT: server.port}}\n",
		"dev.yaml":      "server: {port: 1, host: h}\nhosts: [a]\n",
		"prod.yaml":     "server: {port: 2}\nnodes: [{host: n1}]\n",
		"api.yaml":      "timeout: 5\n",
	})
	names := []string{
		"ARKA_SERVR__PORT",    // typo
		"ARKA_SERVER__PORT",   // a key
		"ARKA_SERVER__HOST",   // a key in dev only
		"ARKA_API_PORT",       // bound explicitly
		"ARKA_HOSTS__0",       // a list item
		"ARKA_NODES__0__HOST", // a map inside a list
		"ARKA_TIMEOUT",        // a key of a service layer
		"ARKA_SERVER",         // a map: not bound whole
		"ARKA_COMPLETELY_DIFFERENT_THING",
		"PATH", "ARKAX_SERVER__PORT", // no prefix
	}
	want := []vars.Unused{
		{Name: "ARKA_COMPLETELY_DIFFERENT_THING"},
		{Name: "ARKA_SERVER"}, // too far from any name to guess
		{Name: "ARKA_SERVR__PORT", Suggest: "ARKA_SERVER__PORT"},
	}
	if diff := cmp.Diff(want, vars.UnusedVariables(r, names)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
