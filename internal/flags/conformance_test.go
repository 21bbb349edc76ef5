package flags

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// conformanceDir is flagd's evaluator suite, read where the project keeps
// it (its license is not stated, so it is not copied into the repo).
func conformanceDir(t *testing.T) string {
	dir := os.Getenv("ENVPLANE_FLAGD_CONFORMANCE")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "conformance", "flagd-evaluator")
	}
	if _, err := os.Stat(filepath.Join(dir, "flags", "testkit-flags.json")); err != nil {
		t.Skipf("flagd conformance suite not found at %s (set ENVPLANE_FLAGD_CONFORMANCE): %v", dir, err)
	}
	return dir
}

var (
	reFlag     = regexp.MustCompile(`^an? (\w+)-flag with key "(.*)" and a fallback value "(.*)"$`)
	reTKey     = regexp.MustCompile(`^a context containing a targeting key with value "(.*)"$`)
	reKey      = regexp.MustCompile(`^a context containing a key "(.*)", with type "(\w+)" and with value "(.*)"$`)
	reNested   = regexp.MustCompile(`^a context containing a nested property with outer key "(.*)" and inner key "(.*)", with value "(.*)"$`)
	reValue    = regexp.MustCompile(`^the resolved details value should be "(.*)"$`)
	reReason   = regexp.MustCompile(`^the reason should be "(.*)"$`)
	reCode     = regexp.MustCompile(`^the error-code should be "(.*)"$`)
	typeByName = map[string]Type{"Boolean": Boolean, "String": String, "Integer": Integer, "Float": Float, "Object": Object}
)

func TestFlagdConformance(t *testing.T) {
	dir := conformanceDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "flags", "testkit-flags.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc := Parse(File{Name: "testkit-flags.json", Data: data})
	set := doc.Set("")
	features, _ := filepath.Glob(filepath.Join(dir, "gherkin", "*.feature"))
	if len(features) == 0 {
		t.Fatalf("no feature files in %s", dir)
	}
	ran := 0
	for _, path := range features {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		scenarios, err := parseFeature(filepath.Base(path), string(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range scenarios {
			if slices.Contains(sc.tags, "@fractional-v1") {
				continue
			}
			ran++
			t.Run(filepath.Base(path)+":"+strconv.Itoa(sc.line)+":"+sc.name, func(t *testing.T) {
				runScenario(t, set, sc)
			})
		}
	}
	if ran < 100 {
		t.Errorf("ran %d scenarios; the suite has more than 100: is the reader skipping some?", ran)
	}
}

func runScenario(t *testing.T, set *Set, sc scenario) {
	var (
		key string
		typ Type
		def any
		ctx = map[string]any{}
		res Result
	)
	for _, st := range sc.steps {
		switch m := match(st.text); {
		case st.text == "an evaluator":
		case m(reFlag) != nil:
			g := m(reFlag)
			key, typ = g[2], typeByName[g[1]]
			def = parseTyped(t, typ, g[3])
		case m(reTKey) != nil:
			ctx["targetingKey"] = m(reTKey)[1]
		case m(reKey) != nil:
			g := m(reKey)
			ctx[g[1]] = parseTyped(t, typeByName[g[2]], g[3])
		case m(reNested) != nil:
			g := m(reNested)
			ctx[g[1]] = map[string]any{g[2]: g[3]}
		case st.text == "the flag was evaluated with details":
			res = set.Evaluate(key, typ, def, ctx)
		case m(reValue) != nil:
			want := parseTyped(t, typ, m(reValue)[1])
			if diff := cmp.Diff(want, res.Value); diff != "" {
				t.Errorf("value (-want +got):\n%s\nresult: %+v", diff, res)
			}
		case m(reReason) != nil:
			if got, want := string(res.Reason), m(reReason)[1]; got != want {
				t.Errorf("reason = %s, want %s (result %+v)", got, want, res)
			}
		case m(reCode) != nil:
			if got, want := string(res.ErrorCode), m(reCode)[1]; got != want {
				t.Errorf("error code = %q, want %s (result %+v)", got, want, res)
			}
		case st.text == "the resolved metadata is empty":
			if len(res.Metadata) != 0 {
				t.Errorf("metadata = %v, want none", res.Metadata)
			}
		case st.text == "the resolved metadata should contain":
			want, got := map[string]any{}, map[string]any{}
			for _, row := range st.table[1:] {
				mt := typeByName[row[1]]
				want[row[0]] = parseTyped(t, mt, row[2])
				v := res.Metadata[row[0]]
				if f, ok := v.(float64); ok && mt == Integer {
					v = int64(f)
				}
				got[row[0]] = v
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		default:
			t.Fatalf("step not understood: %q", st.text)
		}
	}
}

func match(s string) func(*regexp.Regexp) []string {
	return func(re *regexp.Regexp) []string { return re.FindStringSubmatch(s) }
}

func parseTyped(t *testing.T, typ Type, s string) any {
	t.Helper()
	switch typ {
	case Boolean:
		b, err := strconv.ParseBool(s)
		must(t, err)
		return b
	case Integer:
		n, err := strconv.ParseInt(s, 10, 64)
		must(t, err)
		return n
	case Float:
		f, err := strconv.ParseFloat(s, 64)
		must(t, err)
		return f
	case Object:
		var m map[string]any
		must(t, json.Unmarshal([]byte(strings.ReplaceAll(s, `\"`, `"`)), &m))
		return m
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("bad step value: %w", err))
	}
}
