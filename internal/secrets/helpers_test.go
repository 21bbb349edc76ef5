package secrets

import (
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/envplane/envplane/internal/tree"
)

// Test identities, made for these tests only.
const (
	aliceKey = "AGE-SECRET-KEY-1U84QLJKE8LXDXWL5TNEMLYZGZQAVVNHRUC58T6TDG5URZJVVGU8SKVC59L"
	alice    = "age1jgwdqx4qeg6c65fu42rhg5d5gcymmdzzdlrmxqnv9drp5vw9tuzs8xlrew"
	bobKey   = "AGE-SECRET-KEY-1J30CXVPKWZVLJ8QAVHWMH2TLNCPMW4JQ7WFQLQ2PCNDLFJ6H2AQSGHM8Q8"
	bob      = "age19vqala6e8ywzf5zvml48zpt0v9pfy3wv5s82e5fwn867vravnsxs4ughmq"
	carolKey = "AGE-SECRET-KEY-1UUA5SRQME0D0SNJ0WZ6842XD6W8VSRLJ60A5MQLHTC3AR0K7TTWSC6UM5N"
	carol    = "age1ecs6ljvs8pywaahmyfv6qfm4mxwjut4qn3f9yw0e4qa80q97qveq6fvuk6"
)

// canary is a secret value that must never show up in an error.
const canary = "canary-7f3a9c-do-not-print"

func identity(t testing.TB, key string) []age.Identity {
	t.Helper()
	id, err := age.ParseX25519Identity(key)
	if err != nil {
		t.Fatal(err)
	}
	return []age.Identity{id}
}

// build makes a marshalled file for env with values, for recipients.
func build(t testing.TB, env string, values map[string]string, recipients ...string) []byte {
	t.Helper()
	o, err := New(env, recipients)
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
	return data
}

// open parses and opens data with key.
func open(t testing.TB, path string, data []byte, key string) *Opened {
	t.Helper()
	f, err := Parse(path, data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	o, err := f.Open(identity(t, key))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return o
}

// bigValues is n secrets of realistic size.
func bigValues(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("SERVICE_%03d_API_TOKEN", i)] = fmt.Sprintf("tok_%032x", i*7919)
	}
	return m
}

// checkCanonical fails unless the fast path takes data and builds the tree
// yaml.v3 builds.
func checkCanonical(t testing.TB, path string, data []byte) {
	t.Helper()
	fast, ok := parseCanonicalSOPS(path, data)
	if !ok {
		t.Fatalf("the canonical parser declined Marshal's output:\n%s", data)
	}
	if diff := agree(path, data, fast); diff != "" {
		t.Fatal(diff)
	}
}

// agree compares the fast path's tree with tree.ParseYAML's.
func agree(path string, data []byte, fast *tree.Value) string {
	slow, errs := tree.ParseYAML(path, data)
	if errs != nil {
		return fmt.Sprintf("the canonical parser took input yaml.v3 rejects (%v):\n%q", errs, data)
	}
	if diff := cmp.Diff(slow, fast, cmpopts.EquateEmpty()); diff != "" {
		return fmt.Sprintf("canonical parser and yaml.v3 disagree (-yaml.v3 +canonical):\n%s\ninput:\n%q", diff, data)
	}
	return ""
}

// replaceLine replaces the line of data that starts with prefix.
func replaceLine(t testing.TB, data []byte, prefix, with string) []byte {
	t.Helper()
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = with
			return []byte(strings.Join(lines, ""))
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return nil
}

// lineOf returns the line of data that starts with prefix, or "".
func lineOf(data []byte, prefix string) string {
	for l := range strings.SplitAfterSeq(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// lineNo returns the 1-based number of the line of data that starts with
// prefix, or 0.
func lineNo(data []byte, prefix string) int {
	n := 0
	for l := range strings.SplitAfterSeq(string(data), "\n") {
		n++
		if strings.HasPrefix(l, prefix) {
			return n
		}
	}
	return 0
}

// recipientBlock returns the lines of one recipient's entry, from its
// "- enc: |" line to its recipient line.
func recipientBlock(data []byte, recipient string) string {
	var b strings.Builder
	for l := range strings.SplitAfterSeq(string(data), "\n") {
		if l == "        - enc: |\n" {
			b.Reset()
		}
		b.WriteString(l)
		if l == "          recipient: "+recipient+"\n" {
			return b.String()
		}
	}
	return ""
}
