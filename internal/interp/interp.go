// Package interp parses and expands ${...} references inside config string
// values, so that one value can be built from others, from the environment or
// from secrets.
//
// The syntax follows the shell and docker compose:
//
//	${NAME}            the value of NAME
//	${NAME:-fallback}  fallback when NAME is unset or empty
//	${NAME-fallback}   fallback only when NAME is unset
//	${NAME:?message}   an error when NAME is unset or empty
//	${NAME?message}    an error only when NAME is unset
//	$${                a literal "${"
//
// Fallbacks and messages are templates themselves, so ${A:-${B:-x}} works.
// Messages are reported as written, never expanded: they end up in errors and
// findings, where no variable or secret value may appear.
// Braces inside them must balance. A "$" not followed by "{" is literal.
//
// Names match [A-Za-z_][A-Za-z0-9_.]*. A "-" is never part of a name, because
// ${NAME-fallback} (as in POSIX shells and docker compose) must keep meaning
// "NAME, or fallback when unset".
package interp

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// HasRefs reports cheaply (no allocation) whether s needs Parse at all:
// whether it contains "${" (including the "$${" escape).
func HasRefs(s string) bool { return strings.Contains(s, "${") }

// Op is what a reference does when its name is unset or empty.
type Op uint8

const (
	OpNone          Op = iota // ${NAME}
	OpDefault                 // ${NAME:-fallback}
	OpDefaultUnset            // ${NAME-fallback}
	OpRequired                // ${NAME:?message}
	OpRequiredUnset           // ${NAME?message}
)

// String returns the operator as written in source ("" for OpNone).
func (o Op) String() string {
	switch o {
	case OpDefault:
		return ":-"
	case OpDefaultUnset:
		return "-"
	case OpRequired:
		return ":?"
	case OpRequiredUnset:
		return "?"
	}
	return ""
}

// Ref is one ${...} reference.
type Ref struct {
	Name string
	Op   Op
	// Arg is the fallback for OpDefault*, the message for OpRequired*. It is
	// a Template so a fallback can be expanded (a message never is).
	Arg Template
	// Offset is the byte offset of the "${" in the string given to Parse, for
	// column reporting. It is absolute even for references inside fallbacks.
	Offset int
}

// String reproduces the reference's source text, e.g. "${X:-y}".
func (r *Ref) String() string { return string(appendRef(nil, r)) }

// Part is a piece of a template: exactly one of Literal and Ref is set.
// Literal holds the text after unescaping ("$${" becomes "${").
type Part struct {
	Literal string
	Ref     *Ref
}

// Template is a parsed string value. Parse never produces two adjacent
// literal parts or empty literal parts, and an empty template has nil Parts.
type Template struct {
	Parts []Part
}

// SyntaxError is a malformed reference.
type SyntaxError struct {
	Offset int // byte offset of the offending character, for callers to turn into a column
	Msg    string
}

func (e *SyntaxError) Error() string { return e.Msg }

// Parse parses s. The error, if any, is a *SyntaxError.
func Parse(s string) (Template, error) {
	// Parse runs for every value with references, so size the top-level
	// parts and all references up front: two allocations in the common case.
	// Counting "${" over-estimates (escapes, nesting), which is harmless.
	n := strings.Count(s, "${")
	p := parser{s: s, refs: make([]Ref, n)}
	t, _, err := p.template(0, -1, 2*n+1)
	if err != nil {
		return Template{}, err
	}
	return t, nil
}

// parser holds the string being parsed and preallocated references.
type parser struct {
	s    string
	refs []Ref
}

// newRef returns a zero Ref from the preallocated ones.
func (p *parser) newRef() *Ref {
	if len(p.refs) == 0 {
		return new(Ref)
	}
	r := &p.refs[0]
	p.refs = p.refs[1:]
	return r
}

