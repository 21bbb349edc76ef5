package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"
)

func TestLoadIdentities(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := write("ci.txt", "# created: 2026-01-01T00:00:00Z\r\n# public key: "+bob+"\r\n"+bobKey+"\r\n")
	write("xdg/envplane/keys.txt", aliceKey+"\n")
	write("home/.config/envplane/keys.txt", "\n# mine\n"+carolKey+"\n"+aliceKey+"\n")
	write("emptyhome/.config/envplane/keys.txt", "# nothing yet\n")
	write("badhome/.config/envplane/keys.txt", aliceKey[:40]+"\n")

	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    []string // recipients of the identities, in order
		source  string
		wantErr string
	}{
		{"ENVPLANE_AGE_KEY, several lines", map[string]string{EnvKey: "# alice\n" + aliceKey + "\n\n  " + bobKey + "  \n", "HOME": dir + "/home"},
			[]string{alice, bob}, EnvKey, ""},
		{"ENVPLANE_AGE_KEY wins over the file", map[string]string{EnvKey: carolKey, EnvKeyFile: keyFile}, []string{carol}, EnvKey, ""},
		{"ENVPLANE_AGE_KEY_FILE, CRLF", map[string]string{EnvKeyFile: keyFile, "HOME": dir + "/home"}, []string{bob}, keyFile, ""},
		{"XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": dir + "/xdg", "HOME": dir + "/home"}, []string{alice}, filepath.Join(dir, "xdg/envplane/keys.txt"), ""},
		{"relative XDG_CONFIG_HOME is ignored", map[string]string{"XDG_CONFIG_HOME": "xdg", "HOME": dir + "/home"}, []string{carol, alice}, filepath.Join(dir, "home/.config/envplane/keys.txt"), ""},
		{"HOME", map[string]string{"HOME": dir + "/home"}, []string{carol, alice}, filepath.Join(dir, "home/.config/envplane/keys.txt"), ""},
		{"no keys.txt", map[string]string{"HOME": dir + "/nobody"}, nil, "", ""},
		{"keys.txt with only comments", map[string]string{"HOME": dir + "/emptyhome"}, nil, "", ""},
		{"nothing set", map[string]string{}, nil, "", ""},
		{"ENVPLANE_AGE_KEY_FILE missing", map[string]string{EnvKeyFile: dir + "/missing.txt"}, nil, "", "ENVPLANE_AGE_KEY_FILE: open " + dir + "/missing.txt"},
		{"malformed ENVPLANE_AGE_KEY", map[string]string{EnvKey: aliceKey + "\n" + bobKey[:30] + "X"}, nil, "", "ENVPLANE_AGE_KEY: line 2 is not an age identity (AGE-SECRET-KEY-1…)"},
		{"ENVPLANE_AGE_KEY without a key", map[string]string{EnvKey: "# just a comment"}, nil, "", "ENVPLANE_AGE_KEY holds no age identity"},
		{"recipient given as identity", map[string]string{EnvKey: alice}, nil, "", "ENVPLANE_AGE_KEY: line 1 is not an age identity"},
		{"malformed keys.txt", map[string]string{"HOME": dir + "/badhome"}, nil, "", filepath.Join(dir, "badhome/.config/envplane/keys.txt") + ": line 1 is not an age identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, source, err := LoadIdentities(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), aliceKey[16:30]) || strings.Contains(err.Error(), bobKey[16:30]) {
					t.Errorf("error shows key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range ids {
				got = append(got, recipientOf(id))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("identities (-want +got):\n%s", diff)
			}
			if source != tc.source {
				t.Errorf("source %q, want %q", source, tc.source)
			}
		})
	}
}

