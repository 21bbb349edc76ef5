package sopsinterop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	sopsaes "github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/secrets"
)

// newKey makes a test identity.
func newKey(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, id.Recipient().String()
}

// sopsDecrypt opens data with SOPS's library as `sops -d` does: data key
// from the age key group, every value decrypted, MAC checked. It returns
// the decrypted document as YAML and the tree.
func sopsDecrypt(t *testing.T, data []byte, id age.Identity) ([]byte, sops.Tree, error) {
	t.Helper()
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		return nil, tree, fmt.Errorf("load: %w", err)
	}
	var key []byte
	for _, mk := range tree.Metadata.KeyGroups[0] {
		ak := mk.(*sopsage.MasterKey)
		sopsage.ParsedIdentities{id}.ApplyToMasterKey(ak)
		if k, err := ak.Decrypt(); err == nil {
			key = k
			break
		}
	}
	if key == nil {
		return nil, tree, errors.New("no age key opens the data key")
	}
	cipher := sopsaes.NewCipher()
	mac, err := tree.Decrypt(key, cipher)
	if err != nil {
		return nil, tree, err
	}
	fileMAC, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, key, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, tree, fmt.Errorf("cannot decrypt MAC: %w", err)
	}
	if fileMAC != mac {
		return nil, tree, errors.New("MAC mismatch")
	}
	out, err := store.EmitPlainFile(tree.Branches)
	return out, tree, err
}

// sopsEncrypt encrypts a plain YAML document for recipients with SOPS's
// library, as `sops -e` does with SOPS's defaults.
func sopsEncrypt(t *testing.T, plain []byte, recipients ...string) []byte {
	t.Helper()
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	var group sops.KeyGroup
	for _, r := range recipients {
		mk, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			t.Fatal(err)
		}
		group = append(group, mk)
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups: []sops.KeyGroup{group}, UnencryptedSuffix: sops.DefaultUnencryptedSuffix, Version: "3.13.3",
	}}
	key, errs := tree.GenerateDataKey()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cipher := sopsaes.NewCipher()
	mac, err := tree.Encrypt(key, cipher)
	if err != nil {
		t.Fatal(err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, key, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		t.Fatal(err)
	}
	out, err := store.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func envplaneOpen(t *testing.T, path string, data []byte, id age.Identity) (*secrets.Opened, error) {
	t.Helper()
	f, err := secrets.Parse(path, data)
	if err != nil {
		return nil, err
	}
	return f.Open([]age.Identity{id})
}

// TestSOPSOpensEnvplaneFiles: what envplane writes, SOPS's library opens,
// verifies, and writes back byte for byte as envplane wrote it.
func TestSOPSOpensEnvplaneFiles(t *testing.T) {
	var ids []*age.X25519Identity
	var rs []string
	for range 5 {
		id, r := newKey(t)
		ids, rs = append(ids, id), append(rs, r)
	}
	values := map[string]string{
		"DATABASE_PASSWORD": "hunter2",
		"EMPTY":             "",
		"TLS_KEY":           "-----BEGIN KEY-----\nabc\n\n  def\n-----END KEY-----\n",
		"UNICODE":           "pässwörd 🔑",
		"yes":               "a name YAML 1.1 reads as a boolean",
		"a.b-c":             "dots and dashes",
		"NUMBERISH":         "0123",
	}
	o, err := secrets.New("staging", rs)
	if err != nil {
		t.Fatal(err)
	}
	for n, v := range values {
		if err := o.Set(n, v); err != nil {
			t.Fatal(err)
		}
	}
	data, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		plain, tree, err := sopsDecrypt(t, data, id)
		if err != nil {
			t.Fatalf("recipient %d: SOPS cannot open envplane's file: %v\n%s", i, err, data)
		}
		got := map[string]string{}
		for _, it := range tree.Branches[0] {
			got[it.Key.(string)] = fmt.Sprint(it.Value)
		}
		want := map[string]string{"envplane_environment": "staging"}
		for n, v := range values {
			want[n] = v
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("SOPS decrypts (-want +got):\n%s\n%s", diff, plain)
		}
	}
	// SOPS's YAML store writes the file as envplane did.
	store := sopsyaml.NewStore(&config.YAMLStoreConfig{})
	tree, err := store.LoadEncryptedFile(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := store.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(data), string(again)); diff != "" {
		t.Errorf("SOPS writes envplane's file differently (-envplane +sops):\n%s", diff)
	}
}