// template parses p.s from i. At top level (open < 0) it runs to the end
// of s; inside the argument of the reference opened at offset open it stops at
// the "}" closing that reference and returns that brace's offset.
func (p *parser) template(i, open, capacity int) (Template, int, error) {
	s := p.s
	var t Template
	if capacity > 0 {
		t.Parts = make([]Part, 0, capacity)
	}
	var lit string // literal text pending before the current run
	run := i       // start of the current run of verbatim literal text
	depth := 0     // unmatched "{" inside an argument
	flush := func(end int) {
		lit = concat(lit, s[run:end])
		if lit != "" {
			t.Parts = append(t.Parts, Part{Literal: lit})
			lit = ""
		}
	}
	for i < len(s) {
		switch c := s[i]; {
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			flush(i)
			ref, end, err := p.ref(i)
			if err != nil {
				return Template{}, 0, err
			}
			t.Parts = append(t.Parts, Part{Ref: ref})
			i, run = end, end
		case c == '$' && i+2 < len(s) && s[i+1] == '$' && s[i+2] == '{':
			// The escape's "{" still counts as a brace so that
			// ${A:-$${x}} has the fallback "${x}".
			lit = concat(lit, s[run:i])
			lit = concat(lit, s[i+1:i+3])
			i += 3
			run = i
			depth++
		case open < 0:
			// At top level only "$" matters: skip to the next one.
			k := strings.IndexByte(s[i+1:], '$')
			if k < 0 {
				i = len(s)
			} else {
				i += 1 + k
			}
		case c == '{':
			depth++
			i++
		case c == '}':
			if depth == 0 {
				flush(i)
				return t, i, nil
			}
			depth--
			i++
		default:
			i++
		}
	}
	if open >= 0 {
		return Template{}, 0, &SyntaxError{Offset: open, Msg: `unterminated reference: "${" without matching "}"`}
	}
	flush(i)
	if len(t.Parts) == 0 {
		t.Parts = nil // so that empty templates compare equal
	}
	return t, i, nil
}

// concat joins a and b, allocating only when both are non-empty (which
// happens only around "$${" escapes).
func concat(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + b
}

// ref parses the reference whose "${" is at s[i:] and returns it with
// the offset just past its closing "}".
func (p *parser) ref(i int) (*Ref, int, error) {
	s := p.s
	start := i + 2
	n := scanName(s, start)
	name := s[start:n]
	if n == len(s) {
		return nil, 0, &SyntaxError{Offset: i, Msg: `unterminated reference: "${" without matching "}"`}
	}
	if isOpStart(s[n]) {
		if name == "" {
			return nil, 0, &SyntaxError{Offset: n, Msg: `missing variable name after "${"`}
		}
	} else {
		// Something other than an operator follows: the name is bad. Quote
		// the whole would-be name so the message is recognisable.
		end := n
		for end < len(s) && !isOpStart(s[end]) && s[end] != '$' {
			end++
		}
		off := n
		if name == "" {
			off = start
		}
		return nil, 0, &SyntaxError{Offset: off, Msg: "invalid variable name " + strconv.Quote(s[start:end])}
	}

	r := p.newRef()
	r.Name, r.Offset = name, i
	argStart := n + 1
	switch s[n] {
	case '}':
		return r, n + 1, nil
	case '-':
		r.Op = OpDefaultUnset
	case '?':
		r.Op = OpRequiredUnset
	case ':':
		if n+1 == len(s) {
			return nil, 0, &SyntaxError{Offset: i, Msg: `unterminated reference: "${" without matching "}"`}
		}
		switch s[n+1] {
		case '-':
			r.Op = OpDefault
		case '?':
			r.Op = OpRequired
		default:
			_, size := utf8.DecodeRuneInString(s[n+1:])
			return nil, 0, &SyntaxError{Offset: n, Msg: "unknown operator " + strconv.Quote(s[n:n+1+size]) +
				" after " + name + ` (want ":-", "-", ":?" or "?")`}
		}
		argStart = n + 2
	}
	arg, end, err := p.template(argStart, i, 0)
	if err != nil {
		return nil, 0, err
	}
	r.Arg = arg
	return r, end + 1, nil
}