func TestParseRecipient(t *testing.T) {
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, wantErr string
	}{
		{alice, ""},
		{hybrid.Recipient().String(), ""},
		{strings.ToUpper(alice), "is not an age recipient"},
		{alice[:len(alice)-1] + "q", "is not a valid age recipient"},
		{"ssh-ed25519 AAAA", "is not an age recipient"},
		{aliceKey, `"AGE-SECRET-KEY-…" is not an age recipient`},
	} {
		_, err := ParseRecipient(tc.in)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParseRecipient(%.20q): %v, want %q", tc.in, err, tc.wantErr)
		}
	}
	// A post-quantum recipient works end to end.
	data := build(t, "staging", map[string]string{"A": "1"}, hybrid.Recipient().String(), alice)
	f, err := Parse(testPath, data)
	if err != nil {
		t.Fatal(err)
	}
	o, err := f.Open([]age.Identity{hybrid})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Get("A"); v != "1" {
		t.Error("wrong value")
	}
}

// TestCanaryNeverInErrors drives every failure path with a canary value in
// the file and checks no error shows it.
func TestCanaryNeverInErrors(t *testing.T) {
	data := build(t, "staging", map[string]string{"CANARY": canary, "OTHER": "x"}, alice)
	var errs []error
	collect := func(_ any, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	f, _ := Parse(testPath, data)
	collect(f.Open(identity(t, bobKey)))
	collect(f.Open(nil))
	for i := range len(data) {
		// Every byte flipped and every prefix: parse and, where that works,
		// open. (The flips stay ASCII so the canonical path is exercised.)
		mutated := bytes.Clone(data)
		mutated[i] ^= 1
		for _, d := range [][]byte{mutated, data[:i]} {
			f, err := Parse(testPath, d)
			collect(f, err)
			if err == nil {
				collect(f.Open(identity(t, aliceKey)))
			}
		}
	}
	collect(Parse(testPath, bytes.Replace(data, []byte("CANARY: ENC"), []byte("CANARY: "+canary+" ENC"), 1)))
	collect(Parse(testPath, []byte("CANARY: "+canary+"\nenvplane: {version: 1}\n")))
	if len(errs) < len(data) {
		t.Fatalf("only %d errors", len(errs))
	}
	for _, err := range errs {
		if msg := err.Error(); strings.Contains(msg, canary) || strings.Contains(msg, canary[:12]) {
			t.Fatalf("an error shows the canary: %s", msg)
		}
	}
}

// TestUnwrapChunk checks that the direct unwrap of a data key applies to
// what wrapKey writes and agrees with age.Decrypt, and that a wrong identity
// is age's NoIdentityMatchError either way.
func TestUnwrapChunk(t *testing.T) {
	key := bytes.Repeat([]byte{7}, keySize)
	r, err := ParseRecipient(alice)
	if err != nil {
		t.Fatal(err)
	}
	armored, err := wrapKey(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := unwrapChunk(armored, identity(t, aliceKey))
	if !ok || err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrapChunk: ok %v, err %v, key %x", ok, err, got)
	}
	slow, err := decryptKey(armored, identity(t, aliceKey))
	if err != nil || !bytes.Equal(slow, key) {
		t.Fatalf("decryptKey: %v %x", err, slow)
	}
	var nm *age.NoIdentityMatchError
	if _, ok, err := unwrapChunk(armored, identity(t, bobKey)); !ok || !errors.As(err, &nm) {
		t.Fatalf("wrong identity: ok %v, err %v", ok, err)
	}
	if _, err := decryptKey(armored, identity(t, bobKey)); !errors.As(err, &nm) {
		t.Fatalf("wrong identity, age.Decrypt: %v", err)
	}
	// A key file holding other than 32 bytes is left to age.Decrypt.
	long, err := wrapKey(append(key, 1), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := unwrapChunk(long, identity(t, aliceKey)); ok {
		t.Fatal("unwrapChunk took a 33-byte key file")
	}
	if _, err := unwrapKey(long, identity(t, aliceKey)); err == nil {
		t.Fatal("a 33-byte key file unwrapped")
	}
}
