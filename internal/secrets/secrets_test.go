package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/errs"
)

const testPath = "secrets/staging.enc.yaml"

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        string
		values     map[string]string
		recipients []string
	}{
		{"empty", "staging", map[string]string{}, []string{alice}},
		{"one", "staging", map[string]string{"DATABASE_PASSWORD": "hunter2"}, []string{alice}},
		{"several recipients", "staging", map[string]string{"A": "1", "B": "2"}, []string{carol, alice, bob}},
		{"empty value", "staging", map[string]string{"EMPTY": ""}, []string{alice}},
		{"multi-line", "staging", map[string]string{"TLS_KEY": "-----BEGIN KEY-----\nabc\n\n  def\n-----END KEY-----\n"}, []string{alice}},
		{"unicode and yaml-ish text", "staging", map[string]string{
			"U": "pässwörd 🔑", "Y": "key: value # not a comment", "Q": `"quoted" 'x' \ ENC[AES256_GCM,x]`,
		}, []string{alice}},
		{"names with . - _", "staging", map[string]string{"_x": "1", "a.b-c": "2", "Z9": "3"}, []string{alice}},
		{"names yaml reads as booleans", "staging", map[string]string{"yes": "1", "NO": "2", "true": "3", "null": "4", "On": "5"}, []string{alice}},
		{"environment yaml reads as null", "null", map[string]string{"A": "1"}, []string{alice}},
		{"500 secrets", "production", bigValues(500), []string{alice, bob}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "secrets/" + FileName(tc.env)
			data := build(t, tc.env, tc.values, tc.recipients...)
			checkCanonical(t, file, data)
			f, err := Parse(file, data)
			if err != nil {
				t.Fatal(err)
			}
			wantNames := slices.Sorted(func(yield func(string) bool) {
				for n := range tc.values {
					if !yield(n) {
						return
					}
				}
			})
			if !slices.Equal(wantNames, f.Names()) {
				t.Errorf("Names() = %q, want %q", f.Names(), wantNames)
			}
			if f.Environment != tc.env || !f.SOPS {
				t.Errorf("environment %q SOPS %v", f.Environment, f.SOPS)
			}
			if diff := cmp.Diff(slices.Sorted(slices.Values(tc.recipients)), f.Recipients); diff != "" {
				t.Errorf("Recipients (-want +got):\n%s", diff)
			}
			for _, key := range []string{aliceKey, bobKey, carolKey} {
				id := identity(t, key)
				if !slices.Contains(tc.recipients, recipientOf(id[0])) {
					continue
				}
				o, err := f.Open(id)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.values, o.Values()); diff != "" {
					t.Errorf("Values (-want +got):\n%s", diff)
				}
			}
			// Any YAML reader sees the names as strings.
			var generic map[string]any
			if err := yaml.Unmarshal(data, &generic); err != nil {
				t.Fatal(err)
			}
			if len(generic) != len(tc.values)+2 { // and envplane_environment, sops
				t.Errorf("yaml.v3 sees %d top-level keys, want %d", len(generic), len(tc.values)+2)
			}
		})
	}
}

