// Package diag carries positioned problems (file:line:col plus message) so that
// every layer of envplane can report all problems at once instead of stopping at
// the first one.
package diag

import (
	"sort"
	"strconv"
	"strings"
)

// Pos is a place in a workspace file. Line and Column are 1-based; zero means
// unknown, and String leaves unknown parts out.
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Column))
		}
	}
	return b.String()
}

// IsZero reports whether p names no place at all.
func (p Pos) IsZero() bool { return p.File == "" && p.Line == 0 }

// Diagnostic is one problem at one place.
type Diagnostic struct {
	Pos     Pos
	Message string
}

func (d Diagnostic) Error() string {
	if d.Pos.IsZero() {
		return d.Message
	}
	return d.Pos.String() + ": " + d.Message
}

// Errorf builds a Diagnostic at pos.
func Errorf(pos Pos, format string, args ...any) Diagnostic {
	return Diagnostic{Pos: pos, Message: sprintf(format, args...)}
}

// List is a set of problems reported together. A non-empty List is an error
// whose text has one problem a line.
type List []Diagnostic

func (l List) Error() string {
	lines := make([]string, len(l))
	for i, d := range l {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns l as an error, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Sort orders the list by file, line and column, keeping the order of
// problems at the same place, and drops exact duplicates.
func (l List) Sort() List {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := l[:0]
	for i, d := range l {
		if i > 0 && d == l[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}
