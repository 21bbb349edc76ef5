package tree

import (
	"bytes"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
)

// YAMLSyntaxError positions a yaml.v3 syntax error. yaml.v3 reports only a
// line, and for parser errors ("did not find expected …") that line is the
// 0-based start of the enclosing collection rather than the problem. So the
// problem line is found as the shortest prefix of the input, in whole lines,
// that already fails with the same message: the line where the error becomes
// certain. The column is not known and is reported as 1.
func YAMLSyntaxError(file string, data []byte, err error) diag.Diagnostic {
	line, msg := splitYAMLError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	if line < 1 {
		line = 1
	}
	// Binary search over prefixes [line, len(lines)]: failing with the same
	// message is (nearly always) monotone in the prefix length.
	lo, hi := line, len(lines)
	if lo > hi {
		lo = hi
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if failsWith(bytes.Join(lines[:mid], nil), msg) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo >= 1 && failsWith(bytes.Join(lines[:lo], nil), msg) {
		line = lo
	}
	return diag.Errorf(diag.Pos{File: file, Line: line, Column: 1}, "invalid YAML: %s", msg)
}

// failsWith reports whether the documents of prefix fail with msg.
func failsWith(prefix []byte, msg string) bool {
	dec := yaml.NewDecoder(bytes.NewReader(prefix))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return false
		}
		if err != nil {
			_, m := splitYAMLError(err)
			return m == msg
		}
	}
}

// splitYAMLError takes "yaml: line N: msg" apart.
func splitYAMLError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				return n, rest[i+2:]
			}
		}
	}
	return 0, msg
}
