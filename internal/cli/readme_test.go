package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// offlineCommand is a README command this test runs: the offline ones,
// optionally after variable assignments.
var offlineCommand = regexp.MustCompile(`^(?:[A-Z_]+=\S* )*envplane (?:resolve|explain|diff|lint|run)\b`)

// TestReadmeTour runs the commands of the README's tour (everything before
// "## Secrets") in order, from the repository root, following its `cd`
// steps, and compares what they print, stdout and stderr together, with
// the README's blocks. A line "..." (indented or not) in a block stands
// for any number of lines.
func TestReadmeTour(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, _, _ := strings.Cut(string(b), "\n## Secrets")
	steps := readmeSteps(readme)
	var script strings.Builder
	script.WriteString("cd $REPO\n")
	var want [][]string
	ran := 0
	for _, s := range steps {
		switch {
		case strings.HasPrefix(s.cmd, "cd "):
			fmt.Fprintf(&script, "%s\n", s.cmd)
		case offlineCommand.MatchString(s.cmd):
			ran++
			fmt.Fprintf(&script, "# README line %d\nexec sh -c '{ %s; } 2>&1; exit 0'\nmatchout %d %d\n",
				s.line, strings.ReplaceAll(s.cmd, "'", "''"), len(want), s.line)
			want = append(want, s.out)
		}
	}
	if ran < 10 {
		t.Fatalf("found only %d offline commands in the README's tour:\n%s", ran, script.String())
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "readme.txtar"), []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", root)
			env.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
			return nil
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"matchout": func(ts *testscript.TestScript, neg bool, args []string) {
				i, _ := strconv.Atoi(args[0])
				got := strings.Split(strings.TrimSuffix(ts.ReadFile("stdout"), "\n"), "\n")
				if !matchElided(want[i], got) {
					ts.Fatalf("README line %s: the output is not what the README shows.\nREADME:\n%s\nactual:\n%s",
						args[1], strings.Join(want[i], "\n"), strings.Join(got, "\n"))
				}
			},
		},
	})
}

type readmeStep struct {
	line int
	cmd  string
	out  []string
}

// readmeSteps lists the "$ command" lines of the console blocks with the
// lines they print.
func readmeSteps(readme string) []readmeStep {
	var steps []readmeStep
	in := false
	for i, l := range strings.Split(readme, "\n") {
		switch {
		case l == "```console":
			in = true
		case in && l == "```":
			in = false
		case in && strings.HasPrefix(l, "$ "):
			steps = append(steps, readmeStep{line: i + 1, cmd: strings.TrimPrefix(l, "$ "), out: []string{}})
		case in && len(steps) > 0:
			s := &steps[len(steps)-1]
			s.out = append(s.out, l)
		}
	}
	return steps
}

// matchElided reports whether got is want, where a want line "..." stands
// for any number of lines.
func matchElided(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0 || (len(got) == 1 && got[0] == "")
	}
	if strings.TrimSpace(want[0]) == "..." {
		for k := 0; k <= len(got); k++ {
			if matchElided(want[1:], got[k:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && got[0] == want[0] && matchElided(want[1:], got[1:])
}

func TestMatchElided(t *testing.T) {
	for _, c := range []struct {
		want, got []string
		ok        bool
	}{
		{[]string{}, []string{}, true},
		{[]string{"a"}, []string{"a"}, true},
		{[]string{"a"}, []string{"a", "b"}, false},
		{[]string{"a", "..."}, []string{"a", "b", "c"}, true},
		{[]string{"a", "  ...", "c"}, []string{"a", "b", "x", "c"}, true},
		{[]string{"a", "...", "c"}, []string{"a", "c"}, true},
		{[]string{"a", "...", "c"}, []string{"a", "b"}, false},
		{[]string{"b"}, []string{"a"}, false},
	} {
		if got := matchElided(c.want, c.got); got != c.ok {
			t.Errorf("matchElided(%q, %q) = %v, want %v", c.want, c.got, got, c.ok)
		}
	}
}