func TestStableMarshal(t *testing.T) {
	orig := build(t, "staging", map[string]string{"A": "1", "B": "2", "C": "3"}, alice, bob)
	lines := func(b []byte) []string { return strings.SplitAfter(string(b), "\n") }

	for _, tc := range []struct {
		name string
		edit func(t *testing.T, o *Opened)
		same bool     // the whole file stays byte for byte
		diff []string // otherwise: prefixes of the lines allowed to change
	}{
		{"nothing", func(t *testing.T, o *Opened) {}, true, nil},
		{"same value again", func(t *testing.T, o *Opened) { o.Set("B", "2") }, true, nil},
		{"changed and changed back", func(t *testing.T, o *Opened) { o.Set("B", "x"); o.Set("B", "2") }, true, nil},
		{"same recipients in another order", func(t *testing.T, o *Opened) {
			if err := o.SetRecipients([]string{bob, alice, bob}); err != nil {
				t.Fatal(err)
			}
		}, true, nil},
		{"one value", func(t *testing.T, o *Opened) { o.Set("B", "two") }, false, []string{"B:", "    mac:", "    lastmodified:"}},
		{"added value", func(t *testing.T, o *Opened) { o.Set("BB", "x") }, false, []string{"BB:", "    mac:", "    lastmodified:"}},
		{"removed value", func(t *testing.T, o *Opened) { o.Delete("B") }, false, []string{"B:", "    mac:", "    lastmodified:"}},
		{"added recipient", func(t *testing.T, o *Opened) {
			if err := o.SetRecipients([]string{alice, bob, carol}); err != nil {
				t.Fatal(err)
			}
		}, false, []string{"          recipient: " + carol, "        - enc:", "            ", "    lastmodified:", "    mac:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := open(t, testPath, orig, aliceKey)
			tc.edit(t, o)
			if o.Changed() == tc.same {
				t.Errorf("Changed() = %v", o.Changed())
			}
			out, err := o.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if tc.same {
				if !bytes.Equal(out, orig) {
					t.Fatalf("unchanged file marshals differently:\n%s\nwas:\n%s", out, orig)
				}
				return
			}
			checkCanonical(t, testPath, out)
			// Every line that is in both files and not allowed to change is
			// kept; lines that differ are all allowed to.
			before, after := lines(orig), lines(out)
			kept := map[string]bool{}
			for _, l := range after {
				kept[l] = true
			}
			allowed := func(l string) bool {
				for _, p := range tc.diff {
					if strings.HasPrefix(l, p) {
						return true
					}
				}
				return false
			}
			for _, l := range before {
				if !kept[l] && !allowed(l) {
					t.Errorf("line changed: %q", l)
				}
			}
			for _, l := range after {
				if !slices.Contains(before, l) && !allowed(l) {
					t.Errorf("line added: %q", l)
				}
			}
			// Marshalling again without changes gives the same bytes.
			if again, _ := o.Marshal(); !bytes.Equal(again, out) {
				t.Error("a second Marshal without changes differs")
			}
			if o.Changed() {
				t.Error("Changed() after Marshal")
			}
			// And the output opens to the edited values.
			o2 := open(t, testPath, out, bobKey)
			if diff := cmp.Diff(o.Values(), o2.Values()); diff != "" {
				t.Errorf("values (-marshalled +reopened):\n%s", diff)
			}
		})
	}
}

