package resolve_test

import (
	"github.com/envplane/envplane/internal/domain"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/workspace"
)

const twoEnvs = `
environments: [development, production]
services: [api]
config:
  layers:
    - config/default.yaml
    - config/{env}.yaml
    - config/{service}/{env}.yaml
  env:
    prefix: APP
    bind:
      PORT: server.port
      LOG_LEVEL: logging.level
`

// fixture resolves env in a workspace made of files.
type fixture struct {
	files   map[string]string
	env     string
	service string
	vars    map[string]string
	secrets map[string]domain.Secret
}

func (f fixture) resolve(t *testing.T) *resolve.Result {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range f.files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	if _, ok := fsys[workspace.FileName]; !ok {
		fsys[workspace.FileName] = &fstest.MapFile{Data: []byte(twoEnvs)}
	}
	ws, err := workspace.Load(fsys)
	if err != nil {
		t.Fatalf("workspace: %v", err)
	}
	r, err := resolve.New(ws)
	if err != nil {
		t.Fatalf("resolver: %v", err)
	}
	env := f.env
	if env == "" {
		env = "development"
	}
	return r.Resolve(resolve.Request{Env: env, Service: f.service, Secrets: f.secrets,
		Getenv: func(name string) (string, bool) { v, ok := f.vars[name]; return v, ok }})
}

func messages(res *resolve.Result) []string {
	var out []string
	for _, p := range res.Problems {
		out = append(out, p.Rule+": "+p.Error())
	}
	return out
}

