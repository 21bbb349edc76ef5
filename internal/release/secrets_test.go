package release_test

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/secrets"
)

const secretValue = "s3cr3t-value-never-in-errors"

func identity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sealFile(t testing.TB, env string, values map[string]string, recipients ...string) []byte {
	t.Helper()
	o, err := secrets.New(env, recipients)
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range values {
		if err := o.Set(n, v); err != nil {
			t.Fatal(err)
		}
	}
	b, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncLog is a logger's output, safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestOpenSecrets: each environment's secrets file of a release opens with
// the server's identities when it lists one of their recipients (values
// carry the file), is skipped with one log line when none, and is a
// problem naming the file when it does not parse or fails authentication.
// No outcome's error or log holds a value.
func TestOpenSecrets(t *testing.T) {
	server, dev := identity(t), identity(t)
	srvR, devR := server.Recipient().String(), dev.Recipient().String()
	values := map[string]string{"DB_PASSWORD": secretValue}
	good := sealFile(t, "staging", values, srvR, devR)
	devOnly := sealFile(t, "staging", values, devR)
	tampered := regexp.MustCompile(`lastmodified: "[^"]*"`).ReplaceAll(good, []byte(`lastmodified: "2001-01-01T00:00:00Z"`))
	production := sealFile(t, "production", values, srvR)
	ws := "environments: [staging, production]\nconfig:\n  layers: [config.yaml]\n"

	type outcome struct {
		File       string
		Values     map[string]domain.Secret
		Skipped    bool
		NoIdentity bool
		Names      []string
		Fields     []string // "field: " and the message up to its first ":" (the file it names)
		Log        string   // the log's level, or ""
	}
	tests := []struct {
		name string
		file []byte // secrets/staging.enc.yaml; nil: none
		ids  []age.Identity
		want outcome
	}{
		{"no file", nil, []age.Identity{server}, outcome{}},
		{"opens", good, []age.Identity{server}, outcome{File: "secrets/staging.enc.yaml",
			Values: map[string]domain.Secret{"DB_PASSWORD": {Value: secretValue, File: "secrets/staging.enc.yaml"}}}},
		{"opens with one of several identities", good, []age.Identity{identity(t), server}, outcome{File: "secrets/staging.enc.yaml",
			Values: map[string]domain.Secret{"DB_PASSWORD": {Value: secretValue, File: "secrets/staging.enc.yaml"}}}},
		{"no identity", good, nil, outcome{File: "secrets/staging.enc.yaml", Skipped: true, NoIdentity: true, Names: []string{"DB_PASSWORD"}, Log: "INFO"}},
		{"not a recipient", devOnly, []age.Identity{server}, outcome{File: "secrets/staging.enc.yaml", Skipped: true, Names: []string{"DB_PASSWORD"}, Log: "WARN"}},
		{"fails its MAC", tampered, []age.Identity{server}, outcome{File: "secrets/staging.enc.yaml",
			Fields: []string{"files.secrets/staging.enc.yaml: secrets/staging.enc.yaml:"}, Log: "ERROR"}},
		{"another environment's file", production, []age.Identity{server}, outcome{File: "secrets/staging.enc.yaml",
			Fields: []string{"files.secrets/staging.enc.yaml: secrets/staging.enc.yaml:"}, Log: "ERROR"}},
		{"does not parse", []byte("DB_PASSWORD: " + secretValue + "\n"), []age.Identity{server}, outcome{File: "secrets/staging.enc.yaml",
			Fields: []string{"files.secrets/staging.enc.yaml: secrets/staging.enc.yaml:"}, Log: "ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{"envplane.yaml": []byte(ws), "config.yaml": []byte("a: 1\n")}
			if tt.file != nil {
				files["secrets/staging.enc.yaml"] = tt.file
			}
			c, err := release.Load(files)
			if err != nil {
				t.Fatal(err)
			}
			var logs syncLog
			s := release.OpenSecrets("rel_1", c.Workspace, tt.ids, slog.New(slog.NewTextHandler(&logs, nil)))
			var wg sync.WaitGroup
			got := make([]*release.EnvSecrets, 4)
			for i := range got { // opened once, whoever asks first
				wg.Go(func() { got[i] = s.For("staging") })
			}
			wg.Wait()
			for _, g := range got[1:] {
				if g != got[0] {
					t.Fatal("For returned different results for one environment")
				}
			}
			e := got[0]
			o := outcome{File: e.File, Values: e.Values, Skipped: e.Skipped, NoIdentity: e.NoIdentity, Names: e.Names}
			for _, f := range e.Fields() {
				msg := f.Message
				if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, f.Field[len("files."):]) {
					msg = msg[:strings.Index(msg, ":")+1]
				}
				o.Fields = append(o.Fields, f.Field+": "+msg)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if logs.String() != "" {
				if len(lines) != 1 {
					t.Errorf("%d log lines, want 1:\n%s", len(lines), logs.String())
				}
				if m := regexp.MustCompile(`level=(\w+)`).FindStringSubmatch(lines[0]); m != nil {
					o.Log = m[1]
				}
			}
			if diff := cmp.Diff(tt.want, o); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			text := logs.String()
			if e.Err != nil {
				text += e.Err.Error()
			}
			if strings.Contains(text, secretValue) {
				t.Errorf("a secret value in an error or the log: %s", text)
			}
		})
	}
}

// TestValidateWithSecrets: upload validation resolves with the secrets
// files the identities open, and refuses a file that fails authentication
// only when they can tell; without identities it stays a stored release
// (the server reports it when it gets the identity).
func TestValidateWithSecrets(t *testing.T) {
	server := identity(t)
	good := sealFile(t, "staging", map[string]string{"PORT": "80"}, server.Recipient().String())
	tampered := regexp.MustCompile(`lastmodified: "[^"]*"`).ReplaceAll(good, []byte(`lastmodified: "2001-01-01T00:00:00Z"`))
	files := func(secretsFile []byte) map[string][]byte {
		return map[string][]byte{"envplane.yaml": []byte("environments: [staging]\nconfig:\n  layers: [config.yaml]\n"),
			"config.yaml": []byte("port: ${PORT}\n"), "secrets/staging.enc.yaml": secretsFile}
	}
	tests := []struct {
		name   string
		file   []byte
		ids    []age.Identity
		fields []string
	}{
		{"opens", good, []age.Identity{server}, nil},
		{"tampered, identity", tampered, []age.Identity{server}, []string{"files.secrets/staging.enc.yaml"}},
		{"tampered, no identity", tampered, nil, nil},
		{"not a secrets file", []byte("PORT: 80\n"), nil, []string{"files.secrets/staging.enc.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sec, err := release.ValidateWith(t.Context(), files(tt.file), tt.ids, nil)
			var got []string
			for _, f := range errs.FieldsOf(err) {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Fatalf("fields (-want +got)\n%s\n%v", diff, err)
			}
			if err != nil {
				if !errs.Is(err, errs.Invalid) {
					t.Errorf("kind of %v, want invalid", err)
				}
				return
			}
			if c == nil || sec == nil {
				t.Fatal("no compiled release or secrets")
			}
		})
	}
}
