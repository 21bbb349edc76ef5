package secrets

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// buildLegacy writes a file in envplane's format before SOPS (version 1),
// as the old Marshal did.
func buildLegacy(t testing.TB, env string, values map[string]string, recipients ...string) []byte {
	t.Helper()
	key := make([]byte, keySize)
	rand.Read(key)
	a := newAEAD(key)
	seal12 := func(plain, ad string) string {
		iv := make([]byte, nonceSize)
		rand.Read(iv)
		out := a.legacy.Seal(nil, iv, []byte(plain), []byte(ad))
		n := len(out) - tagSize
		return box{data: out[:n], iv: iv, tag: out[n:], typ: "str"}.String()
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range values {
			if !yield(n) {
				return
			}
		}
	})
	var b strings.Builder
	b.WriteString("# envplane secrets for environment " + env + ". Names are in clear; values are sealed.\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s: %s\n", n, seal12(values[n], valueAD(n)))
	}
	fmt.Fprintf(&b, "envplane:\n  version: 1\n  environment: %s\n  recipients:\n", env)
	rs, parsed, err := parseRecipients(recipients)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		w, err := wrapKey(key, parsed[i])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "    - recipient: %s\n      enc: |\n", r)
		for line := range strings.SplitSeq(strings.TrimSuffix(w, "\n"), "\n") {
			b.WriteString("        " + line + "\n")
		}
	}
	mac := computeMAC(key, env, 1, names, func(n string) string { return values[n] })
	fmt.Fprintf(&b, "  mac: %s\n", seal12(mac, macAD))
	fmt.Fprintf(&b, "  lastmodified: %q\n", time.Now().UTC().Format(time.RFC3339))
	return []byte(b.String())
}

// TestLegacy: files in the old format open, every old tamper case still
// fails, and writing one gives a SOPS file with the same values that keeps
// the sealed text of every non-empty value.
func TestLegacy(t *testing.T) {
	values := map[string]string{"A": "alpha-" + canary, "B": "beta", "EMPTY": "", "M": "x\ny\n"}
	old := buildLegacy(t, "staging", values, alice, bob)
	checkCanonicalLegacy := func(data []byte) {
		if _, ok := parseCanonical(testPath, data); !ok {
			t.Fatalf("the legacy fast path declines:\n%s", data)
		}
	}
	checkCanonicalLegacy(old)
	f, err := Parse(testPath, old)
	if err != nil {
		t.Fatal(err)
	}
	if f.SOPS {
		t.Fatal("an old file reads as SOPS")
	}
	o, err := f.Open(identity(t, aliceKey))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(values, o.Values()); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if !o.Changed() {
		t.Error("an old file does not count as changed: it would never be migrated")
	}
	migrated, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkCanonical(t, testPath, migrated)
	if lineOf(migrated, "A: ") != lineOf(old, "A: ") {
		t.Error("migration sealed a value again")
	}
	if lineOf(migrated, "EMPTY: ") != "EMPTY: \"\"\n" {
		t.Errorf("an empty value is %q, want it as SOPS writes it", lineOf(migrated, "EMPTY: "))
	}
	o2 := open(t, testPath, migrated, bobKey)
	if diff := cmp.Diff(values, o2.Values()); diff != "" {
		t.Errorf("migrated values (-want +got):\n%s", diff)
	}
	if !o2.Bound() || o2.Changed() {
		t.Errorf("migrated file: bound %v changed %v", o2.Bound(), o2.Changed())
	}

	// The old tamper cases.
	encOf := func(name string) string {
		return strings.TrimSuffix(strings.TrimPrefix(lineOf(old, name+": "), name+": "), "\n")
	}
	for name, tc := range map[string]struct {
		file string
		data []byte
	}{
		"swapped":             {testPath, replaceLine(t, replaceLine(t, old, "A: ", "A: "+encOf("B")+"\n"), "B: ", "B: "+encOf("A")+"\n")},
		"removed":             {testPath, replaceLine(t, old, "B: ", "")},
		"other environment":   {"secrets/production.enc.yaml", replaceLine(t, old, "  environment:", "  environment: production\n")},
		"mac from elsewhere":  {testPath, replaceLine(t, old, "  mac: ", lineOf(buildLegacy(t, "staging", values, alice), "  mac: "))},
		"value copied to new": {testPath, replaceLine(t, old, "B: ", lineOf(old, "B: ")+"C: "+encOf("B")+"\n")},
	} {
		f, err := Parse(tc.file, tc.data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = f.Open(identity(t, aliceKey))
		if !errors.Is(err, ErrTampered) {
			t.Errorf("%s: %v, want a tamper error", name, err)
		} else if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: the error shows a value: %v", name, err)
		}
	}
}
