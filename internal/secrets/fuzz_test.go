package secrets

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks that Parse never panics, that a parsed file's names are
// valid, unique and sorted, that the canonical fast path only takes input
// yaml.v3 reads to the same tree, and that a file which opens (with the
// seeds' test identity) marshals and opens again to the same values.
func FuzzParse(f *testing.F) {
	valid := build(f, "staging", map[string]string{
		"DATABASE_PASSWORD": "hunter2", "JWT_SECRET": "x\ny", "a.b-c": "", "yes": "1",
	}, alice, bob)
	f.Add("secrets/staging.enc.yaml", valid)
	f.Add("staging.enc.yaml", build(f, "staging", nil, alice))
	f.Add("x.yaml", []byte(strings.Replace(string(valid), "JWT_SECRET: ", "JWT_SECRET: \"", 1)))
	f.Add("x.yaml", []byte(strings.ReplaceAll(string(valid), "\n", "\r\n")))
	f.Add("x.yaml", []byte("envplane:\n  version: 2\n"))
	f.Add("x.yaml", []byte("A: ENC[AES256_GCM,data:,iv:AAAAAAAAAAAAAAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\nenvplane:\n  version: 1\n  environment: x\n  recipients:\n    - recipient: age1\n      enc: |\n        a\n  mac: ENC[]\n  lastmodified: \"1\"\n"))
	f.Add("x.yaml", []byte("envplane:\n  recipients:\n    - recipient: a\n      enc: |\n        x\n         y\n"))
	f.Add("x.yaml", []byte("\"yes\": ENC[x]\nenvplane:\n  version: 1\n"))
	f.Add("x.yaml", []byte(""))
	f.Add("x.yaml", []byte("a: &a [*a]\n"))
	ids := identity(f, aliceKey)

	f.Fuzz(func(t *testing.T, file string, data []byte) {
		if fast, ok := parseCanonical(file, data); ok {
			if diff := agree(file, data, fast); diff != "" {
				t.Fatal(diff)
			}
		}
		if fast, ok := parseCanonicalSOPS(file, data); ok {
			if diff := agree(file, data, fast); diff != "" {
				t.Fatal(diff)
			}
		}
		pf, err := Parse(file, data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		names := pf.Names()
		if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("names not sorted and unique: %q", names)
		}
		for _, n := range names {
			if !validName(n) {
				t.Fatalf("invalid name %q", n)
			}
		}
		o, err := pf.Open(ids)
		if err != nil {
			return
		}
		out, err := o.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// Whatever the input looked like, the output is canonical.
		fast, ok := parseCanonicalSOPS(file, out)
		if o.rules == (rules{unencryptedSuffix: defaultUnencryptedSuffix}) && len(o.leaves()) == len(o.doc) {
			if !ok {
				t.Fatalf("Marshal output is not canonical:\n%s", out)
			}
			if diff := agree(file, out, fast); diff != "" {
				t.Fatal(diff)
			}
		}
		back, err := Parse(file, out)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v", err)
		}
		if !slices.Equal(back.Names(), names) {
			t.Fatalf("names %q came back as %q", names, back.Names())
		}
		o2, err := back.Open(ids)
		if err != nil {
			t.Fatalf("Marshal output does not open: %v", err)
		}
		if diff := cmp.Diff(o.Values(), o2.Values()); diff != "" {
			t.Fatalf("values changed (-before +after):\n%s", diff)
		}
		if slow, err := o2.emitYAML(); err != nil || !bytes.Equal(slow, out) {
			t.Fatalf("the flat writer and yaml.v3 disagree:\n%s\nyaml.v3:\n%s", out, slow)
		}
		if again, _ := o2.Marshal(); !bytes.Equal(again, out) {
			t.Fatal("marshalling an unchanged file changed it")
		}
	})
}

// TestCanonicalAgrees holds inputs on which the canonical parser once
// disagreed with yaml.v3, and others near its edges.
func TestCanonicalAgrees(t *testing.T) {
	for _, in := range []string{
		// A recipient yaml.v3 reads as a number (found by FuzzParse).
		"A: ENC[00]\nenvplane:\n  version: 1\n  environment: a\n  recipients:\n    - recipient: 0\n      enc: |\n        0\n",
		"A: ENC[x]\nenvplane:\n  version: 1\n  environment: a\n  recipients:\n    - recipient: age1x\n      enc: |\n        a\n        b\n  mac: ENC[]\n",
		"# c\n\n\"yes\": ENC[x]\nB: ENC[]\n\nenvplane:\n  lastmodified: \"2026-01-01T00:00:00Z\"\n  version: 12\n\n\n",
		"envplane:\n  environment: true\n",
		"envplane:\n  version: 01\n",
		"A: ENC[a]]\nenvplane:\n  version: 1\n",
	} {
		if fast, ok := parseCanonical("f", []byte(in)); ok {
			if diff := agree("f", []byte(in), fast); diff != "" {
				t.Error(diff)
			}
		}
	}
}
