package secrets

import (
	"bytes"
	"strings"

	"github.com/envplane/envplane/internal/tree"
)

// parseCanonical parses the layout Marshal writes into the tree that
// tree.ParseYAML would build, about ten times faster: yaml.v3 needs 2.5 to
// 4 ms for a 500-secret file, a good part of the 20 ms a whole `secrets get`
// may take. It declines (ok false) anything else: comments inside the
// metadata, other indentation, quoting or ordering, blank lines in the
// middle of the metadata, an unterminated last line, and everything that is
// not a valid file. Those inputs go through tree.ParseYAML, which also gives
// the positioned errors. FuzzParse checks that both give the same tree
// whenever this accepts.
func parseCanonical(file string, data []byte) (*tree.Value, bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, false
	}
	if !printableLines(data) { // tabs, CRs, control and non-ASCII bytes
		return nil, false
	}
	n := bytes.Count(data, []byte{'\n'})
	p := canonParser{file: file, values: make([]tree.Value, 0, n+8)}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	p.lines = lines

	root := p.value(0, 1, tree.Map, "")
	fields := make([]tree.Field, 0, n)
	seen := make(map[string]struct{}, n)
	for ; p.i < len(lines); p.i++ {
		line := lines[p.i]
		if line == "" || line[0] == '#' {
			continue
		}
		if root.Src.Line == 0 {
			root.Src.Line = p.i + 1
		}
		if line == metaKey+":" {
			p.i++
			meta, ok := p.meta()
			if !ok || p.i != len(lines) {
				return nil, false
			}
			root.Fields = append(fields, tree.Field{Key: metaKey, Value: meta})
			return root, true
		}
		name, col := line, 0
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"') + 1
			if end == 0 {
				return nil, false
			}
			name, line, col = line[1:end], line[end+1:], end+1
		} else {
			i := strings.IndexByte(line, ':')
			if i < 0 {
				return nil, false
			}
			name, line, col = line[:i], line[i:], i
		}
		val, ok := strings.CutPrefix(line, ": ")
		if !ok || !validName(name) || !encToken(val) {
			return nil, false
		}
		if _, dup := seen[name]; dup {
			return nil, false
		}
		seen[name] = struct{}{}
		fields = append(fields, tree.Field{Key: name, Value: p.value(p.i+1, col+3, tree.String, val)})
	}
	return nil, false // no metadata block
}

type canonParser struct {
	file   string
	lines  []string
	i      int          // current line
	values []tree.Value // carved up, one allocation for all nodes
}

func (p *canonParser) value(line, col int, kind tree.Kind, s string) *tree.Value {
	if len(p.values) == cap(p.values) {
		p.values = make([]tree.Value, 0, 16) // rarely: sized by the lines
	}
	// Field by field into zeroed memory: cheaper than copying in a whole
	// Value, which holds pointers.
	p.values = p.values[:len(p.values)+1]
	v := &p.values[len(p.values)-1]
	v.Kind, v.Str = kind, s
	v.Src.Name, v.Src.Line, v.Src.Column = p.file, line, col
	return v
}

// meta parses the lines of the envplane: block, all of them to the end.
func (p *canonParser) meta() (*tree.Value, bool) {
	if p.i == len(p.lines) {
		return nil, false
	}
	m := p.value(p.i+1, 3, tree.Map, "")
	for p.i < len(p.lines) {
		line, num := p.lines[p.i], p.i+1
		if !strings.HasPrefix(line, "  ") || len(line) < 3 || line[2] == ' ' || line[2] == '#' {
			return nil, false
		}
		key, val, _ := strings.Cut(line[2:], ": ")
		if m.Get(strings.TrimSuffix(key, ":")) != nil {
			return nil, false
		}
		var v *tree.Value
		switch key {
		case "version":
			if len(val) == 0 || len(val) > 9 || val[0] < '1' || val[0] > '9' || strings.Trim(val, "0123456789") != "" {
				return nil, false
			}
			v = p.value(num, 12, tree.Int, "")
			for _, c := range val {
				v.Int = v.Int*10 + int64(c-'0')
			}
		case "environment":
			if !validEnv(val) || ambiguousKey(val) {
				return nil, false
			}
			v = p.value(num, 16, tree.String, val)
		case "mac":
			if !encToken(val) {
				return nil, false
			}
			v = p.value(num, 8, tree.String, val)
		case "lastmodified":
			inner, ok1 := strings.CutPrefix(val, `"`)
			inner, ok2 := strings.CutSuffix(inner, `"`)
			if !ok1 || !ok2 || strings.Trim(inner, "0123456789TZ:.+-") != "" {
				return nil, false
			}
			v = p.value(num, 17, tree.String, inner)
			v.Quoted = true
		case "recipients:":
			key = "recipients"
			p.i++
			var ok bool
			if v, ok = p.recipients(); !ok {
				return nil, false
			}
			m.Fields = append(m.Fields, tree.Field{Key: key, Value: v})
			continue
		default:
			return nil, false
		}
		m.Fields = append(m.Fields, tree.Field{Key: key, Value: v})
		p.i++
	}
	return m, true
}

// recipients parses the items of envplane.recipients, each a recipient and
// its enc literal block.
func (p *canonParser) recipients() (*tree.Value, bool) {
	const item, enc, block = "    - recipient: ", "      enc: |", "        "
	if p.i == len(p.lines) || !strings.HasPrefix(p.lines[p.i], item) {
		return nil, false
	}
	seq := p.value(p.i+1, 5, tree.Array, "")
	for p.i < len(p.lines) && strings.HasPrefix(p.lines[p.i], item) {
		r := p.lines[p.i][len(item):]
		if !strings.HasPrefix(r, "age1") || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return nil, false
		}
		m := p.value(p.i+1, 7, tree.Map, "")
		rv := p.value(p.i+1, 18, tree.String, r)
		p.i++
		if p.i == len(p.lines) || p.lines[p.i] != enc {
			return nil, false
		}
		ev := p.value(p.i+1, 12, tree.String, "")
		p.i++
		start := p.i
		var b strings.Builder
		for p.i < len(p.lines) && strings.HasPrefix(p.lines[p.i], block) {
			text := p.lines[p.i][len(block):]
			if text == "" || text[0] == ' ' || text[0] == '#' || text[len(text)-1] == ' ' {
				return nil, false
			}
			b.WriteString(text)
			b.WriteByte('\n')
			p.i++
		}
		if p.i == start {
			return nil, false
		}
		ev.Str = b.String()
		m.Fields = []tree.Field{{Key: "recipient", Value: rv}, {Key: "enc", Value: ev}}
		seq.Items = append(seq.Items, m)
	}
	return seq, true
}

// encToken reports whether s is one plain-scalar ENC[…] token: the
// characters of base64 and the field syntax only, so no YAML indicator.
func encToken(s string) bool {
	inner, ok1 := strings.CutPrefix(s, "ENC[")
	inner, ok2 := strings.CutSuffix(inner, "]")
	if !ok1 || !ok2 {
		return false
	}
	return allIn(inner, &encChars)
}
