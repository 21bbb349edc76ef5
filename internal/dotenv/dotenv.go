// Package dotenv parses .env files the way users of docker compose and
// godotenv expect, keeping positions so that problems in values can be
// reported at their place in the file.
//
// The format:
//
//	# comment
//	NAME=value              # unquoted: trimmed; " #" starts a comment
//	export NAME = 'literal' # single quotes: no escapes, one line
//	NAME="a\tb              # double quotes: \n \r \t \\ \" \$, may span lines
//	c"
//
// Values are not interpolated here: the resolver does that, so a Value is
// the source text of an interpolation template (see package interp). To keep
// the meaning quotes have in docker compose, text that must stay literal is
// escaped for interp: in single-quoted values every "${" becomes "$${", and
// in double-quoted values \$ followed by "{" becomes "$$".
package dotenv

import (
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// Entry is one NAME=VALUE assignment.
type Entry struct {
	Name, Value string
	// NamePos is where the name starts. ValuePos is where the value's text
	// starts, after any opening quote, so that for values without escapes a
	// byte offset into Value on its first line maps to a column.
	NamePos, ValuePos diag.Pos
}

// Parse parses a .env file named file (used in positions). It reports every
// bad line at once and returns the good entries. Duplicate names are not an
// error: the later assignment wins and the earlier is dropped, so each name
// appears once, at the place of its last assignment.
//
// Columns are 1-based byte offsets within the line; a leading UTF-8 BOM is
// ignored and not counted. A file that is not UTF-8 text gives its encoding
// problems and no entries: a value passed on byte for byte by `run` must be
// the value `resolve` shows.
func Parse(file string, data []byte) ([]Entry, diag.List) {
	if errs := tree.CheckText(file, data, false); errs != nil {
		return nil, errs
	}
	// One copy of the file; names and most values are substrings of it.
	s := strings.TrimPrefix(string(data), "\uFEFF")
	p := parser{file: file, s: s, line: 1}
	// Every entry has an "=", so this bounds the entries: one allocation.
	p.entries = make([]Entry, 0, strings.Count(s, "="))
	for p.i < len(s) {
		p.parseLine()
	}
	if len(p.entries) == 0 {
		return nil, p.errs
	}
	return dedup(p.entries), p.errs
}

type parser struct {
	file      string
	s         string
	i         int // offset of the next byte to parse
	line      int // line of offset i, 1-based
	lineStart int // offset where that line starts
	entries   []Entry
	errs      diag.List
}

// pos returns the position of offset off, which must be on the current line.
func (p *parser) pos(off int) diag.Pos {
	return diag.Pos{File: p.file, Line: p.line, Column: off - p.lineStart + 1}
}

func (p *parser) errorf(off int, format string, args ...any) {
	p.errs = append(p.errs, diag.Errorf(p.pos(off), format, args...))
}

// lineEnd returns the end of the current line's content, before "\n" or
// "\r\n".
func (p *parser) lineEnd() int {
	end := len(p.s)
	if k := strings.IndexByte(p.s[p.lineStart:], '\n'); k >= 0 {
		end = p.lineStart + k
	}
	if end > p.lineStart && p.s[end-1] == '\r' {
		end--
	}
	return end
}

// nextLine moves to the start of the line after the current one.
func (p *parser) nextLine() {
	k := strings.IndexByte(p.s[p.lineStart:], '\n')
	if k < 0 {
		p.i = len(p.s)
		return
	}
	p.i = p.lineStart + k + 1
	p.lineStart = p.i
	p.line++
}

// parseLine parses the line starting at p.i (plus the following lines a
// double-quoted value spans) and leaves p.i at the start of the next line.
func (p *parser) parseLine() {
	defer p.nextLine()
	s := p.s
	end := p.lineEnd()
	i := skipSpace(s, p.i, end)
	if i == end || s[i] == '#' {
		return
	}
	// "export" is a prefix only when a name follows; "export=1" and
	// "export = 1" assign to a variable called export.
	if strings.HasPrefix(s[i:end], "export") && i+6 < end && isSpace(s[i+6]) {
		if j := skipSpace(s, i+6, end); j < end && s[j] != '=' {
			i = j
		}
	}

	nameStart := i
	for i < end && s[i] != '=' && !isSpace(s[i]) {
		i++
	}
	name := s[nameStart:i]
	i = skipSpace(s, i, end)
	if name == "" || i == end || s[i] != '=' {
		p.errorf(i, "expected NAME=VALUE")
		return
	}
	ok := validName(name)
	if !ok {
		p.errorf(nameStart, "invalid variable name %s", strconv.Quote(name))
		// Still parse the value, so that a multi-line value does not turn
		// into errors on the following lines.
	}
	namePos := p.pos(nameStart)
	afterEq := i + 1
	i = skipSpace(s, afterEq, end)

	var value string
	var valuePos diag.Pos
	switch {
	case i < end && s[i] == '\'':
		k := strings.IndexByte(s[i+1:end], '\'')
		if k < 0 {
			p.errorf(i, "unterminated single-quoted value")
			return
		}
		valuePos = p.pos(i + 1)
		// Single quotes mean "literal" in compose, interpolation included.
		value = strings.ReplaceAll(s[i+1:i+1+k], "${", "$${")
		ok = p.checkAfterQuote(i+2+k, end) && ok
	case i < end && s[i] == '"':
		valuePos = p.pos(i + 1)
		var closed int
		value, closed = p.doubleQuoted(i + 1)
		if closed < 0 {
			return
		}
		// The value may have spanned lines: continue on the closing one.
		ok = p.checkAfterQuote(closed+1, p.lineEnd()) && ok
	default:
		valuePos = p.pos(i)
		// Cut the comment before trimming: the blank that starts it may be
		// the one right after "=".
		value = s[afterEq:end]
		if k := inlineComment(value); k >= 0 {
			value = value[:k]
		}
		value = strings.Trim(value, " \t")
	}
	if ok {
		p.entries = append(p.entries, Entry{Name: name, Value: value, NamePos: namePos, ValuePos: valuePos})
	}
}

// checkAfterQuote reports text after a closing quote other than blanks and a
// comment.
func (p *parser) checkAfterQuote(i, end int) bool {
	i = skipSpace(p.s, i, end)
	if i < end && p.s[i] != '#' {
		p.errorf(i, "unexpected text after closing quote")
		return false
	}
	return true
}

// doubleQuoted decodes the double-quoted value whose text starts at offset
// start, following it across lines. It returns the value and the offset of
// the closing quote, or -1 after reporting an unterminated value.
func (p *parser) doubleQuoted(start int) (string, int) {
	s := p.s
	openLine := p.line
	// b stays nil, and the value a substring, unless an escape or a CRLF
	// needs rewriting.
	var b []byte
	run := start
	for i := start; i < len(s); {
		// Jump over ordinary text.
		k := strings.IndexAny(s[i:], "\"\\\n")
		if k < 0 {
			break
		}
		i += k
		switch s[i] {
		case '"':
			if b == nil {
				return s[start:i], i
			}
			return string(append(b, s[run:i]...)), i
		case '\\':
			if i+1 == len(s) {
				i++
				continue
			}
			var repl string
			switch s[i+1] {
			case 'n':
				repl = "\n"
			case 'r':
				repl = "\r"
			case 't':
				repl = "\t"
			case '\\':
				repl = `\`
			case '"':
				repl = `"`
			case '$':
				// Keep an escaped "${" literal through interpolation.
				repl = "$"
				if i+2 < len(s) && s[i+2] == '{' {
					repl = "$$"
				}
			default:
				// Like the shell: other backslashes are kept as they are.
				i++
				continue
			}
			b = append(b, s[run:i]...)
			b = append(b, repl...)
			i += 2
			run = i
		case '\n':
			if i > run && s[i-1] == '\r' {
				b = append(b, s[run:i-1]...)
				b = append(b, '\n')
				run = i + 1
			}
			i++
			p.line++
			p.lineStart = i
		}
	}
	p.errorf(len(s), "unterminated double-quoted value (opened at line %d)", openLine)
	return "", -1
}

// inlineComment returns the offset of a " #" or "\t#" comment in an unquoted
// value, or -1. A "#" with no blank before it is part of the value.
func inlineComment(v string) int {
	for k := 1; k < len(v); k++ {
		if v[k] == '#' && isSpace(v[k-1]) {
			return k - 1
		}
	}
	return -1
}

// dedup drops entries overridden by a later entry with the same name.
func dedup(entries []Entry) []Entry {
	if len(entries) < 2 {
		return entries
	}
	if len(entries) <= 16 {
		// Typical files are small: a quadratic scan beats building a map.
		out := entries[:0]
	next:
		for i, e := range entries {
			for _, later := range entries[i+1:] {
				if later.Name == e.Name {
					continue next
				}
			}
			out = append(out, e)
		}
		return out
	}
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[e.Name] = i
	}
	if len(last) == len(entries) {
		return entries
	}
	out := entries[:0]
	for i, e := range entries {
		if last[e.Name] == i {
			out = append(out, e)
		}
	}
	return out
}

func skipSpace(s string, i, end int) int {
	for i < end && isSpace(s[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// validName reports whether s matches [A-Za-z_][A-Za-z0-9_.-]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Quote writes v as a dotenv value that Parse (and docker compose) read
// back as the same text: bare when it needs no quoting, else double-quoted
// with \ " newline, return and $ escaped. Parse escapes "${" for
// interpolation (see above); a caller wanting v literally undoes that as it
// does for any parsed value.
func Quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\"'\\#$`=<>|&;(){}*?~!") {
		return v
	}
	return `"` + quoteEscapes.Replace(v) + `"`
}

var quoteEscapes = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "$", `\$`)