func TestTamper(t *testing.T) {
	v1 := build(t, "staging", map[string]string{"A": "alpha-" + canary, "B": "beta", "C": "gamma"}, alice)
	o := open(t, testPath, v1, aliceKey)
	o.Delete("B")
	o.Set("C", "gamma2")
	v2, _ := o.Marshal() // same data key as v1
	prod := build(t, "production", map[string]string{"A": "alpha-" + canary, "B": "beta", "C": "gamma"}, alice)

	encOf := func(data []byte, name string) string {
		return strings.TrimSuffix(strings.TrimPrefix(lineOf(data, name+": "), name+": "), "\n")
	}
	flip := func(enc string) string {
		i := strings.Index(enc, "data:") + len("data:")
		c := byte('A')
		if enc[i] == 'A' {
			c = 'B'
		}
		return enc[:i] + string(c) + enc[i+1:]
	}
	for _, tc := range []struct {
		name string
		file string
		data func() []byte
		want string // the error is "<want>", a TamperError
	}{
		{"changed value", testPath, func() []byte {
			return replaceLine(t, v1, "B: ", "B: "+flip(encOf(v1, "B"))+"\n")
		}, testPath + ":3:4: B: authentication failed: the value was changed, or moved here from another name"},
		{"values swapped between names", testPath, func() []byte {
			d := replaceLine(t, v1, "A: ", "A: "+encOf(v1, "B")+"\n")
			return replaceLine(t, d, "B: ", "B: "+encOf(v1, "A")+"\n")
		}, testPath + ":2:4: A: authentication failed: the value was changed, or moved here from another name"},
		{"value copied to a new name", testPath, func() []byte {
			return replaceLine(t, v1, "C: ", lineOf(v1, "C: ")+"D: "+encOf(v1, "C")+"\n")
		}, testPath + ":5:4: D: authentication failed: the value was changed, or moved here from another name"},
		{"removed name", testPath, func() []byte {
			return replaceLine(t, v1, "B: ", "")
		}, "the MAC does not match"},
		{"deleted name brought back from history", testPath, func() []byte {
			return replaceLine(t, v2, "C: ", "B: "+encOf(v1, "B")+"\n"+lineOf(v2, "C: "))
		}, "the MAC does not match"},
		{"value rolled back to an older version", testPath, func() []byte {
			return replaceLine(t, v2, "C: ", "C: "+encOf(v1, "C")+"\n")
		}, "the MAC does not match"},
		{"file copied to another environment", "secrets/production.enc.yaml", func() []byte {
			return v1
		}, `envplane_environment: authentication failed: this file holds the secrets of environment "staging", not "production"`},
		{"binding copied from another file", testPath, func() []byte {
			return replaceLine(t, v1, "envplane_environment: ", lineOf(prod, "envplane_environment: "))
		}, "envplane_environment: authentication failed: the value was changed"},
		{"binding removed", testPath, func() []byte {
			return replaceLine(t, v1, "envplane_environment: ", "")
		}, "the MAC does not match"},
		{"mac changed", testPath, func() []byte {
			return replaceLine(t, v1, "    mac: ", "    mac: "+flip(strings.TrimSpace(strings.TrimPrefix(lineOf(v1, "    mac: "), "    mac: ")))+"\n")
		}, "the MAC or lastmodified was changed"},
		{"lastmodified changed", testPath, func() []byte {
			return replaceLine(t, v1, "    lastmodified: ", "    lastmodified: \"2020-01-02T03:04:05Z\"\n")
		}, "the MAC or lastmodified was changed"},
		{"mac from another file", "secrets/production.enc.yaml", func() []byte {
			return replaceLine(t, prod, "    mac: ", lineOf(v1, "    mac: "))
		}, "the MAC or lastmodified was changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file, tc.data())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, err = f.Open(identity(t, aliceKey))
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Open error %v, want one matching ErrTampered", err)
			}
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("%T is not a *TamperError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, tc.file+":") {
				t.Errorf("error\n  %s\nwant it to name the file and contain\n  %s", msg, tc.want)
			}
			if strings.Contains(msg, canary) || strings.Contains(msg, "beta") || strings.Contains(msg, "gamma") {
				t.Errorf("error shows a value: %s", msg)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	valid := build(t, "staging", map[string]string{"A": "1", "B": "2"}, alice)
	at := func(prefix string, col int) string {
		return fmt.Sprintf("%s:%d:%d: ", testPath, lineNo(valid, prefix), col)
	}
	encA := strings.TrimSpace(strings.TrimPrefix(lineOf(valid, "A: "), "A: "))
	for _, tc := range []struct {
		name string
		file string
		data []byte
		want string
	}{
		{"empty", testPath, nil, testPath + ":1:1: empty secrets file"},
		{"no sops block", testPath, []byte("A: " + encA + "\n"), testPath + ":1:1: no sops: block: the file is truncated"},
		{"sops not a mapping", testPath, []byte("sops: 1\n"), testPath + ":1:7: sops: expected a mapping"},
		{"bad version", testPath, replaceLine(t, valid, "    version:", "    version: 3.13\n"), at("    version:", 14) + "sops.version: expected the SOPS version"},
		{"no version", testPath, replaceLine(t, valid, "    version:", ""), "sops.version is missing"},
		{"plaintext value", testPath, replaceLine(t, valid, "A: ", "A: "+canary+"\n"),
			at("A: ", 4) + "A: the value is not sealed (expected ENC[AES256_GCM,…])"},
		{"plaintext number", testPath, replaceLine(t, valid, "A: ", "A: 12345678\n"), at("A: ", 4) + "A: the value is not sealed"},
		{"null value", testPath, replaceLine(t, valid, "A: ", "A:\n"), "A: the value is null"},
		{"malformed ENC: bad iv", testPath, replaceLine(t, valid, "A: ", "A: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n"),
			at("A: ", 4) + "A: malformed ENC[AES256_GCM,data:…,iv:…,tag:…,type:str] value: iv is not 12 or 32 bytes"},
		{"malformed ENC: cut short", testPath, replaceLine(t, valid, "A: ", "A: "+encA[:40]+"\n"), at("A: ", 4) + "A: malformed ENC"},
		{"malformed ENC: other cipher", testPath, replaceLine(t, valid, "A: ", "A: ENC[AES128_GCM,data:,iv:AAAAAAAAAAAAAAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n"),
			"expected AES256_GCM and the four fields"},
		{"malformed ENC: type", testPath, replaceLine(t, valid, "A: ", "A: ENC[AES256_GCM,data:,iv:AAAAAAAAAAAAAAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:list]\n"),
			"type is not one of str, int, float, bool, bytes, time"},
		{"malformed mac", testPath, replaceLine(t, valid, "    mac: ", "    mac: ENC[\n"), at("    mac:", 10) + "sops.mac: malformed ENC"},
		{"mac removed", testPath, replaceLine(t, valid, "    mac: ", ""), "sops.mac is missing"},
		{"invalid name", testPath, replaceLine(t, valid, "A: ", "9A: "+encA+"\n"), `"9A" is not a valid secret name`},
		{"reserved name", testPath, replaceLine(t, valid, "A: ", "envplane: "+encA+"\n"), "the file has both a sops: block and envplane's old envplane: block"},
		{"name defined twice", testPath, replaceLine(t, valid, "B: ", "A: "+encA+"\n"), `key "A" is defined twice`},
		{"unknown metadata key", testPath, replaceLine(t, valid, "    version: ", "    version: 3.13.3\n    zzz: x\n"), "sops.zzz: unknown key"},
		{"kms key", testPath, replaceLine(t, valid, "    version: ", "    version: 3.13.3\n    kms: []\n"), "sops.kms: envplane opens SOPS files whose data key is wrapped for age recipients"},
		{"no recipients", testPath, []byte(strings.Replace(string(valid), "    age:\n", "    age: []\n    x:\n", 1)), "sops.age: expected a list"},
		{"recipient twice", testPath, []byte(strings.Replace(string(valid), "    lastmodified:", recipientBlock(valid, alice)+"    lastmodified:", 1)),
			"sops.age: " + alice + " is listed twice"},
		{"bad recipient", testPath, replaceLine(t, valid, "          recipient:", "          recipient: age1xyz\n"), at("          recipient:", 22) + `sops.age: "age1xyz" is not a valid age recipient`},
		{"identity where a recipient belongs", testPath, replaceLine(t, valid, "          recipient:", "          recipient: "+aliceKey+"\n"), `"AGE-SECRET-KEY-…" is not an age recipient`},
		{"enc cut short", testPath, replaceLine(t, valid, "            -----END", ""), "sops.age: the enc of " + alice + " is not an armored age file"},
		{"bad lastmodified", testPath, replaceLine(t, valid, "    lastmodified:", "    lastmodified: yesterday\n"), at("    lastmodified:", 19) + "sops.lastmodified: expected an RFC 3339 time"},
		{"two selectors", testPath, replaceLine(t, valid, "    version: ", "    version: 3.13.3\n    encrypted_regex: ^a$\n"), "sops: more than one of"},
		{"yaml syntax", testPath, []byte("A: [\n"), testPath + ":1:1: invalid YAML: did not find expected node content"},
		{"a list", testPath, []byte("- a\n"), testPath + ":1:1: expected a mapping at the top of the file, found array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file, tc.data)
			if err == nil {
				t.Fatalf("Parse accepted:\n%s\nnames %v", tc.data, f.Names())
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) {
				t.Errorf("error\n  %s\nwant it to contain\n  %s", msg, tc.want)
			}
			if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "AGE-SECRET-KEY-1") {
				t.Errorf("error shows secret material: %s", err)
			}
		})
	}
}

