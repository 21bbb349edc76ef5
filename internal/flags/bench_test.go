package flags

import (
	"testing"

	"github.com/envplane/envplane/internal/cputime"
)

const benchFlags = `{
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "rule": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"and": [
        {"==": [{"var": "plan"}, "pro"]},
        {">=": [{"var": "age"}, 18]},
        {"in": [{"var": "country"}, ["FR", "DE", "NL"]]}
      ]}, "on", "off"]}},
    "general": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"and": [
        {"==": [{"var": "plan"}, {"var": "wanted"}]},
        {">=": [{"+": [{"var": "age"}, 1]}, 18]},
        {"in": ["N", {"var": "country"}]}
      ]}, "on", "off"]}},
    "split": {"state": "ENABLED", "variants": {"a": "a", "b": "b", "c": "c"}, "defaultVariant": "a",
      "targeting": {"fractional": [["a", 50], ["b", 30], ["c", 20]]}}
  }
}`

func benchSet(b *testing.B) *Set {
	d := Parse(File{Name: "bench.json", Data: []byte(benchFlags)})
	if p := d.Problems(); len(p) > 0 {
		b.Fatal(p)
	}
	return d.Set("")
}

func BenchmarkEvaluateStatic(b *testing.B) {
	s := benchSet(b)
	ctx := map[string]any{"targetingKey": "user-1"}
	b.ReportAllocs()
	cpu := cputime.Start()
	defer cpu.Report(b)
	for b.Loop() {
		if r := s.Evaluate("static", Boolean, false, ctx); r.Value != true {
			b.Fatal(r)
		}
	}
}

func BenchmarkEvaluateRule3(b *testing.B) {
	s := benchSet(b)
	ctx := map[string]any{"targetingKey": "user-1", "plan": "pro", "age": 30.0, "country": "NL"}
	b.ReportAllocs()
	cpu := cputime.Start()
	defer cpu.Report(b)
	for b.Loop() {
		if r := s.Evaluate("rule", Boolean, false, ctx); r.Value != true {
			b.Fatal(r)
		}
	}
}

// BenchmarkEvaluateGeneral is a 3-condition rule that the specialised
// nodes do not cover: values go through the general operators.
func BenchmarkEvaluateGeneral(b *testing.B) {
	s := benchSet(b)
	ctx := map[string]any{"targetingKey": "user-1", "plan": "pro", "wanted": "pro", "age": 30.0, "country": "NL"}
	b.ReportAllocs()
	cpu := cputime.Start()
	defer cpu.Report(b)
	for b.Loop() {
		if r := s.Evaluate("general", Boolean, false, ctx); r.Value != true {
			b.Fatal(r)
		}
	}
}

func BenchmarkEvaluateFractional(b *testing.B) {
	s := benchSet(b)
	ctx := map[string]any{"targetingKey": "user-1"}
	b.ReportAllocs()
	cpu := cputime.Start()
	defer cpu.Report(b)
	for b.Loop() {
		if r := s.Evaluate("split", String, "", ctx); r.ErrorCode != "" {
			b.Fatal(r)
		}
	}
}

func BenchmarkParseARKA(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		arka(b)
	}
}
