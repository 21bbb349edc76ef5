package tree

import (
	"bytes"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/diag"
)

// Bounds on what one file may cost, checked before or while it is parsed, so
// that hostile input fails with a positioned error instead of exhausting the
// stack, the memory or the CPU.

// MaxDepth is the deepest nesting of maps and arrays a file may have: the
// top-level map is level 1. hujson's parser recurses once per level, so JSON
// is scanned for it before parsing (a file of a million "[" overflowed the
// stack); yaml.v3's scanner stops at 10,000 levels by itself and the
// converter reports anything deeper than MaxDepth.
const MaxDepth = 200

// maxDepth is the name the parsers use.
const maxDepth = MaxDepth

// MaxAliasBytes bounds the bytes of keys and scalars a YAML file builds by
// expanding aliases. Four times the largest file a release may hold (4 MiB):
// a file may reuse its blocks a few times, but not multiply them. Without it
// a 1 MiB string aliased 9 times, those 9 times and so on three levels deep
// passed the value count and resolved to 860 MB.
const MaxAliasBytes = 16 << 20

// maxBadLines is how many lines with invalid UTF-8 a file reports; the last
// of them also counts the rest, so a binary file gives a short report.
const maxBadLines = 10

// utf16BOM reports whether data starts with a UTF-16 (or UTF-32 LE) byte
// order mark.
func utf16BOM(data []byte) bool {
	return len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF)
}

// CheckText reports a file that is not UTF-8 text: a UTF-16 byte order mark,
// or invalid UTF-8 at each bad line's first bad byte. Columns count
// characters when runeCols is set (as yaml.v3 does) and bytes otherwise (as
// the JSON and dotenv parsers do); a leading UTF-8 BOM is not counted. The
// bytes themselves never appear in messages: they may be part of a secret.
func CheckText(file string, data []byte, runeCols bool) diag.List {
	if utf16BOM(data) {
		return diag.List{diag.Errorf(diag.Pos{File: file, Line: 1, Column: 1}, "UTF-16 is not supported; save the file as UTF-8")}
	}
	if utf8.Valid(data) {
		return nil
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	var errs diag.List
	bad := 0
	for line, start := 1, 0; start <= len(data); line++ {
		end := bytes.IndexByte(data[start:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += start
		}
		if ln := data[start:end]; !utf8.Valid(ln) {
			bad++
			if bad <= maxBadLines {
				col := InvalidUTF8At(ln)
				if runeCols {
					col = utf8.RuneCount(ln[:col])
				}
				errs = append(errs, diag.Errorf(diag.Pos{File: file, Line: line, Column: col + 1}, "invalid UTF-8; save the file as UTF-8 text"))
			}
		}
		start = end + 1
	}
	if bad > maxBadLines {
		errs[maxBadLines-1].Message = "invalid UTF-8 here and on " + itoa(bad-maxBadLines) + " more lines; save the file as UTF-8 text"
	}
	return errs
}

var utf8BOM = []byte("\uFEFF")

// InvalidUTF8At is the offset of the first byte of b that does not start a
// valid UTF-8 sequence, or -1 when b is valid UTF-8: where an error about
// text envplane will not repair points.
func InvalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// jsonTooDeep returns the offset of the "[" or "{" that opens level
// MaxDepth+1, skipping strings and comments. It is a byte scan with no
// recursion, so it is safe on any input; hujson reports syntax errors later.
func jsonTooDeep(data []byte) (int, bool) {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"' && data[i] != '\n'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '/':
			switch {
			case i+1 < len(data) && data[i+1] == '/':
				k := bytes.IndexByte(data[i:], '\n')
				if k < 0 {
					return 0, false
				}
				i += k
			case i+1 < len(data) && data[i+1] == '*':
				k := bytes.Index(data[i+2:], []byte("*/"))
				if k < 0 {
					return 0, false
				}
				i += k + 3
			}
		case '[', '{':
			if depth++; depth > maxDepth {
				return i, true
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return 0, false
}

// yamlTooDeep guesses where flow collections ([ {) in YAML first nest deeper
// than MaxDepth, skipping quoted scalars and comments, and returns the line
// and character column. It only places the error once yaml.v3 has refused
// the input as too deep, so a guess is good enough: ok is false for nesting
// it cannot see (block collections).
func yamlTooDeep(data []byte) (line, col int, ok bool) {
	line = 1
	// A block mapping at the top is level 1, a flow collection at the top
	// counts itself.
	depth, top := 0, true
	var quote byte
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '\n' {
			line, col = line+1, 0
			continue
		}
		if c&0xC0 != 0x80 { // not a UTF-8 continuation byte
			col++
		}
		if top && c != ' ' && c != '\t' && c != '\r' && c != '#' {
			top = false
			if c != '[' && c != '{' {
				depth = 1
			}
		}
		var prev byte = ' '
		if i > 0 {
			prev = data[i-1]
		}
		switch {
		case quote != 0:
			switch {
			case c == '\\' && quote == '"' && i+1 < len(data) && data[i+1] != '\n':
				i++
				col++
			case c == quote:
				quote = 0
			}
		case c == '#' && (prev == ' ' || prev == '\t' || prev == '\n'):
			k := bytes.IndexByte(data[i:], '\n')
			if k < 0 {
				return 0, 0, false
			}
			i += k - 1
		case (c == '"' || c == '\'') && bytes.IndexByte([]byte(" \t\n[{,:"), prev) >= 0:
			quote = c
		case c == '[' || c == '{':
			if depth++; depth > maxDepth {
				return line, col, true
			}
		case c == ']' || c == '}':
			depth = max(depth-1, 0)
		}
	}
	return 0, 0, false
}
