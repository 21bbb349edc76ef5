package resolve_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/workspace"
)

const fuzzWorkspace = `
environments: [development, production]
config:
  layers:
    - config/default.yaml
    - config/{env}.yaml
  env:
    prefix: APP
    bind:
      DB_PASSWORD: database.password
      AUTH_TOKEN_TTL: auth.token_ttl
`

// fuzzDefault is config/default.yaml when the fuzzer does not supply one:
// typed leaves, several of them under sensitive keys.
const fuzzDefault = `
server:
  port: 8080
  host: localhost
  tls: false
  ratio: 0.5
  origins: [a.example, b.example]
  ports: [80, 443]
database:
  password: change-me
  url: postgres://localhost/app
  pool: {max: 10}
auth:
  token_ttl: 3600
  password_min_length: 12
  secret_rotation: true
  secret_ratio: 0.25
  api_keys: [1, 2]
`

const fuzzProduction = `
server: {port: 80}
auth: {session_secret_len: 32}
`

// messageText is every fixed phrase a binding problem is made of; a fuzzed
// value found inside one of them is not a leak.
const messageText = "environment variable secret: expects an integer expects a number " +
	"expects a boolean (true/false, yes/no, on/off, 1/0) expects a comma-separated list of strings integers numbers booleans nulls " +
	"(item : ) expects a list of arrays maps, which a comma list cannot express is a map of keys; set its keys one by one " +
	"matches both and ; bind it explicitly with config.env.bind has no item is a not a map (got \"\")"