// TestEnvplaneOpensSOPSFiles: what SOPS encrypts, envplane opens, changes
// and writes back so that SOPS still opens it, keeping its shape.
func TestEnvplaneOpensSOPSFiles(t *testing.T) {
	id, r := newKey(t)
	other, r2 := newKey(t)
	plain := []byte(`# a comment SOPS encrypts
DATABASE_PASSWORD: hunter2
EMPTY: ""
PORT: 5432
RATIO: 1.5
ENABLED: true
DISABLED: false
MULTI: |
    line one
    line two
db:
    user: app
    replicas:
        - host-a
        - host-b
PUBLIC_unencrypted: visible
`)
	data := sopsEncrypt(t, plain, r, r2)
	o, err := envplaneOpen(t, "secrets/staging.enc.yaml", data, id)
	if err != nil {
		t.Fatalf("envplane cannot open SOPS's file: %v\n%s", err, data)
	}
	want := map[string]string{
		"DATABASE_PASSWORD": "hunter2", "EMPTY": "", "PORT": "5432", "RATIO": "1.5",
		"ENABLED": "true", "DISABLED": "false", "MULTI": "line one\nline two\n",
		"db.user": "app", "db.replicas.0": "host-a", "db.replicas.1": "host-b",
		"PUBLIC_unencrypted": "visible",
	}
	if diff := cmp.Diff(want, o.Values()); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if o.Bound() {
		t.Error("a file made by plain sops is bound")
	}
	// Change one value, one nested value, add one: SOPS still opens it.
	o.Set("DATABASE_PASSWORD", "new")
	o.Set("db.user", "admin")
	o.Set("NEW_ONE", "x")
	out, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dec, _, err := sopsDecrypt(t, out, other)
	if err != nil {
		t.Fatalf("SOPS cannot open the file envplane wrote back: %v\n%s", err, out)
	}
	for _, line := range []string{"envplane_environment: staging", "DATABASE_PASSWORD: new", "PORT: 5432", "ENABLED: true",
		"    user: admin", "        - host-b", "NEW_ONE: x", "PUBLIC_unencrypted: visible", "RATIO: 1.5"} {
		if !strings.Contains(string(dec), line+"\n") {
			t.Errorf("sops -d output lacks %q:\n%s", line, dec)
		}
	}
	// Unchanged values kept their sealed text.
	for _, l := range []string{"PORT: ENC[", "MULTI: ENC["} {
		if lineOf(data, l) != lineOf(out, l) {
			t.Errorf("%s…: an unchanged value was sealed again", l)
		}
	}
	// Now bound: copied to production, it fails in envplane.
	if _, err := envplaneOpen(t, "secrets/production.enc.yaml", out, id); !errors.Is(err, secrets.ErrTampered) {
		t.Errorf("the bound file opens as production: %v", err)
	}
}

func lineOf(data []byte, prefix string) string {
	for l := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestTamperSOPS: what SOPS rejects, envplane rejects, and the other way.
func TestTamperSOPS(t *testing.T) {
	id, r := newKey(t)
	o, _ := secrets.New("staging", []string{r})
	o.Set("A", "alpha")
	o.Set("B", "beta")
	o.Set("C", "gamma")
	data, _ := o.Marshal()
	swap := func() []byte {
		a, b := lineOf(data, "A: "), lineOf(data, "B: ")
		s := strings.Replace(string(data), a, "A: "+strings.TrimPrefix(b, "B: "), 1)
		return []byte(strings.Replace(s, b, "B: "+strings.TrimPrefix(a, "A: "), 1))
	}
	for name, d := range map[string][]byte{
		"swapped":  swap(),
		"removed":  []byte(strings.Replace(string(data), lineOf(data, "B: ")+"\n", "", 1)),
		"reorder":  []byte(strings.Replace(string(data), lineOf(data, "A: ")+"\n"+lineOf(data, "B: ")+"\n", lineOf(data, "B: ")+"\n"+lineOf(data, "A: ")+"\n", 1)),
		"unbound":  []byte(strings.Replace(string(data), lineOf(data, "envplane_environment: ")+"\n", "", 1)),
		"modified": []byte(strings.Replace(string(data), "    lastmodified: \"", "    lastmodified: \"1", 1)),
	} {
		if _, _, err := sopsDecrypt(t, d, id); err == nil {
			t.Errorf("%s: SOPS opens it", name)
		}
		if _, err := envplaneOpen(t, "secrets/staging.enc.yaml", d, id); err == nil {
			t.Errorf("%s: envplane opens it", name)
		}
	}
}

// TestBinaryDoesNotLinkSOPS builds envplane and checks that SOPS's library
// is not in it: it is a test-only dependency.
func TestBinaryDoesNotLinkSOPS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	bin := filepath.Join(t.TempDir(), "envplane")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/envplane/envplane/cmd/envplane")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(goBin, "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("getsops")) {
		t.Errorf("the envplane binary links SOPS:\n%s", out)
	}
	_ = os.Remove(bin)
}

// TestServerRefusesUnboundSOPSFiles: a file plain sops wrote carries no
// envplane_environment binding, so a copy of production's file renamed to
// staging's would open; the server refuses to serve it and says how to
// bind it, naming no value.
func TestServerRefusesUnboundSOPSFiles(t *testing.T) {
	id, r := newKey(t)
	prod := sopsEncrypt(t, []byte("DB_PASSWORD: production-only-secret\n"), r)
	c, err := release.Load(map[string][]byte{
		"envplane.yaml":            []byte("environments: [staging, production]\nconfig:\n  layers: [config.yaml]\n"),
		"config.yaml":              []byte("a: 1\n"),
		"secrets/staging.enc.yaml": prod,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := release.OpenSecrets("rel_1", c.Workspace, []age.Identity{id}, nil).For("staging")
	if e.Err == nil || len(e.Values) != 0 {
		t.Fatalf("an unbound file was served: err %v, %d values", e.Err, len(e.Values))
	}
	if msg := e.Err.Error(); !strings.Contains(msg, "envplane secrets migrate --env staging") || strings.Contains(msg, "production-only-secret") {
		t.Errorf("error %q: want the migrate hint and no value", msg)
	}
}
