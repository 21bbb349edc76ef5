package resolve_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
)

const oneLayer = `
environments: [development]
config:
  layers: [config/app.*]
  env: {prefix: APP}
`

// TestHostileLayers feeds every layer format input built to exhaust the
// stack, the memory or the CPU: each must fail fast with its place.
func TestHostileLayers(t *testing.T) {
	const n = 1_000_000
	bomb := "a: &a \"" + strings.Repeat("x", 1<<20) + "\"\n" +
		"b: &b [" + strings.Repeat("*a, ", 8) + "*a]\n" +
		"c: &c [" + strings.Repeat("*b, ", 8) + "*b]\n" +
		"d: [" + strings.Repeat("*c, ", 8) + "*c]\n"
	tests := []struct {
		name string
		file string
		data string
		want []string
	}{
		{"json nesting", "config/app.json", strings.Repeat("[", n),
			[]string{"parse-error: config/app.json:1:201: nesting deeper than 200 levels"}},
		{"jsonc nesting after a comment", "config/app.json", "// [[[\n{\"a\": " + strings.Repeat("{\"b\": ", n),
			[]string{"parse-error: config/app.json:2:1201: nesting deeper than 200 levels"}},
		{"yaml flow nesting", "config/app.yaml", "a: " + strings.Repeat("[", n),
			[]string{"parse-error: config/app.yaml:1:203: nesting deeper than 200 levels"}},
		{"yaml block nesting", "config/app.yaml", "a:\n" + strings.Repeat("- ", n) + "x\n",
			[]string{"parse-error: config/app.yaml:2:1: nesting deeper than 200 levels"}},
		{"dotenv brackets", "config/app.env", "A=" + strings.Repeat("[", n) + "\n", nil},
		{"dotenv references", "config/app.env", "A=" + strings.Repeat("${", n) + "\n",
			[]string{`parse-error: config/app.env:1:5: a: bad reference: invalid variable name ""`}},
		{"yaml alias bytes", "config/app.yaml", bomb,
			[]string{"parse-error: config/app.yaml:3:8: aliases expand to more than 16 MiB of keys and values"}},
		{"json invalid UTF-8", "config/app.json", "{\"a\": \"\xff\"}",
			[]string{"parse-error: config/app.json:1:8: invalid UTF-8; save the file as UTF-8 text"}},
		{"dotenv invalid UTF-8", "config/app.env", "A=ok\nB=\xe9t\xe9\n",
			[]string{"parse-error: config/app.env:2:3: invalid UTF-8; save the file as UTF-8 text"}},
		{"yaml UTF-16", "config/app.yaml", "\xff\xfea\x00:\x00",
			[]string{"parse-error: config/app.yaml:1:1: UTF-16 is not supported; save the file as UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := fixture{files: map[string]string{"envplane.yaml": oneLayer, tt.file: tt.data}}.resolve(t)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if diff := cmp.Diff(tt.want, messages(res)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTreeSizeBound(t *testing.T) {
	defer resolve.SetMaxTreeBytes(200)()
	tests := []struct {
		name string
		fx   fixture
		want []string
	}{
		{"under the bound", fixture{files: map[string]string{"envplane.yaml": oneLayer,
			"config/app.yaml": "a: " + strings.Repeat("x", 150) + "\n"}}, nil},
		{"files", fixture{files: map[string]string{"envplane.yaml": oneLayer,
			"config/app.yaml": "a: " + strings.Repeat("x", 150) + "\nb:\n  c: [1, 2]\n  d: " + strings.Repeat("y", 50) + "\n"}},
			[]string{"size-limit: config/app.yaml:4:6: b.d: the resolved config is larger than 0 MiB here (keys and values); split it or move large values out"}},
		{"references to a large secret", fixture{
			files:   map[string]string{"envplane.yaml": oneLayer, "config/app.yaml": "a: ok\nb: ${S}${S}${S}${S}\n"},
			secrets: map[string]domain.Secret{"S": {Value: strings.Repeat("s", 60)}}},
			[]string{"size-limit: config/app.yaml:2:4: b: the resolved config is larger than 0 MiB here (keys and values); split it or move large values out"}},
		{"a large variable", fixture{
			files: map[string]string{"envplane.yaml": oneLayer, "config/app.yaml": "a: ok\nb: x\n"},
			vars:  map[string]string{"APP_B": strings.Repeat("v", 300)}},
			[]string{"size-limit: env:APP_B: b: the resolved config is larger than 0 MiB here (keys and values); split it or move large values out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.fx.resolve(t)
			if diff := cmp.Diff(tt.want, messages(res)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if (res.Tree == nil) != (tt.want != nil) {
				t.Errorf("tree %v with problems %v", res.Tree != nil, tt.want)
			}
		})
	}
}

// TestLargeIntegers: integers above int64 stay exact through variables and
// references as they do in files.
func TestLargeIntegers(t *testing.T) {
	res := fixture{
		files: map[string]string{"envplane.yaml": oneLayer, "config/app.yaml": "a: 1\nb: 18446744073709551615\nc: 2\nd: ${D}\n"},
		vars:  map[string]string{"APP_A": "18446744073709551615", "APP_B": "7", "APP_C": "18446744073709551616", "D": "18446744073709551614"},
	}.resolve(t)
	got := []any{res.Tree.Get("a").Interface(), res.Tree.Get("b").Interface(), res.Tree.Get("c").Interface(), messages(res)}
	want := []any{uint64(18446744073709551615), int64(7), int64(2),
		[]string{`coercion: environment variable APP_C: c expects an integer (got "18446744073709551616")`}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// d has no type to take: it stays the text it was given.
	if d := res.Tree.Get("d"); d.Kind != tree.String || d.Str != "18446744073709551614" {
		t.Errorf("d = %+v", d)
	}
}