func FuzzEnvBinding(f *testing.F) {
	for _, s := range [][2]string{
		{"APP_SERVER__PORT", "9090"},
		{"APP_SERVER__PORT", "-1"},
		{"APP_SERVER__PORT", " 42 "},
		{"APP_SERVER__PORT", "+7"},
		{"APP_SERVER__PORT", "99999999999999999999"},
		{"APP_SERVER__PORT", "eighty"},
		{"APP_SERVER__HOST", "example.com"},
		{"APP_SERVER__TLS", "yes"},
		{"APP_SERVER__TLS", "sometimes"},
		{"APP_SERVER__RATIO", "1e3"},
		{"APP_SERVER__ORIGINS", "x.example, y.example"},
		{"APP_SERVER__PORTS", "80,not-a-port"},
		{"APP_SERVER__PORTS__1", "8443"},
		{"APP_SERVER", "flat"},
		{"APP_DATABASE__POOL__MAX", "lots-of-them"},
		{"APP_DATABASE__PASSWORD", "hunter2-hunter2"},
		{"DB_PASSWORD", "s3cr3t-value"},
		{"AUTH_TOKEN_TTL", "hunter2-secret"},
		{"APP_AUTH__TOKEN_TTL", "forever-and-ever"},
		{"APP_AUTH__PASSWORD_MIN_LENGTH", "correct horse battery"},
		{"APP_AUTH__SECRET_ROTATION", "maybe-later"},
		{"APP_AUTH__SECRET_RATIO", "half-of-it"},
		{"APP_AUTH__API_KEYS", "1,two-three-four"},
		{"APP_AUTH__SESSION_SECRET_LEN", "not-a-number"},
		{"app_server__port", "1"},
		{"APP_", "x"},
		{"", ""},
	} {
		f.Add(true, []byte(nil), s[0], s[1])
	}
	configs := []string{
		"",
		"server:\n  port: 8080\n",
		"password: 12\nnested:\n  api-key: [1, 2]\n  Token: true\n",
		"server:\n  port: \"${PORT:-8080}\"\n  host: ${HOST}\n",
		"credentials:\n  - user: a\n    pin: 1234\n  - [1, 2]\n",
		"a: &x {password: 1}\nb: *x\nc:\n  <<: *x\n",
		"Server:\n  PORT: 1\nserver:\n  port: 2\n",
		"k: [",
	}
	for _, c := range configs {
		f.Add(false, []byte(c), "APP_SERVER__PORT", "1234")
		f.Add(false, []byte(c), "APP_PASSWORD", "hunter2-hunter2")
	}
	examples, _ := filepath.Glob(filepath.FromSlash("../../examples/*/config/environments/*.yaml"))
	if len(examples) == 0 {
		f.Fatal("no example YAML configs found")
	}
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(false, b, "APP_SERVER__PORT", "4000")
		f.Add(false, b, "APP_DATABASE__PASSWORD", "not-an-int")
	}

	f.Fuzz(func(t *testing.T, fixed bool, config []byte, name, value string) {
		cfg := config
		if fixed {
			cfg = []byte(fuzzDefault)
		}
		ws, err := workspace.Load(fstest.MapFS{
			workspace.FileName:       {Data: []byte(fuzzWorkspace)},
			"config/default.yaml":    {Data: cfg},
			"config/production.yaml": {Data: []byte(fuzzProduction)},
		})
		if err != nil {
			t.Fatalf("workspace: %v", err)
		}
		r, err := resolve.New(ws)
		if err != nil {
			t.Fatalf("resolver: %v", err)
		}
		res := r.Resolve(resolve.Request{Env: "development", Getenv: func(n string) (string, bool) {
			if n == name {
				return value, true
			}
			return "", false
		}})
		if res == nil || res.Tree == nil {
			t.Fatalf("Resolve returned no tree")
		}

		// A value bound to a sensitive key never shows in a problem.
		sens := r.Sensitivity()
		for _, p := range res.Problems {
			if len(value) < 6 || !sens.Path(p.Path) || !strings.Contains(p.Message, value) {
				continue
			}
			if strings.Contains(name, value) || strings.Contains(p.Path, value) || strings.Contains(messageText, value) ||
				(!fixed && strings.Contains(string(config), value)) {
				continue // the value is also part of the message's own text
			}
			t.Fatalf("%s=%q: problem on sensitive key %s shows the value: %s", name, value, p.Path, p.Message)
		}
		if !fixed {
			return
		}

		// With the fixed config, every problem is about the variable.
		for _, p := range res.Problems {
			if !strings.Contains(p.Message, name) {
				t.Fatalf("%s=%q: problem does not name the variable: %v", name, value, p.Diagnostic)
			}
		}
		switch name {
		case "APP_SERVER__PORT":
			want, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				break
			}
			got := res.Tree.Lookup([]string{"server", "port"})
			if got == nil || got.Kind != tree.Int || got.Int != want || got.Src.Kind != tree.SourceEnv || got.Src.Name != name {
				t.Fatalf("%s=%q: server.port = %+v, want %d from env %s", name, value, got, want, name)
			}
			if len(res.Problems) > 0 {
				t.Fatalf("%s=%q: problems %v", name, value, res.Err())
			}
		case "DB_PASSWORD":
			// An explicit binding to a string key always applies, verbatim.
			got := res.Tree.Lookup([]string{"database", "password"})
			if got == nil || got.Kind != tree.String || got.Str != value || got.Src.Kind != tree.SourceEnv || got.Src.Name != name {
				t.Fatalf("%s=%q: database.password = %+v", name, value, got)
			}
		}
	})
}

// FuzzSensitivityKey splits arbitrary key names into words: it never
// panics, and a sensitive word added as the last snake_case, kebab-case or
// upper-case word always makes a key sensitive.
func FuzzSensitivityKey(f *testing.F) {
	for _, k := range []string{"tokensPerMinute", "JWT_SECRET", "apiKey", "AWS_SECRET_ACCESS_KEY", "password2", "", "__", "x-y-z", "ÄpiKey", strings.Repeat("aB", 100)} {
		f.Add(k)
	}
	s := resolve.NewSensitivity([]string{"web-hook"})
	f.Fuzz(func(t *testing.T, key string) {
		_ = s.Key(key)
		_ = s.Path(key)
		for _, w := range resolve.DefaultSensitive {
			for _, k := range []string{key + "_" + w, key + "-" + w, key + "_" + strings.ToUpper(w)} {
				if !s.Key(k) {
					t.Errorf("Key(%q) = false: it ends in the word %q", k, w)
				}
			}
		}
	})
}