// TestTruncated cuts a valid file at every byte: each cut that loses more
// than the final line break is an error, never a file that parses.
func TestTruncated(t *testing.T) {
	valid := build(t, "staging", map[string]string{"A": "1", "B": "2"}, alice, bob)
	for n := range len(valid) - 1 {
		if f, err := Parse(testPath, valid[:n]); err == nil {
			t.Fatalf("the first %d of %d bytes parse (names %v):\n%s", n, len(valid), f.Names(), valid[:n])
		}
	}
	if _, err := Parse(testPath, valid[:len(valid)-1]); err != nil {
		t.Errorf("without the final line break: %v", err)
	}
}

func TestWrongIdentity(t *testing.T) {
	data := build(t, "production", map[string]string{"DB": canary}, alice, carol)
	f, err := Parse("secrets/production.enc.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ids  []age.Identity
		want string
	}{
		{"other identity", identity(t, bobKey),
			`secrets/production.enc.yaml: none of your age identities opens the secrets of environment "production"; it opens with the identity of any of: ` + carol + ", " + alice},
		{"no identity", nil,
			`secrets/production.enc.yaml: no age identity to open the secrets of environment "production" (set ENVPLANE_AGE_KEY or ENVPLANE_AGE_KEY_FILE, or put the key in the envplane config directory's keys.txt); it opens with the identity of any of: ` + carol + ", " + alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Open(tc.ids)
			var ne *NoIdentityError
			if !errors.As(err, &ne) {
				t.Fatalf("error %v (%T), want a *NoIdentityError", err, err)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if errors.Is(err, ErrTampered) {
				t.Error("a missing identity is not tampering")
			}
		})
	}
	// With several identities, the matching one opens it, whatever its place.
	ids := append(identity(t, bobKey), identity(t, carolKey)...)
	o, err := f.Open(ids)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := o.Get("DB"); v != canary {
		t.Error("wrong value")
	}
}

