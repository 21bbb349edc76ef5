package tree

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

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
// is an empty mapping). file names the file in positions and provenance. The
// file must be UTF-8.
func ParseYAML(file string, data []byte) (*Value, diag.List) {
	if errs := CheckText(file, data, true); errs != nil {
		return nil, errs
	}
	if v, ok := parseBlockYAML(file, data); ok {
		return v, nil
	}
	return parseYAMLv3(file, data)
}

// parseYAMLv3 is ParseYAML through yaml.v3, for any YAML.
func parseYAMLv3(file string, data []byte) (*Value, diag.List) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return &Value{Kind: Map, Src: Source{Name: file, Line: 1, Column: 1}}, nil
		}
		return nil, diag.List{yamlError(file, data, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, diag.List{diag.Errorf(diag.Pos{File: file, Line: extra.Line, Column: extra.Column},
			"a configuration file holds one YAML document; found a second one")}
	} else if err.Error() != "EOF" {
		// Text after the document that is not YAML, such as a line indented
		// less than the first one: yaml.v3 ends the document before it.
		return nil, diag.List{yamlError(file, data, err)}
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

// yamlError positions a yaml.v3 error. Nesting deeper than yaml.v3's own
// limit (10,000) gets the message and, where it can be found, the place that
// nesting deeper than MaxDepth gets from the converter.
func yamlError(file string, data []byte, err error) diag.Diagnostic {
	if !strings.Contains(err.Error(), "exceeded max depth") {
		return YAMLSyntaxError(file, data, err)
	}
	pos := diag.Pos{File: file, Line: 1, Column: 1}
	if line, col, ok := yamlTooDeep(data); ok {
		pos.Line, pos.Column = line, col
	} else {
		pos.Line = YAMLSyntaxError(file, data, err).Pos.Line
	}
	return diag.Errorf(pos, "nesting deeper than %d levels", maxDepth)
}

// maxAliasValues bounds the values built by expanding aliases, so that a few
// hundred bytes of aliases of aliases ("billion laughs") cannot take minutes
// and gigabytes.
const maxAliasValues = 100_000

type yamlConverter struct {
	file string
	errs diag.List
	// endLine and endCol are the end of an input whose last line does not end
	// in a line break, where yaml.v3 adds a line of its own; zero otherwise.
	endLine, endCol int
	// inAlias counts the aliases being expanded; expanded and aliasBytes
	// are the values and the bytes of keys and scalars built while
	// expanding one.
	inAlias, expanded, aliasBytes int
	tooMany, tooDeep              bool
	// expanding holds the anchored nodes whose aliases are being expanded,
	// aliasAt the place of the outermost of those aliases.
	expanding []*yaml.Node
	aliasAt   diag.Pos
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
// LF, CR, LF, NEL, LS and PS end a line), and the column just past its last
// character. ParseYAML has refused UTF-16 before.
func yamlEnd(data []byte) (line, col int) {
	s := strings.TrimPrefix(string(data), "\uFEFF")
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

// convert builds the Value of n, a map or array at level depth+1.
func (c *yamlConverter) convert(n *yaml.Node, depth int) *Value {
	line, col := c.at(n)
	v := &Value{Src: Source{Name: c.file, Line: line, Column: col}}
	if depth >= maxDepth && (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) {
		if !c.tooDeep {
			pos := c.pos(n)
			if c.inAlias > 0 {
				pos = c.aliasAt // the anchor's own text is not too deep
			}
			c.errs = append(c.errs, diag.Errorf(pos, "nesting deeper than %d levels", maxDepth))
			c.tooDeep = true
		}
		return v
	}
	if c.inAlias > 0 {
		if c.expanded++; c.expanded > maxAliasValues || c.aliasBytes > MaxAliasBytes {
			return v
		}
		if n.Kind == yaml.ScalarNode {
			c.aliasBytes += len(n.Value)
		}
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return v
		}
		// The alias stands for its anchor's value at this level.
		if slices.Contains(c.expanding, n.Alias) {
			c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "alias *%s is inside the value of its own anchor", n.Value))
			return v
		}
		if c.inAlias == 0 {
			c.aliasAt = v.Src.Pos()
		}
		c.inAlias++
		c.expanding = append(c.expanding, n.Alias)
		a := c.convert(n.Alias, depth)
		c.expanding = c.expanding[:len(c.expanding)-1]
		c.inAlias--
		if c.inAlias == 0 && !c.tooMany {
			switch {
			case c.expanded > maxAliasValues:
				c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "aliases expand to more than %d values", maxAliasValues))
				c.tooMany = true
			case c.aliasBytes > MaxAliasBytes:
				c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "aliases expand to more than %d MiB of keys and values", MaxAliasBytes>>20))
				c.tooMany = true
			}
		}
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
		var keys keyIndex
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
			if keys.seen(v, k.Value) {
				c.errs = append(c.errs, diag.Errorf(c.pos(k), "key %q is defined twice in this mapping", k.Value))
				continue
			}
			if c.inAlias > 0 {
				c.aliasBytes += len(k.Value)
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
				v.Kind, v.Uint = Uint, t
				return
			case float64:
				v.Kind, v.Float = Float, t
				return
			}
		}
		v.Kind, v.Str = String, n.Value
	case "!!float":
		if n.Style&yaml.TaggedStyle == 0 && intText(strings.ReplaceAll(n.Value, "_", "")) {
			// An integer beyond 64 bits: yaml.v3 resolves it to a float,
			// which would change its value without a word.
			c.errs = append(c.errs, bigInt(c.pos(n), n.Value))
			v.Kind, v.Str = String, n.Value
			return
		}
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			v.Kind, v.Float = Float, f
			return
		}
		if f, ok := specialFloat(n.Value); ok {
			v.Kind, v.Float = Float, f
		} else {
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
// commas (JWCC), whose top level is an object. The file must be UTF-8; a
// leading byte order mark is skipped and not counted in columns.
func ParseJSON(file string, data []byte) (*Value, diag.List) {
	if errs := CheckText(file, data, false); errs != nil {
		return nil, errs
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	lines := newLineIndex(data)
	if len(bytes.TrimSpace(data)) == 0 {
		return &Value{Kind: Map, Src: Source{Name: file, Line: 1, Column: 1}}, nil
	}
	// hujson recurses once per level: bound the depth before it runs.
	if off, deep := jsonTooDeep(data); deep {
		line, col := lines.pos(off)
		return nil, diag.List{diag.Errorf(diag.Pos{File: file, Line: line, Column: col}, "nesting deeper than %d levels", maxDepth)}
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

// convert builds the Value of h, a map or array at level depth+1. ParseJSON
// has bounded the depth before; the check here keeps the converter safe on
// its own.
func (c *jsonConverter) convert(h *hujson.Value, depth int) *Value {
	line, col := c.lines.pos(h.StartOffset)
	v := &Value{Src: Source{Name: c.file, Line: line, Column: col}}
	if _, lit := h.Value.(hujson.Literal); depth >= maxDepth && !lit {
		c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "nesting deeper than %d levels", maxDepth))
		return v
	}
	switch t := h.Value.(type) {
	case *hujson.Object:
		v.Kind = Map
		v.Fields = make([]Field, 0, len(t.Members))
		var keys keyIndex
		for i := range t.Members {
			m := &t.Members[i]
			lit, _ := m.Name.Value.(hujson.Literal)
			key := lit.String()
			if keys.seen(v, key) {
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
				if u, err := strconv.ParseUint(s, 10, 64); err == nil {
					v.Kind, v.Uint = Uint, u
					break
				}
				c.errs = append(c.errs, bigInt(v.Src.Pos(), s))
				v.Kind, v.Str = String, s
				break
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				c.errs = append(c.errs, diag.Errorf(v.Src.Pos(), "number %s is out of range", s))
			}
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

// The block-style fast path.
//
// yaml.v3 turns text into a yaml.Node tree through a scanner, an event parser
// and a node builder, allocating at every step; that was most of the time of
// a resolve (docs/PERFORMANCE.md). Configuration files are nearly always
// written in a small part of YAML: block mappings and sequences with one
// entry per line and single-line scalars. parseBlockYAML parses exactly that
// part straight into Values, with the values, kinds and positions yaml.v3's
// path gives, and declines (ok false) anything else: flow collections,
// anchors, aliases, tags, block and multi-line scalars, escapes, quoted or
// unusual keys, empty values, tabs, CRs, non-ASCII bytes, document markers,
// duplicate keys and every kind of error. Declined input goes through yaml.v3
// as before, so errors and their messages do not change either.
// FuzzParseBlockYAML checks that the two paths agree.

// blockMaxDepth is the deepest nesting the fast path takes on; deeper input
// goes to yaml.v3, which reports maxDepth.
const blockMaxDepth = 64

type blockLine struct {
	num    int    // 1-based line number
	indent int    // 0-based column of text
	text   string // the line from indent on, trailing spaces removed
}

type blockParser struct {
	file  string
	lines []blockLine // lines other than blank and comment-only ones
	i     int         // next line

	// Values, fields and items are carved out of shared arrays, a few
	// allocations per file instead of one per node.
	values    []Value
	fieldSlab []Field
	itemSlab  []*Value
	fields    []Field  // fields of the mappings being parsed, innermost last
	items     []*Value // items of the sequences being parsed, innermost last
}

func parseBlockYAML(file string, data []byte) (*Value, bool) {
	p := blockParser{file: file}
	if !p.split(data) || len(p.lines) == 0 || p.lines[0].indent != 0 {
		return nil, false
	}
	v, ok := p.mapping(0, 0)
	if !ok || p.i != len(p.lines) {
		return nil, false
	}
	return v, true
}

// split cuts data into lines, declining bytes the fast path does not handle.
func (p *blockParser) split(data []byte) bool {
	n := 1
	for _, c := range data {
		switch {
		case c == '\n':
			n++
		case c < 0x20 || c >= 0x7f: // tabs, CRs, control and non-ASCII bytes
			return false
		}
	}
	s := string(data) // keys and values are substrings of this one copy
	p.lines = make([]blockLine, 0, n)
	for num, start := 1, 0; start < len(s); num++ {
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += start
		}
		line := s[start:end]
		start = end + 1
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		text := strings.TrimRight(line[indent:], " ")
		if text == "" || text[0] == '#' {
			continue
		}
		if indent == 0 && (strings.HasPrefix(text, "---") || strings.HasPrefix(text, "...")) {
			return false // a document marker
		}
		p.lines = append(p.lines, blockLine{num: num, indent: indent, text: text})
	}
	return true
}

func (p *blockParser) value(line, col int) *Value {
	if len(p.values) == 0 {
		// Most lines hold one node, some a mapping or sequence as well. At
		// most 160 at a time keeps each block below the large-object size.
		p.values = make([]Value, min(len(p.lines)+len(p.lines)/8+8, 160))
	}
	v := &p.values[0]
	p.values = p.values[1:]
	v.Src = Source{Name: p.file, Line: line, Column: col + 1}
	return v
}

// mapping parses the block mapping whose keys start at column indent, the
// first of them on the current line.
func (p *blockParser) mapping(indent, depth int) (*Value, bool) {
	if depth > blockMaxDepth {
		return nil, false
	}
	m := p.value(p.lines[p.i].num, indent)
	m.Kind = Map
	base := len(p.fields)
	var keys map[string]struct{}
	for p.i < len(p.lines) {
		ln := p.lines[p.i]
		if ln.indent < indent {
			break
		}
		if ln.indent > indent {
			return nil, false
		}
		sep := blockKeyEnd(ln.text)
		if sep < 0 {
			return nil, false
		}
		key := ln.text[:sep]
		if own := p.fields[base:]; keys == nil && len(own) < keyIndexThreshold {
			for _, f := range own {
				if f.Key == key {
					return nil, false // yaml.v3's path reports it
				}
			}
		} else {
			if keys == nil { // a large mapping: no quadratic scans
				keys = make(map[string]struct{}, 2*len(own))
				for _, f := range own {
					keys[f.Key] = struct{}{}
				}
			}
			if _, dup := keys[key]; dup {
				return nil, false
			}
			keys[key] = struct{}{}
		}
		p.i++
		rest := ln.text[sep+1:] // "" or " ..."
		j := skipSpaces(rest)
		var v *Value
		var ok bool
		if j == len(rest) || rest[j] == '#' {
			v, ok = p.nested(indent, depth)
		} else {
			v, ok = p.scalar(ln.num, indent+sep+1+j, rest[j:])
		}
		if !ok {
			return nil, false
		}
		p.fields = append(p.fields, Field{Key: key, Value: v})
	}
	n := len(p.fields) - base
	if len(p.fieldSlab) < n {
		p.fieldSlab = make([]Field, max(n, 64))
	}
	m.Fields = p.fieldSlab[:n:n]
	p.fieldSlab = p.fieldSlab[n:]
	copy(m.Fields, p.fields[base:])
	p.fields = p.fields[:base]
	return m, true
}

// nested parses the value of a key that ends its line: a more indented
// mapping or sequence, or a sequence at the key's own indentation.
func (p *blockParser) nested(indent, depth int) (*Value, bool) {
	if p.i == len(p.lines) {
		return nil, false // an empty value
	}
	ln := p.lines[p.i]
	switch {
	case blockEntry(ln.text) && ln.indent >= indent:
		return p.sequence(ln.indent, depth+1)
	case ln.indent > indent:
		return p.mapping(ln.indent, depth+1)
	}
	return nil, false
}

// sequence parses the block sequence whose "-" are at column indent.
func (p *blockParser) sequence(indent, depth int) (*Value, bool) {
	if depth > blockMaxDepth {
		return nil, false
	}
	s := p.value(p.lines[p.i].num, indent)
	s.Kind = Array
	base := len(p.items)
	for p.i < len(p.lines) {
		ln := p.lines[p.i]
		if ln.indent < indent {
			break
		}
		if ln.indent > indent {
			return nil, false
		}
		if !blockEntry(ln.text) {
			break
		}
		j := 1 + skipSpaces(ln.text[1:])
		if j == len(ln.text) || ln.text[j] == '#' {
			return nil, false // the item is on the lines below, or empty
		}
		content, col := ln.text[j:], indent+j
		if blockEntry(content) {
			return nil, false
		}
		var v *Value
		var ok bool
		if blockKeyEnd(content) >= 0 {
			// A mapping whose first key follows the "- ".
			p.lines[p.i] = blockLine{num: ln.num, indent: col, text: content}
			v, ok = p.mapping(col, depth+1)
		} else {
			p.i++
			v, ok = p.scalar(ln.num, col, content)
		}
		if !ok {
			return nil, false
		}
		p.items = append(p.items, v)
	}
	n := len(p.items) - base
	if len(p.itemSlab) < n {
		p.itemSlab = make([]*Value, max(n, 64))
	}
	s.Items = p.itemSlab[:n:n]
	p.itemSlab = p.itemSlab[n:]
	copy(s.Items, p.items[base:])
	p.items = p.items[:base]
	return s, true
}

// scalar parses a single-line scalar that starts at column col and runs to
// the end of text but for a comment.
func (p *blockParser) scalar(line, col int, text string) (*Value, bool) {
	switch q := text[0]; q {
	case '"', '\'':
		end := strings.IndexByte(text[1:], q) + 1
		if end == 0 {
			return nil, false // continues on the next line
		}
		inner, rest := text[1:end], text[end+1:]
		if q == '"' && strings.IndexByte(inner, '\\') >= 0 {
			return nil, false // escapes
		}
		if r := strings.TrimLeft(rest, " "); r != "" && (r == rest || r[0] != '#') {
			return nil, false // '' inside single quotes, or text after the quotes
		}
		v := p.value(line, col)
		v.Kind, v.Str, v.Quoted = String, inner, true
		return v, true
	case '-':
		if len(text) == 1 || text[1] == ' ' {
			return nil, false
		}
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`':
		return nil, false // indicators: flow, anchors, aliases, tags, block scalars, reserved
	}
	end := len(text)
scan:
	for i := 1; i < len(text); i++ {
		switch text[i] {
		case ':':
			if i+1 == len(text) || text[i+1] == ' ' {
				return nil, false // a mapping where a scalar is expected
			}
		case '#':
			if text[i-1] == ' ' {
				end = i
				break scan
			}
		}
	}
	v := p.value(line, col)
	return v, blockPlain(v, strings.TrimRight(text[:end], " "))
}

// blockPlain gives v the kind and value yaml.v3 resolves the plain scalar s
// to, converted as yamlConverter.scalar converts it. It declines the few
// texts that converter needs yaml.v3's own decoding for.
func blockPlain(v *Value, s string) bool {
	switch plainTag(s) {
	case "!!null":
		v.Kind = Null
	case "!!bool":
		v.Kind, v.Bool = Bool, strings.EqualFold(s, "true")
	case "!!int":
		i, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return false
		}
		v.Kind, v.Int = Int, i
	case "!!float":
		if intText(strings.ReplaceAll(s, "_", "")) {
			return false // an integer beyond 64 bits, which yaml.v3's path refuses
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			v.Kind, v.Float = Float, f
			return true
		}
		f, ok := specialFloat(s)
		if !ok {
			return false
		}
		v.Kind, v.Float = Float, f
	default:
		v.Kind, v.Str = String, s
	}
	return true
}

// plainTag is the tag yaml.v3 (v3.0.1, resolve.go) resolves an untagged plain
// scalar to, but that timestamps come out as !!str: both convert to strings.
func plainTag(s string) string {
	var hint byte
	switch c := s[0]; {
	case c == '+' || c == '-':
		hint = 'S'
	case '0' <= c && c <= '9':
		hint = 'D'
	case strings.IndexByte("yYnNtTfFoO~", c) >= 0:
		hint = 'M'
	case c == '.':
		hint = '.'
	}
	if hint == 0 {
		return "!!str"
	}
	switch s {
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return "!!bool"
	case "~", "null", "Null", "NULL":
		return "!!null"
	case ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF":
		return "!!float"
	}
	switch hint {
	case '.':
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return "!!float"
		}
	case 'D', 'S':
		plain := strings.ReplaceAll(s, "_", "")
		if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return "!!int"
		}
		if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return "!!int"
		}
		if yamlStyleFloat(plain) {
			if _, err := strconv.ParseFloat(plain, 64); err == nil {
				return "!!float"
			}
		}
		for _, radix := range []struct {
			prefix string
			base   int
		}{{"0b", 2}, {"0o", 8}} {
			if digits, ok := strings.CutPrefix(plain, radix.prefix); ok {
				if _, err := strconv.ParseInt(digits, radix.base, 64); err == nil {
					return "!!int"
				}
				if _, err := strconv.ParseUint(digits, radix.base, 64); err == nil {
					return "!!int"
				}
			} else if digits, ok := strings.CutPrefix(plain, "-"+radix.prefix); ok {
				if _, err := strconv.ParseInt("-"+digits, radix.base, 64); err == nil {
					return "!!int"
				}
			}
		}
	}
	return "!!str"
}

// yamlStyleFloat matches ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$,
// yaml.v3's test for floats.
func yamlStyleFloat(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// blockKeyEnd returns the index of the ": " (or final ":") that ends a plain
// key made of letters, digits and _ / (with - and . after the first
// character), or -1.
func blockKeyEnd(text string) int {
	for i := 0; i < len(text) && i <= 128; i++ {
		switch c := text[i]; {
		case c == ':':
			if i > 0 && (i+1 == len(text) || text[i+1] == ' ') {
				return i
			}
			return -1
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '/':
		case (c == '-' || c == '.') && i > 0:
		default:
			return -1
		}
	}
	return -1
}

// blockEntry reports whether text is a block sequence entry.
func blockEntry(text string) bool {
	return text == "-" || strings.HasPrefix(text, "- ")
}

func skipSpaces(s string) int {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// intText reports whether s is a decimal integer: an optional sign and digits.
func intText(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// bigInt refuses an integer that fits neither int64 nor uint64. It is
// written in the file, not a secret, but only its length is shown: a long
// number may still be something private.
func bigInt(pos diag.Pos, text string) diag.Diagnostic {
	return diag.Errorf(pos, "integer of %d digits does not fit in 64 bits; write it in quotes to keep it as text", len(strings.ReplaceAll(strings.TrimLeft(text, "+-"), "_", "")))
}

// specialFloat reads YAML's infinities and NaN (.inf, -.inf, .nan in any
// case, with an optional +).
func specialFloat(s string) (float64, bool) {
	switch strings.ToLower(strings.TrimLeft(s, "+")) {
	case ".inf":
		return math.Inf(1), true
	case "-.inf":
		return math.Inf(-1), true
	case ".nan":
		return math.NaN(), true
	}
	return 0, false
}

// DescribeYAML names what a YAML node is, for "expected X, found Y"
// messages: a mapping, a list, an alias, nothing, or the quoted scalar.
func DescribeYAML(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}
