package tree

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/tailscale/hujson"
	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
)

// Format is a configuration file format.
type Format uint8

const (
	FormatUnknown Format = iota
	FormatYAML
	FormatJSON
	FormatDotenv
)

// FormatOf infers a file's format from its name.
func FormatOf(name string) Format {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return FormatYAML
	case ".json", ".jsonc":
		return FormatJSON
	case ".env":
		return FormatDotenv
	}
	if path.Base(name) == ".env" {
		return FormatDotenv
	}
	return FormatUnknown
}

// ParseYAML parses a YAML document whose top level is a mapping (an empty file
// is an empty mapping). file names the file in positions and provenance.
func ParseYAML(file string, data []byte) (*Value, diag.List) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return &Value{Kind: Map, Src: Source{Name: file, Line: 1, Column: 1}}, nil
		}
		return nil, diag.List{yamlError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, diag.List{diag.Errorf(diag.Pos{File: file, Line: extra.Line, Column: extra.Column},
			"a configuration file holds one YAML document; found a second one")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &Value{Kind: Map, Src: Source{Name: file, Line: 1, Column: 1}}, nil
		}
		root = root.Content[0]
	}
	c := yamlConverter{file: file}
	if n := len(data); n > 0 && data[n-1] != '\n' && data[n-1] != '\r' {
		c.endLine, c.endCol = yamlEnd(data)
	}
	v := c.convert(root, 0)
	if len(c.errs) == 0 && v.Kind != Map {
		if v.Kind == Null {
			v.Kind = Map
		} else {
			c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "expected a mapping at the top of the file, found %s", v.Kind))
		}
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return v, nil
}

// yamlError turns yaml.v3's "yaml: line N: msg" into a positioned diagnostic.
// yaml.v3 does not expose the column of syntax errors, so they point at the
// start of the line.
func yamlError(file string, err error) diag.Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line, msg = n, rest[i+2:]
			}
		}
	}
	if line == 0 {
		line = 1
	}
	return diag.Errorf(diag.Pos{File: file, Line: line, Column: 1}, "invalid YAML: %s", msg)
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

type yamlConverter struct {
	file string
	errs diag.List
	// endLine and endCol are the end of an input whose last line does not end
	// in a line break, where yaml.v3 adds a line of its own; zero otherwise.
	endLine, endCol int
}

func (c *yamlConverter) pos(n *yaml.Node) diag.Pos {
	line, col := c.at(n)
	return diag.Pos{File: c.file, Line: line, Column: col}
}

// at is n's position. yaml.v3 places empty nodes that end the stream (the
// missing value of a final `? key`, the content of a bare `---`) on the line
// it adds after an unterminated last line; those move to the end of the input.
func (c *yamlConverter) at(n *yaml.Node) (line, col int) {
	if c.endLine > 0 && n.Line > c.endLine {
		return c.endLine, c.endCol
	}
	return n.Line, n.Column
}

// yamlEnd returns the last line of data, counting lines as yaml.v3 does (CR
// LF, CR, LF, NEL, LS and PS end a line, UTF-16 is decoded), and the column
// just past its last character.
func yamlEnd(data []byte) (line, col int) {
	s := string(data)
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if data[0] == 0xFF {
				u = append(u, uint16(data[i])|uint16(data[i+1])<<8)
			} else {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			}
		}
		s = string(utf16.Decode(u))
	}
	s = strings.TrimPrefix(s, "\uFEFF")
	line, col = 1, 1
	for _, r := range s {
		switch r {
		case '\n':
			if col == 0 { // the LF of a CR LF
				col = 1
				continue
			}
			line, col = line+1, 1
		case '\r':
			line, col = line+1, 0
		case '\u0085', '\u2028', '\u2029':
			line, col = line+1, 1
		default:
			col = max(col, 1) + 1
		}
	}
	return line, max(col, 1)
}

func (c *yamlConverter) convert(n *yaml.Node, depth int) *Value {
	line, col := c.at(n)
	v := &Value{Src: Source{Name: c.file, Line: line, Column: col}}
	if depth > maxDepth {
		c.errs = append(c.errs, diag.Errorf(c.pos(n), "nesting deeper than %d levels", maxDepth))
		return v
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return v
		}
		a := c.convert(n.Alias, depth+1)
		a.Src = v.Src
		return a
	case yaml.SequenceNode:
		v.Kind = Array
		v.Items = make([]*Value, len(n.Content))
		for i, it := range n.Content {
			v.Items[i] = c.convert(it, depth+1)
		}
	case yaml.MappingNode:
		v.Kind = Map
		v.Fields = make([]Field, 0, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				c.errs = append(c.errs, diag.Errorf(c.pos(k), "mapping keys must be plain strings"))
				continue
			}
			if k.Tag == "!!merge" {
				merges = append(merges, val)
				continue
			}
			if v.Index(k.Value) >= 0 {
				c.errs = append(c.errs, diag.Errorf(c.pos(k), "key %q is defined twice in this mapping", k.Value))
				continue
			}
			v.Fields = append(v.Fields, Field{Key: k.Value, Value: c.convert(val, depth+1)})
		}
		// YAML merge keys (<<: *base) supply keys the mapping does not set itself.
		for _, m := range merges {
			srcs := []*yaml.Node{m}
			if m.Kind == yaml.SequenceNode {
				srcs = m.Content
			}
			for _, s := range srcs {
				mv := c.convert(s, depth+1)
				if mv.Kind != Map {
					c.errs = append(c.errs, diag.Errorf(c.pos(s), "a merge key (<<) needs a mapping or a list of mappings"))
					continue
				}
				for _, f := range mv.Fields {
					if v.Index(f.Key) < 0 {
						v.Fields = append(v.Fields, f)
					}
				}
			}
		}
	case yaml.ScalarNode:
		c.scalar(n, v)
	}
	return v
}