func TestDamagedWrappedKey(t *testing.T) {
	data := build(t, "staging", map[string]string{"A": "1"}, alice)
	// A well-formed age file for alice that holds 31 bytes instead of a key.
	r, _ := age.ParseX25519Recipient(alice)
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, _ := age.Encrypt(aw, r)
	w.Write(make([]byte, 31))
	w.Close()
	aw.Close()
	lines := strings.SplitAfter(string(data), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		if strings.HasPrefix(lines[i], "        - enc: |") {
			for l := range strings.SplitAfterSeq(buf.String(), "\n") {
				if l != "" {
					out = append(out, "            "+l)
				}
			}
			for !strings.HasPrefix(lines[i], "            -----END") {
				i++
			}
		}
	}
	f, err := Parse(testPath, []byte(strings.Join(out, "")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Open(identity(t, aliceKey))
	want := testPath + ":5:16: authentication failed: the wrapped data key of " + alice + " is damaged"
	if err == nil || err.Error() != want || !errors.Is(err, ErrTampered) {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestRotateAfterRemovingRecipient(t *testing.T) {
	values := map[string]string{"A": "1", "B": canary}
	data := build(t, "staging", values, alice, bob)
	o := open(t, testPath, data, aliceKey)

	// Removing bob keeps the data key: his old copy still opens the file.
	if err := o.SetRecipients([]string{alice}); err != nil {
		t.Fatal(err)
	}
	removed, _ := o.Marshal()
	if lineOf(removed, "          recipient: "+bob) != "" {
		t.Fatal("bob is still listed")
	}
	if lineOf(removed, "A: ") != lineOf(data, "A: ") {
		t.Error("removing a recipient resealed a value")
	}

	if err := o.Rotate([]string{alice, carol}); err != nil {
		t.Fatal(err)
	}
	rotated, _ := o.Marshal()
	checkCanonical(t, testPath, rotated)
	for _, n := range []string{"A: ", "B: ", "    mac: "} {
		if lineOf(rotated, n) == lineOf(data, n) {
			t.Errorf("%q kept its sealed text across a rotation", n)
		}
	}
	f, err := Parse(testPath, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(identity(t, bobKey)); !errors.As(err, new(*NoIdentityError)) {
		t.Errorf("bob opens the rotated file: %v", err)
	}
	// Nor does bob's old wrapped key, spliced back in, open the new values.
	spliced := strings.Replace(string(rotated), "    lastmodified: ", recipientBlock(data, bob)+"    lastmodified: ", 1)
	fs, err := Parse(testPath, []byte(spliced))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Open(identity(t, bobKey)); !errors.Is(err, ErrTampered) {
		t.Errorf("bob with his old wrapped key: %v", err)
	}
	for _, key := range []string{aliceKey, carolKey} {
		o2, err := f.Open(identity(t, key))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(values, o2.Values()); diff != "" {
			t.Errorf("values (-want +got):\n%s", diff)
		}
	}
	if err := o.Rotate(nil); err == nil {
		t.Error("Rotate to no recipients succeeded")
	}
}

func TestSetValidation(t *testing.T) {
	o, err := New("staging", []string{alice})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "envplane", "9X", ".x", "-x", "a b", "a:b", "ä", "a\n"} {
		if err := o.Set(name, "v"); err == nil {
			t.Errorf("Set(%q) succeeded", name)
		}
	}
	// Invalid UTF-8 is refused, never repaired, and the value never shows.
	for _, tt := range []struct {
		value string
		at    int
	}{{"\xff" + canary, 0}, {canary + "caf\xe9", len(canary) + 3}, {"é" + canary + "\xed\xa0\x80", 2 + len(canary)}} {
		err := o.Set("X", tt.value)
		want := fmt.Sprintf("secret X: the value is not valid UTF-8 (byte %d); secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first", tt.at)
		if err == nil || err.Error() != want || !errs.Is(err, errs.Invalid) {
			t.Errorf("Set(invalid UTF-8) = %v, want %s", err, want)
		}
		if _, ok := o.Get("X"); ok {
			t.Error("an invalid value was stored")
		}
	}
	if o.Delete("X") {
		t.Error("Delete of a missing name reported true")
	}
	for _, tc := range []struct {
		env        string
		recipients []string
	}{
		{"Staging", []string{alice}},
		{"staging", nil},
		{"staging", []string{"age1nope"}},
		{"staging", []string{aliceKey}},
	} {
		if _, err := New(tc.env, tc.recipients); err == nil {
			t.Errorf("New(%q, %q) succeeded", tc.env, tc.recipients)
		} else if strings.Contains(err.Error(), "AGE-SECRET-KEY-1") {
			t.Errorf("error shows an identity: %v", err)
		}
	}
}

func TestGenerateIdentity(t *testing.T) {
	text, recipient, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "# public key: "+recipient+"\n") || !strings.HasPrefix(text, "# created: ") {
		t.Errorf("identity text:\n%s", text)
	}
	ids, err := ParseIdentities("generated", text)
	if err != nil || len(ids) != 1 || recipientOf(ids[0]) != recipient {
		t.Fatalf("ParseIdentities: %v %v", ids, err)
	}
	// age's own parser reads it too.
	if _, err := age.ParseIdentities(strings.NewReader(text)); err != nil {
		t.Error(err)
	}
	data := build(t, "development", map[string]string{"A": "1"}, recipient)
	f, _ := Parse("development.enc.yaml", data)
	if _, err := f.Open(ids); err != nil {
		t.Error(err)
	}
}

// TestLastModified checks lastmodified moves only when something changed,
// and that SOPS's MAC authenticates it.
func TestLastModified(t *testing.T) {
	data := build(t, "staging", map[string]string{"A": "1"}, alice)
	o := open(t, testPath, data, aliceKey)
	same, _ := o.Marshal()
	if !bytes.Equal(same, data) {
		t.Error("an unchanged file marshals differently")
	}
	old := lineOf(data, "    lastmodified:")
	time.Sleep(1100 * time.Millisecond)
	o.Set("A", "2")
	changed, _ := o.Marshal()
	if lineOf(changed, "    lastmodified:") == old {
		t.Error("lastmodified did not move")
	}
	ts := strings.Trim(strings.TrimSpace(strings.TrimPrefix(lineOf(changed, "    lastmodified:"), "    lastmodified:")), `"`)
	when, err := time.Parse(time.RFC3339, ts)
	if err != nil || time.Since(when) > time.Minute {
		t.Errorf("changed file's lastmodified is %q", ts)
	}
}

// TestOpenTwice checks that every Open of a File has its own document: the
// first takes the one Parse built, later ones (concurrent ones too) build
// theirs, and a change to one shows in no other.
func TestOpenTwice(t *testing.T) {
	data := build(t, "production", bigValues(20), alice, bob)
	f, err := Parse("secrets/production.enc.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Bound() {
		t.Fatal("not bound")
	}
	names := f.Names()
	opened := make([]*Opened, 4)
	var wg sync.WaitGroup
	for i := range opened {
		wg.Go(func() {
			o, err := f.Open(identity(t, aliceKey))
			if err != nil {
				t.Error(err)
			}
			opened[i] = o
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := opened[0].Set("SERVICE_003_API_TOKEN", "changed"); err != nil {
		t.Fatal(err)
	}
	opened[1].Delete("SERVICE_004_API_TOKEN")
	if err := opened[2].Set("NEW", "x"); err != nil {
		t.Fatal(err)
	}
	for i, o := range opened {
		out, err := o.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		maps.Copy(want, bigValues(20))
		switch i {
		case 0:
			want["SERVICE_003_API_TOKEN"] = "changed"
		case 1:
			delete(want, "SERVICE_004_API_TOKEN")
		case 2:
			want["NEW"] = "x"
		case 3:
			if !bytes.Equal(out, data) {
				t.Errorf("open %d: unchanged file written differently", i)
			}
		}
		if got := open(t, "secrets/production.enc.yaml", out, bobKey).Values(); !maps.Equal(got, want) {
			t.Errorf("open %d: values %v, want %v", i, got, want)
		}
	}
	if o, err := f.Open(identity(t, bobKey)); err != nil || !maps.Equal(o.Values(), bigValues(20)) {
		t.Fatalf("a fifth Open: %v", err)
	}
	if !slices.Equal(f.Names(), names) || !f.Bound() {
		t.Fatal("the File changed")
	}
}