func TestResolveValues(t *testing.T) {
	tests := []struct {
		name string
		fx   fixture
		want any
	}{
		{
			name: "maps deep-merge, scalars and arrays replace",
			fx: fixture{files: map[string]string{
				"config/default.yaml":     "server: {host: 0.0.0.0, port: 8080}\nlist: [a, b, c]\n",
				"config/development.yaml": "server: {port: 3000}\nlist: [z]\n",
			}},
			want: map[string]any{"server": map[string]any{"host": "0.0.0.0", "port": int64(3000)}, "list": []any{"z"}},
		},
		{
			name: "explicit null in a higher layer deletes the key",
			fx: fixture{files: map[string]string{
				"config/default.yaml":     "kafka: {brokers: [k1]}\nkeep: 1\n",
				"config/development.yaml": "kafka: null\n",
			}},
			want: map[string]any{"keep": int64(1)},
		},
		{
			name: "null with nothing below stays null",
			fx:   fixture{files: map[string]string{"config/default.yaml": "ca: null\n"}},
			want: map[string]any{"ca": nil},
		},
		{
			name: "keys are case-sensitive",
			fx: fixture{files: map[string]string{
				"config/default.yaml":     "Key: 1\n",
				"config/development.yaml": "key: 2\n",
			}},
			want: map[string]any{"Key": int64(1), "key": int64(2)},
		},
		{
			name: "json layer with comments and trailing commas",
			fx: fixture{files: map[string]string{
				"envplane.yaml":           "environments: [development]\nconfig: {layers: [config/default.json, 'config/{env}.json']}\n",
				"config/default.json":     "// defaults\n{\"a\": 1, \"b\": {\"c\": true,},}\n",
				"config/development.json": "{\"b\": {\"d\": 1.5}}",
			}},
			want: map[string]any{"a": int64(1), "b": map[string]any{"c": true, "d": 1.5}},
		},
		{
			name: "at mounts a file under a key",
			fx: fixture{files: map[string]string{
				"envplane.yaml":                  "environments: [development]\nconfig: {layers: [config/default.yaml, {path: 'config/agents/{env}.json', at: agents.conf}]}\n",
				"config/default.yaml":            "agents: {conf: {mca: {debug: false}}}\n",
				"config/agents/development.json": "{\"mca\": {\"debug\": true}, \"npa\": {}}",
			}},
			want: map[string]any{"agents": map[string]any{"conf": map[string]any{"mca": map[string]any{"debug": true}, "npa": map[string]any{}}}},
		},
		{
			name: "service layers apply only when a service is resolved",
			fx: fixture{service: "api", files: map[string]string{
				"config/default.yaml":         "name: base\n",
				"config/api/development.yaml": "name: api\n",
			}},
			want: map[string]any{"name": "api"},
		},
		{
			name: "dotenv layer maps like environment variables",
			fx: fixture{files: map[string]string{
				"envplane.yaml":       "environments: [development]\nconfig: {layers: [config/default.yaml, config/local.env], env: {prefix: APP}}\n",
				"config/default.yaml": "server: {port: 8080, grpcPort: 9090}\n",
				"config/local.env":    "APP_SERVER__PORT=9000\nAPP_SERVER__GRPCPORT=9191\nAPP_NEW__KEY=x\n",
			}},
			want: map[string]any{"server": map[string]any{"port": int64(9000), "grpcPort": int64(9191)}, "new": map[string]any{"key": "x"}},
		},
		{
			name: "dotenv keys created by the layer are found again by later names",
			fx: fixture{files: map[string]string{
				"envplane.yaml":       "environments: [development]\nconfig: {layers: [config/default.yaml, config/local.env], env: {prefix: APP}}\n",
				"config/default.yaml": "Server: {Port: 8080}\n",
				"config/local.env":    "APP_NEW__KEY=x\nAPP_SERVER__PORT=9000\nAPP_NEW__OTHER=y\nAPP_new__THIRD=z\nAPP_NEW__KEY=w\n",
			}},
			want: map[string]any{"Server": map[string]any{"Port": int64(9000)}, "new": map[string]any{"key": "w", "other": "y", "third": "z"}},
		},
		{
			name: "interpolation: env, fallbacks, escapes, secrets",
			fx: fixture{
				files: map[string]string{"config/default.yaml": strings.Join([]string{
					`url: "postgres://${DB_USER}:${DB_PASS}@${DB_HOST:-localhost}:5432/app"`,
					`literal: "$${NOT_A_REF}"`,
					`empty: "${EMPTY:-fallback}"`,
					`unsetonly: "${EMPTY-kept}"`,
				}, "\n")},
				vars:    map[string]string{"DB_USER": "app", "EMPTY": ""},
				secrets: map[string]domain.Secret{"DB_PASS": {Value: "s3cret", Version: 2}},
			},
			want: map[string]any{"url": "postgres://app:s3cret@localhost:5432/app", "literal": "${NOT_A_REF}", "empty": "fallback", "unsetonly": ""},
		},
		{
			name: "process environment wins over secrets in interpolation",
			fx: fixture{
				files:   map[string]string{"config/default.yaml": "host: ${HOST}\n"},
				vars:    map[string]string{"HOST": "from-env"},
				secrets: map[string]domain.Secret{"HOST": {Value: "from-secret"}},
			},
			want: map[string]any{"host": "from-env"},
		},
		{
			name: "single reference takes the type of the layer below",
			fx: fixture{
				files: map[string]string{
					"config/default.yaml":     "port: 8080\nratio: 0.5\non: false\nhosts: [a]\n",
					"config/development.yaml": "port: ${PORT_X}\nratio: ${RATIO}\non: ${ON}\nhosts: ${HOSTS}\n",
				},
				vars: map[string]string{"PORT_X": "9000", "RATIO": "0.25", "ON": "yes", "HOSTS": "h1, h2"},
			},
			want: map[string]any{"port": int64(9000), "ratio": 0.25, "on": true, "hosts": []any{"h1", "h2"}},
		},
		{
			name: "single reference takes the type another environment gives the key",
			fx: fixture{
				env: "production",
				files: map[string]string{
					"config/development.yaml": "kafka: {brokers: [localhost:9092], port: 1}\n",
					"config/production.yaml":  "kafka: {brokers: '${KAFKA_BROKERS}', port: '${KPORT}'}\n",
				},
				vars: map[string]string{"KAFKA_BROKERS": "k1:9092,k2:9092", "KPORT": "7"},
			},
			want: map[string]any{"kafka": map[string]any{"brokers": []any{"k1:9092", "k2:9092"}, "port": int64(7)}},
		},
		{
			name: "a single reference of one word becomes a one-item list where lists are expected",
			fx: fixture{
				env: "production",
				files: map[string]string{
					"config/default.yaml":     "hosts: [a, b]\n",
					"config/development.yaml": "kafka: {brokers: [localhost:9092]}\nhosts: ${HOSTS}\n",
					"config/production.yaml":  "kafka: {brokers: '${KAFKA_BROKERS}'}\nhosts: ${HOSTS}\nname: ${NAME}\n",
				},
				vars: map[string]string{"KAFKA_BROKERS": "k1:9092", "HOSTS": "h1", "NAME": "plain"},
			},
			want: map[string]any{"kafka": map[string]any{"brokers": []any{"k1:9092"}}, "hosts": []any{"h1"}, "name": "plain"},
		},
		{
			name: "a reference that is part of a string stays a string",
			fx: fixture{
				files: map[string]string{"config/default.yaml": "port: 1\nlabel: port-${P}\n"},
				vars:  map[string]string{"P": "2"},
			},
			want: map[string]any{"port": int64(1), "label": "port-2"},
		},
		{
			name: "prefix binding matches keys case-insensitively and coerces",
			fx: fixture{
				files: map[string]string{"config/default.yaml": "security: {jwtSecret: x, rateLimit: {enabled: false}}\nserver: {grpc-port: 1}\nbrokers: [a, b]\n"},
				vars: map[string]string{"APP_SECURITY__JWTSECRET": "from-env", "APP_SECURITY__RATELIMIT__ENABLED": "true",
					"APP_SERVER__GRPCPORT": "9090", "APP_BROKERS__1": "c", "APP_UNKNOWN": "ignored"},
			},
			want: map[string]any{"security": map[string]any{"jwtSecret": "from-env", "rateLimit": map[string]any{"enabled": true}},
				"server": map[string]any{"grpc-port": int64(9090)}, "brokers": []any{"a", "c"}},
		},
		{
			name: "explicit bind wins over the prefix rule and creates missing keys",
			fx: fixture{
				files: map[string]string{"config/default.yaml": "server: {port: 8080}\n"},
				vars:  map[string]string{"APP_SERVER__PORT": "1", "PORT": "2", "LOG_LEVEL": "warn"},
			},
			want: map[string]any{"server": map[string]any{"port": int64(2)}, "logging": map[string]any{"level": "warn"}},
		},
		{
			name: "secrets bind like variables, below runtime variables",
			fx: fixture{
				files:   map[string]string{"config/default.yaml": "db: {password: none, user: none}\n"},
				secrets: map[string]domain.Secret{"APP_DB__PASSWORD": {Value: "pw"}, "APP_DB__USER": {Value: "secret-user"}},
				vars:    map[string]string{"APP_DB__USER": "env-user"},
			},
			want: map[string]any{"db": map[string]any{"password": "pw", "user": "env-user"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.fx.resolve(t)
			if len(res.Problems) > 0 {
				t.Fatalf("problems: %q", messages(res))
			}
			if diff := cmp.Diff(tt.want, res.Tree.Interface()); diff != "" {
				t.Errorf("resolved config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveProblems(t *testing.T) {
	tests := []struct {
		name string
		fx   fixture
		want []string
	}{
		{
			name: "every unresolved reference is reported with its place",
			fx:   fixture{files: map[string]string{"config/default.yaml": "db:\n  host: ${DB_HOST}\n  url: \"x://${A}:${B:?B is the password}@h\"\n"}},
			want: []string{
				"unresolved-reference: config/default.yaml:2:9: db.host: DB_HOST is not set",
				"unresolved-reference: config/default.yaml:3:13: db.url: A is not set",
				"unresolved-reference: config/default.yaml:3:18: db.url: B is the password",
			},
		},
		{
			name: "bad reference syntax",
			fx:   fixture{files: map[string]string{"config/default.yaml": "a: ${1BAD}\n"}},
			want: []string{"parse-error: config/default.yaml:1:6: a: bad reference: "},
		},
		{
			name: "coercion failures name variable, key and type and never echo sensitive values",
			fx: fixture{
				files: map[string]string{"config/default.yaml": "server: {port: 1}\nflag: true\ndb: {accountNumber: 12}\n"},
				vars:  map[string]string{"APP_SERVER__PORT": "abc", "APP_FLAG": "maybe", "APP_DB__ACCOUNTNUMBER": "hunter2"},
			},
			want: []string{
				"coercion: environment variable APP_SERVER__PORT: server.port expects an integer (got \"abc\")",
				"coercion: environment variable APP_FLAG: flag expects a boolean (true/false, yes/no, on/off, 1/0) (got \"maybe\")",
				"coercion: environment variable APP_DB__ACCOUNTNUMBER: db.accountNumber expects an integer",
			},
		},
		{
			name: "parse errors of several files at once",
			fx: fixture{files: map[string]string{
				"config/default.yaml":     "a: [1, 2\n",
				"config/development.yaml": "b: 1\nb: 2\n",
			}},
			want: []string{
				"parse-error: config/default.yaml:1:1: invalid YAML: did not find expected ',' or ']'",
				"parse-error: config/development.yaml:2:1: key \"b\" is defined twice in this mapping",
			},
		},
		{
			name: "ambiguous glob",
			fx: fixture{files: map[string]string{
				"envplane.yaml":       "environments: [development]\nconfig: {layers: [config/default.*]}\n",
				"config/default.yaml": "a: 1\n",
				"config/default.json": "{}",
			}},
			want: []string{"layer: envplane.yaml:2:19: layer \"config/default.*\" is ambiguous in development: it matches config/default.json, config/default.yaml; rename or remove all but one"},
		},
		{
			name: "required layer missing",
			fx: fixture{files: map[string]string{
				"envplane.yaml": "environments: [development]\nconfig:\n  layers:\n    - {path: 'config/{env}.yaml', required: true}\n",
			}},
			want: []string{"layer: envplane.yaml:4:7: layer \"config/{env}.yaml\" is required but config/development.yaml does not exist"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messages(tt.fx.resolve(t))
			for i := range got {
				if i < len(tt.want) && strings.HasSuffix(tt.want[i], ": ") && strings.HasPrefix(got[i], tt.want[i]) {
					got[i] = tt.want[i]
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

type prov struct {
	Kind, Name   string
	Line, Column int
}

func provOf(s tree.Source) prov {
	return prov{s.Kind.String(), s.Name, s.Line, s.Column}
}

func TestProvenance(t *testing.T) {
	fx := fixture{
		files: map[string]string{
			"config/default.yaml":     "server:\n  port: 8080\n  host: ${HOST}\n",
			"config/development.yaml": "server:\n  port: 3000\n",
		},
		vars:    map[string]string{"APP_SERVER__PORT": "9000"},
		secrets: map[string]domain.Secret{"HOST": {Value: "db", Version: 3}},
	}
	res := fx.resolve(t)
	if len(res.Problems) > 0 {
		t.Fatal(messages(res))
	}
	port := res.Tree.Lookup([]string{"server", "port"})
	var chain []prov
	for _, o := range port.Overridden {
		chain = append(chain, provOf(o.Src))
	}
	want := []prov{{"file", "config/development.yaml", 2, 9}, {"file", "config/default.yaml", 2, 9}}
	if diff := cmp.Diff(prov{"env", "APP_SERVER__PORT", 0, 0}, provOf(port.Src)); diff != "" {
		t.Errorf("port source (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, chain); diff != "" {
		t.Errorf("port overridden chain (-want +got):\n%s", diff)
	}
	host := res.Tree.Lookup([]string{"server", "host"})
	if diff := cmp.Diff(prov{"secret", "HOST", 0, 0}, provOf(host.Src)); diff != "" {
		t.Errorf("host source (-want +got):\n%s", diff)
	}
	if host.Via == nil || provOf(*host.Via) != (prov{"file", "config/default.yaml", 3, 9}) || !host.Secret || host.Src.Version != 3 {
		t.Errorf("host: via %+v secret %v version %d; want the file reference, secret, version 3", host.Via, host.Secret, host.Src.Version)
	}
}

func TestSchemaDefaultsAndHints(t *testing.T) {
	fx := fixture{
		files: map[string]string{
			"envplane.yaml":       "environments: [development]\nconfig: {layers: [config/default.yaml], schema: config/schema.json}\n",
			"config/schema.json":  `{"type":"object","properties":{"server":{"type":"object","properties":{"port":{"type":"integer","default":8080},"timeout":{"type":"integer","default":30}}},"tags":{"type":"array","items":{"type":"integer"}}}}`,
			"config/default.yaml": "server: {port: '${PORT_X}'}\ntags: '${TAGS}'\n",
		},
		vars: map[string]string{"PORT_X": "9000", "TAGS": "1,2"},
	}
	res := fx.resolve(t)
	if len(res.Problems) > 0 {
		t.Fatal(messages(res))
	}
	want := map[string]any{"server": map[string]any{"port": int64(9000), "timeout": int64(30)}, "tags": []any{int64(1), int64(2)}}
	if diff := cmp.Diff(want, res.Tree.Interface()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	timeout := res.Tree.Lookup([]string{"server", "timeout"})
	if timeout.Src.Kind != tree.SourceDefault || timeout.Src.Name != "config/schema.json" {
		t.Errorf("timeout source = %+v, want the schema default", timeout.Src)
	}
	port := res.Tree.Lookup([]string{"server", "port"})
	// The file's "${PORT_X}" is where the variable's value was asked for (Via);
	// what it overrode is the schema default.
	if n := len(port.Overridden); n != 1 || port.Overridden[0].Src.Kind != tree.SourceDefault || port.Via == nil {
		t.Errorf("port should come from PORT_X via the file and override the schema default, got %d overridden, via %v", n, port.Via)
	}
}

func TestSensitivity(t *testing.T) {
	s := resolve.NewSensitivity([]string{"web-hook", "serviceKey"})
	tests := []struct {
		path string
		want bool
	}{
		// Sensitive words as whole segments at the end of a key name.
		{"database.password", true},
		{"db_password", true},
		{"DB-PASSWORD", true},
		{"passwd", true},
		{"security.jwtSecret", true},
		{"JWT_SECRET", true},
		{"client-secret", true},
		{"clientSecret", true},
		{"token", true},
		{"apiToken", true},
		{"GITHUB_TOKEN", true},
		{"ai.apiKey", true},
		{"ai.API_KEY", true},
		{"OPENAI_API_KEY", true},
		{"blockchain.privateKey", true},
		{"PRIVATE_KEY", true},
		{"encryptionKey", true},
		{"supabase.serviceKey", true},
		{"customer.accountNumber", true},
		{"customerSSN", true},
		{"alerts.channels.0.webhook", true},
		{"slackWebhook", true},
		{"credentials.user", true}, // a whole key that is a plural word
		{"secrets.anything", true},
		{"tokens", true},
		{"credential", true},
		{"awsSecretKey", true}, // the word, then "key" or "value"
		{"AWS_SECRET_ACCESS_KEY", true},
		{"AWS_ACCESS_KEY_ID", false},
		{"secretName", false},
		{"tokenValue", true},
		{"password2", true}, // trailing numbers do not count
		{"TOKEN_1", true},
		{"JWTSecret", true},
		// Words inside other words or not at the end.
		{"ai.rateLimit.tokensPerMinute", false},
		{"maxTokens", false},
		{"secretaryName", false},
		{"passwordMinLength", false},
		{"tokenExpiry", false},
		{"webhookTimeout", false},
		{"server.port", false},
		{"logging.sensitiveFields", false},
		{"security.helmet.hsts.maxAge", false},
		{"keyGenerator", false},
		{"passport", false},
		{"tokenizer", false},
		{"", false},
		{"___", false},
	}
	for _, tt := range tests {
		if got := s.Path(tt.path); got != tt.want {
			t.Errorf("Path(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// The keys of the seeds and examples that hold credentials stay redacted,
// and their counts and limits do not.
func TestSensitivityExamples(t *testing.T) {
	s := resolve.NewSensitivity([]string{"webhook", "serviceKey"})
	for _, p := range []string{
		"database.password", "redis.password", "kafka.sasl.password", "security.jwtSecret",
		"security.encryptionKey", "ai.apiKey", "blockchain.privateKey", "alerts.channels.0.webhook",
	} {
		if !s.Path(p) {
			t.Errorf("%s must be sensitive", p)
		}
	}
	for _, p := range []string{
		"ai.rateLimit.tokensPerMinute", "security.rateLimit.requestsPerMinute", "logging.sensitiveFields.0",
		"security.jwtExpiresIn", "database.user", "observability.tracing.sampleRate",
	} {
		if s.Path(p) {
			t.Errorf("%s must not be sensitive", p)
		}
	}
}

func BenchmarkSensitivityKey(b *testing.B) {
	s := resolve.NewSensitivity([]string{"webhook"})
	b.ReportAllocs()
	for b.Loop() {
		s.Key("tokensPerMinute")
		s.Key("JWT_SECRET")
	}
}

func TestSealedSecrets(t *testing.T) {
	fx := fixture{
		env: "production",
		files: map[string]string{
			"config/development.yaml": "db: {port: 5432, password: dev}\n",
			"config/production.yaml":  "db: {port: '${DB_PORT}', password: '${DB_PASSWORD}', url: 'pg://u:${DB_PASSWORD}@h'}\n",
		},
		secrets: map[string]domain.Secret{"DB_PORT": {Sealed: true}, "DB_PASSWORD": {Sealed: true, Version: 4}},
	}
	res := fx.resolve(t)
	if len(res.Problems) > 0 {
		t.Fatalf("a sealed secret satisfies references: %q", messages(res))
	}
	port := res.Tree.Lookup([]string{"db", "port"})
	if !port.Sealed || !port.Secret || port.Kind != tree.String || port.Src.Kind != tree.SourceSecret || port.Via == nil {
		t.Errorf("port = %+v: want a sealed string from the secret, via the file", port)
	}
	url := res.Tree.Lookup([]string{"db", "url"})
	if !url.Sealed || !url.Secret {
		t.Errorf("url built from a sealed secret must be sealed and secret: %+v", url)
	}
}

// A ${X:?message} message lands in errors, findings and API answers: it must
// never carry a secret or variable value.
func TestRequiredMessageShowsNoValues(t *testing.T) {
	fx := fixture{
		files:   map[string]string{"config/default.yaml": "note: '${MISSING:?db password is ${DB_PASS}, user ${USER_X}}'\n"},
		secrets: map[string]domain.Secret{"DB_PASS": {Value: "CANARY-7731"}},
		vars:    map[string]string{"USER_X": "ENVCANARY-2"},
	}
	got := messages(fx.resolve(t))
	want := []string{"unresolved-reference: config/default.yaml:1:8: note: db password is ${DB_PASS}, user ${USER_X}"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