func (c *yamlConverter) scalar(n *yaml.Node, v *Value) {
	switch n.ShortTag() {
	case "!!null":
		v.Kind = Null
	case "!!bool":
		v.Kind = Bool
		v.Bool = strings.EqualFold(n.Value, "true")
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			v.Kind, v.Int = Int, i
			return
		}
		var x any
		if err := n.Decode(&x); err == nil {
			switch t := x.(type) {
			case int:
				v.Kind, v.Int = Int, int64(t)
				return
			case int64:
				v.Kind, v.Int = Int, t
				return
			case uint64:
				v.Kind, v.Float = Float, float64(t)
				return
			case float64:
				v.Kind, v.Float = Float, t
				return
			}
		}
		v.Kind, v.Str = String, n.Value
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			v.Kind, v.Float = Float, f
			return
		}
		switch strings.ToLower(strings.TrimLeft(n.Value, "+")) {
		case ".inf":
			v.Kind, v.Float = Float, math.Inf(1)
		case "-.inf":
			v.Kind, v.Float = Float, math.Inf(-1)
		case ".nan":
			v.Kind, v.Float = Float, math.NaN()
		default:
			var f float64
			if err := n.Decode(&f); err == nil {
				v.Kind, v.Float = Float, f
				return
			}
			v.Kind, v.Str = String, n.Value
		}
	default: // !!str, !!timestamp, !!binary and custom tags keep their text
		v.Kind = String
		v.Str = n.Value
		v.Quoted = n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
	}
}

// ParseJSON parses JSON that may carry // and /* */ comments and trailing
// commas (JWCC), whose top level is an object.
func ParseJSON(file string, data []byte) (*Value, diag.List) {
	lines := newLineIndex(data)
	if len(bytes.TrimSpace(data)) == 0 {
		return &Value{Kind: Map, Src: Source{Name: file, Line: 1, Column: 1}}, nil
	}
	root, err := hujson.Parse(data)
	if err != nil {
		return nil, diag.List{jsonError(file, err)}
	}
	c := jsonConverter{file: file, lines: lines}
	v := c.convert(&root, 0)
	if len(c.errs) == 0 && v.Kind != Map {
		c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "expected an object at the top of the file, found %s", v.Kind))
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return v, nil
}

// jsonError positions a hujson syntax error, reported as "line L, column C: msg".
func jsonError(file string, err error) diag.Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "hujson: ")
	pos := diag.Pos{File: file, Line: 1, Column: 1}
	var l, col int
	if _, scanErr := fmt.Sscanf(msg, "line %d, column %d:", &l, &col); scanErr == nil {
		pos.Line, pos.Column = l, col
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	return diag.Errorf(pos, "invalid JSON: %s", msg)
}

type jsonConverter struct {
	file  string
	lines lineIndex
	errs  diag.List
}

func (c *jsonConverter) convert(h *hujson.Value, depth int) *Value {
	line, col := c.lines.pos(h.StartOffset)
	v := &Value{Src: Source{Name: c.file, Line: line, Column: col}}
	if depth > maxDepth {
		c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "nesting deeper than %d levels", maxDepth))
		return v
	}
	switch t := h.Value.(type) {
	case *hujson.Object:
		v.Kind = Map
		v.Fields = make([]Field, 0, len(t.Members))
		for i := range t.Members {
			m := &t.Members[i]
			lit, _ := m.Name.Value.(hujson.Literal)
			key := lit.String()
			if v.Index(key) >= 0 {
				l, cl := c.lines.pos(m.Name.StartOffset)
				c.errs = append(c.errs, diag.Errorf(diag.Pos{File: c.file, Line: l, Column: cl}, "key %q is defined twice in this object", key))
				continue
			}
			v.Fields = append(v.Fields, Field{Key: key, Value: c.convert(&m.Value, depth+1)})
		}
	case *hujson.Array:
		v.Kind = Array
		v.Items = make([]*Value, len(t.Elements))
		for i := range t.Elements {
			v.Items[i] = c.convert(&t.Elements[i], depth+1)
		}
	case hujson.Literal:
		switch t.Kind() {
		case 'n':
			v.Kind = Null
		case 't', 'f':
			v.Kind, v.Bool = Bool, t.Bool()
		case '"':
			v.Kind, v.Str, v.Quoted = String, t.String(), true
		case '0':
			s := string(t)
			if !strings.ContainsAny(s, ".eE") {
				if i, err := strconv.ParseInt(s, 10, 64); err == nil {
					v.Kind, v.Int = Int, i
					break
				}
			}
			f, _ := strconv.ParseFloat(s, 64)
			v.Kind, v.Float = Float, f
		}
	}
	return v
}

// lineIndex maps byte offsets to 1-based line and column (columns count bytes).
type lineIndex []int

func newLineIndex(data []byte) lineIndex {
	starts := make(lineIndex, 1, 64)
	for i, b := range data {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func (li lineIndex) pos(off int) (line, col int) {
	i := sort.Search(len(li), func(i int) bool { return li[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return i + 1, off - li[i] + 1
}
