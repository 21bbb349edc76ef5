package secrets

import (
	"testing"

	"github.com/envplane/envplane/internal/cputime"
)

// BenchmarkOpen500 is parse, unwrap, decrypt and MAC check of a 500-secret
// file with two recipients.
func BenchmarkOpen500(b *testing.B) {
	data := build(b, "production", bigValues(500), alice, bob)
	ids := identity(b, bobKey)
	b.SetBytes(int64(len(data)))
	cpu := cputime.Start()
	for b.Loop() {
		f, err := Parse("secrets/production.enc.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Open(ids); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Report(b)
}

// BenchmarkGetOne is the in-process part of `secrets get`: identities from
// ENVPLANE_AGE_KEY, then one value out of a 500-secret file (which still
// verifies every value and the MAC).
func BenchmarkGetOne(b *testing.B) {
	data := build(b, "production", bigValues(500), alice, bob)
	getenv := func(k string) string {
		if k == EnvKey {
			return "# ci\n" + bobKey + "\n"
		}
		return ""
	}
	for b.Loop() {
		ids, _, err := LoadIdentities(getenv)
		if err != nil {
			b.Fatal(err)
		}
		f, err := Parse("secrets/production.enc.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		o, err := f.Open(ids)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := o.Get("SERVICE_250_API_TOKEN"); !ok {
			b.Fatal("missing")
		}
	}
}

// BenchmarkParse500 parses a 500-secret file as Marshal writes it.
func BenchmarkParse500(b *testing.B) {
	data := build(b, "production", bigValues(500), alice, bob)
	for b.Loop() {
		if _, err := Parse("secrets/production.enc.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParse500YAML is the same file hand-edited, so that it takes the
// general YAML path the canonical parser saves.
func BenchmarkParse500YAML(b *testing.B) {
	data := build(b, "production", bigValues(500), alice, bob)
	data = append([]byte("# hand-edited\n\n"), data...)
	data = append(data[:len(data)-1], " \n"...) // a trailing space: not canonical
	if _, ok := parseCanonical("x", data); ok {
		b.Fatal("canonical")
	}
	for b.Loop() {
		if _, err := Parse("secrets/production.enc.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshal500 rewrites a 500-secret file after changing one value.
func BenchmarkMarshal500(b *testing.B) {
	data := build(b, "production", bigValues(500), alice, bob)
	o := open(b, "secrets/production.enc.yaml", data, aliceKey)
	for i := 0; b.Loop(); i++ {
		o.Set("SERVICE_007_API_TOKEN", string(rune('a'+i%26)))
		if _, err := o.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