// scanName returns the end of the name starting at s[i:], or i if none does.
func scanName(s string, i int) int {
	if i >= len(s) || !isNameStart(s[i]) {
		return i
	}
	i++
	for i < len(s) {
		c := s[i]
		switch {
		case isNameStart(c), c >= '0' && c <= '9', c == '.':
			i++
		default:
			return i
		}
	}
	return i
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isOpStart(c byte) bool { return c == '}' || c == ':' || c == '-' || c == '?' }

// SingleRef returns the reference when the template is exactly one reference
// and nothing else (e.g. "${PORT}" or "${PORT:-8080}"): such values take the
// type of the target key.
func (t Template) SingleRef() (*Ref, bool) {
	if len(t.Parts) == 1 && t.Parts[0].Ref != nil {
		return t.Parts[0].Ref, true
	}
	return nil, false
}

// Names lists every referenced name once, in order of first appearance,
// including names inside fallbacks and messages (they may be needed, so the
// resolver must order them first).
func (t Template) Names() []string {
	return t.appendNames(nil)
}

func (t Template) appendNames(names []string) []string {
	for _, p := range t.Parts {
		if p.Ref == nil {
			continue
		}
		seen := false
		for _, n := range names {
			if n == p.Ref.Name {
				seen = true
				break
			}
		}
		if !seen {
			names = append(names, p.Ref.Name)
		}
		names = p.Ref.Arg.appendNames(names)
	}
	return names
}

// Problem is a reference that could not be expanded.
type Problem struct {
	Name    string
	Offset  int    // byte offset of the reference's "${" in the parsed string
	Message string // e.g. "DATABASE_HOST is not set", or the :? message
}

// Expand substitutes references using lookup, which reports whether the name
// is set. It never stops at the first problem: it returns every unresolved
// reference (unset with no fallback) and every :? failure. For those the
// expansion keeps the original text of the reference (e.g. "${X}") so callers
// can show it.
//
// Fallbacks are expanded only when used, so problems inside an unused fallback
// are not reported. Messages are expanded for display only: a reference left
// unresolved in a message is shown as written, not reported on its own.
func (t Template) Expand(lookup func(name string) (string, bool)) (string, []Problem) {
	// A lone literal or reference is returned without copying.
	switch {
	case len(t.Parts) == 0:
		return "", nil
	case len(t.Parts) == 1 && t.Parts[0].Ref == nil:
		return t.Parts[0].Literal, nil
	case len(t.Parts) == 1:
		return t.Parts[0].Ref.expand(lookup)
	}
	// The stack buffer keeps the common case to one allocation, the result.
	// Nested templates go through Expand recursively rather than appending
	// to b, so that b does not escape.
	var buf [256]byte
	b := buf[:0]
	var probs []Problem
	for _, p := range t.Parts {
		if p.Ref == nil {
			b = append(b, p.Literal...)
			continue
		}
		v, ps := p.Ref.expand(lookup)
		b = append(b, v...)
		probs = append(probs, ps...)
	}
	return string(b), probs
}

// expand returns the text r stands for.
func (r *Ref) expand(lookup func(string) (string, bool)) (string, []Problem) {
	v, ok := lookup(r.Name)
	if r.Op == OpDefault || r.Op == OpRequired {
		ok = ok && v != ""
	}
	switch {
	case ok:
		return v, nil
	case r.Op == OpDefault || r.Op == OpDefaultUnset:
		return r.Arg.Expand(lookup)
	case r.Op == OpRequired || r.Op == OpRequiredUnset:
		// The message ends up in errors, findings and API answers: it is shown
		// as written, never expanded, so no variable or secret value leaks.
		msg := r.Arg.String()
		if msg == "" {
			msg = r.Name + " is not set"
		}
		return r.String(), []Problem{{Name: r.Name, Offset: r.Offset, Message: msg}}
	}
	return r.String(), []Problem{{Name: r.Name, Offset: r.Offset, Message: r.Name + " is not set"}}
}

// String reproduces the template source text (escapes re-escaped) so
// Parse(t.String()) equals t. For templates from Parse it returns exactly the
// parsed string.
func (t Template) String() string {
	if len(t.Parts) == 1 && t.Parts[0].Ref == nil && !strings.Contains(t.Parts[0].Literal, "${") {
		return t.Parts[0].Literal
	}
	return string(t.appendSource(nil))
}

func (t Template) appendSource(b []byte) []byte {
	for _, p := range t.Parts {
		if p.Ref != nil {
			b = appendRef(b, p.Ref)
			continue
		}
		lit := p.Literal
		for {
			k := strings.Index(lit, "${")
			if k < 0 {
				break
			}
			b = append(b, lit[:k]...)
			b = append(b, "$${"...)
			lit = lit[k+2:]
		}
		b = append(b, lit...)
	}
	return b
}

func appendRef(b []byte, r *Ref) []byte {
	b = append(b, "${"...)
	b = append(b, r.Name...)
	b = append(b, r.Op.String()...)
	b = r.Arg.appendSource(b)
	return append(b, '}')
}

// Masked is the template's source with every literal piece — fallbacks
// and messages included — replaced by mask, references and operators
// kept: what a template of a secret may show ("${DB_PASSWORD:-…}").
func (t Template) Masked(mask string) string { return string(t.appendMasked(nil, mask)) }

func (t Template) appendMasked(b []byte, mask string) []byte {
	for _, p := range t.Parts {
		if p.Ref == nil {
			if p.Literal != "" {
				b = append(b, mask...)
			}
			continue
		}
		b = append(b, "${"...)
		b = append(b, p.Ref.Name...)
		b = append(b, p.Ref.Op.String()...)
		b = p.Ref.Arg.appendMasked(b, mask)
		b = append(b, '}')
	}
	return b
}
