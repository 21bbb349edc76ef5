// Package diag carries positioned problems (file:line:col plus message) so that
// every layer of envplane can report all problems at once instead of stopping at
// the first one.
package diag

import (
	"errors"
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

// Before orders places by file, line and column.
func (p Pos) Before(o Pos) bool {
	if p.File != o.File {
		return p.File < o.File
	}
	if p.Line != o.Line {
		return p.Line < o.Line
	}
	return p.Column < o.Column
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
// whose text has one problem a line, at most MaxReported of them.
type List []Diagnostic

// MaxReported is how many problems a report shows before summing up the
// rest: one bad line repeated 200,000 times must not print megabytes.
const MaxReported = 100

func (l List) Error() string {
	c := l.Capped(MaxReported)
	lines := make([]string, len(c))
	for i, d := range c {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// Capped returns the first max problems of l and, when there are more, one
// more Diagnostic without a position saying how many were left out; l itself
// is unchanged.
func (l List) Capped(max int) List {
	if max < 0 || len(l) <= max {
		return l
	}
	out := make(List, max+1)
	copy(out, l[:max])
	out[max] = More(len(l) - max)
	return out
}

// More is the line that stands for n problems left out of a report.
func More(n int) Diagnostic {
	if n == 1 {
		return Diagnostic{Message: "… and 1 more problem"}
	}
	return Diagnostic{Message: "… and " + strconv.Itoa(n) + " more problems"}
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
	sort.SliceStable(l, func(i, j int) bool { return l[i].Pos.Before(l[j].Pos) })
	out := l[:0]
	for i, d := range l {
		if i > 0 && d == l[i-1] {
			continue
		}
		out = append(out, d)
	}
	return out
}

// Of returns err's diagnostics: a List as it is, an error that lists its
// own (Diagnostics() List) through them, anything else as one diagnostic.
func Of(err error) List {
	if err == nil {
		return nil
	}
	var l List
	if errors.As(err, &l) {
		return l
	}
	var d interface{ Diagnostics() List }
	if errors.As(err, &d) {
		return d.Diagnostics()
	}
	return List{{Message: err.Error()}}
}
