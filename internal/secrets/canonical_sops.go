package secrets

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/envplane/envplane/internal/tree"
)

// parseCanonicalSOPS parses the layout Marshal writes for a flat file (what
// SOPS's YAML store writes for it too) into the tree tree.ParseYAML builds,
// many times faster: yaml.v3 takes milliseconds for a 500-secret file, a
// good part of the 20 ms a whole `secrets get` may take. It declines (ok
// false) anything else, which then goes through tree.ParseYAML. FuzzParse
// checks that both give the same tree whenever this accepts.
func parseCanonicalSOPS(file string, data []byte) (*tree.Value, bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, false
	}
	if !printableLines(data) {
		return nil, false
	}
	n := bytes.Count(data, []byte{'\n'})
	p := canonParser{file: file, values: make([]tree.Value, 0, n+8)}
	p.lines = splitLines(string(data[:len(data)-1]), n)
	root := p.value(1, 1, tree.Map, "")
	fields := make([]tree.Field, 0, n)
	// Names are unique. Marshal writes them sorted after the binding: while
	// they come in order that needs no map; one out of order starts one.
	var seen map[string]struct{}
	last := ""
	for ; p.i < len(p.lines); p.i++ {
		line := p.lines[p.i]
		if line == sopsKey+":" {
			p.i++
			meta, ok := p.sopsMeta()
			if !ok || p.i != len(p.lines) {
				return nil, false
			}
			root.Fields = append(fields, tree.Field{Key: sopsKey, Value: meta})
			return root, true
		}
		var name string
		var col int
		if line != "" && line[0] == '"' {
			end := strings.IndexByte(line[1:], '"') + 1
			if end == 0 {
				return nil, false
			}
			name, line, col = line[1:end], line[end+1:], end+1
			if !yamlQuotes(name) {
				return nil, false
			}
		} else {
			i := strings.IndexByte(line, ':')
			if i < 0 {
				return nil, false
			}
			name, line, col = line[:i], line[i:], i
			if yamlQuotes(name) {
				return nil, false
			}
		}
		val, ok := strings.CutPrefix(line, ": ")
		if !ok || !validSyntax(name) {
			return nil, false
		}
		switch {
		case seen == nil && len(fields) == 0 && name == bindingKey:
		case seen == nil && name > last && name != bindingKey:
			last = name
		default:
			if seen == nil {
				seen = make(map[string]struct{}, n)
				for _, fl := range fields {
					seen[fl.Key] = struct{}{}
				}
			}
			if _, dup := seen[name]; dup {
				return nil, false
			}
			seen[name] = struct{}{}
		}
		var v *tree.Value
		switch {
		case val == `""`:
			v = p.value(p.i+1, col+3, tree.String, "")
			v.Quoted = true
		case encToken(val):
			v = p.value(p.i+1, col+3, tree.String, val)
		default:
			return nil, false
		}
		fields = append(fields, tree.Field{Key: name, Value: v})
	}
	return nil, false // no sops: block
}

// yamlQuotes reports whether yaml.v3 writes a name (of validSyntax) in
// double quotes: the words YAML 1.1 or 1.2 reads as a boolean or null.
func yamlQuotes(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"true", "True", "TRUE", "false", "False", "FALSE",
		"on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL":
		return true
	}
	return false
}

// sopsMeta parses the lines of the sops: block as Marshal writes them.
func (p *canonParser) sopsMeta() (*tree.Value, bool) {
	if p.i == len(p.lines) {
		return nil, false
	}
	m := p.value(p.i+1, 5, tree.Map, "")
	last := ""
	for p.i < len(p.lines) {
		line, num := p.lines[p.i], p.i+1
		if !strings.HasPrefix(line, "    ") || len(line) < 5 || line[4] == ' ' || line[4] == '#' {
			return nil, false
		}
		key, val, _ := strings.Cut(line[4:], ": ")
		key = strings.TrimSuffix(key, ":")
		if key <= last { // written sorted, each once
			return nil, false
		}
		last = key
		var v *tree.Value
		col := 4 + len(key) + 3
		switch key {
		case "age":
			if line != "    age:" {
				return nil, false
			}
			p.i++
			var ok bool
			if v, ok = p.ageList(); !ok {
				return nil, false
			}
			m.Fields = append(m.Fields, tree.Field{Key: key, Value: v})
			continue
		case "lastmodified":
			inner, ok1 := strings.CutPrefix(val, `"`)
			inner, ok2 := strings.CutSuffix(inner, `"`)
			if !ok1 || !ok2 || len(inner) < 20 || strings.Trim(inner, "0123456789TZ:.+-") != "" {
				return nil, false
			}
			v = p.value(num, col, tree.String, inner)
			v.Quoted = true
		case "mac":
			if !encToken(val) {
				return nil, false
			}
			v = p.value(num, col, tree.String, val)
		case "unencrypted_suffix":
			if val != defaultUnencryptedSuffix {
				return nil, false
			}
			v = p.value(num, col, tree.String, val)
		case "version":
			// A version such as 3.13.3: two dots, so never a number.
			if strings.Count(val, ".") != 2 || strings.Trim(val, "0123456789.") != "" || val[0] == '.' || strings.Contains(val, "..") || val[len(val)-1] == '.' {
				return nil, false
			}
			v = p.value(num, col, tree.String, val)
		default:
			return nil, false
		}
		m.Fields = append(m.Fields, tree.Field{Key: key, Value: v})
		p.i++
	}
	return m, true
}

// ageList parses the items of sops.age, each an enc literal block and a
// recipient.
func (p *canonParser) ageList() (*tree.Value, bool) {
	const item, rec, block = "        - enc: |", "          recipient: ", "            "
	if p.i == len(p.lines) || p.lines[p.i] != item {
		return nil, false
	}
	seq := p.value(p.i+1, 9, tree.Array, "")
	for p.i < len(p.lines) && p.lines[p.i] == item {
		m := p.value(p.i+1, 11, tree.Map, "")
		ev := p.value(p.i+1, 16, tree.String, "")
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
		if p.i == start || p.i == len(p.lines) || !strings.HasPrefix(p.lines[p.i], rec) {
			return nil, false
		}
		r := p.lines[p.i][len(rec):]
		if !strings.HasPrefix(r, "age1") || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			return nil, false
		}
		rv := p.value(p.i+1, 22, tree.String, r)
		p.i++
		ev.Str = b.String()
		m.Fields = []tree.Field{{Key: "enc", Value: ev}, {Key: "recipient", Value: rv}}
		seq.Items = append(seq.Items, m)
	}
	return seq, true
}

// printableLines reports whether data holds printable ASCII and line feeds
// only (no tab, CR, other control or non-ASCII byte): what the canonical
// parsers accept. It looks at eight bytes at a time.
func printableLines(data []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(data); i += 8 {
		w := binary.LittleEndian.Uint64(data[i:])
		if w&highs != 0 {
			return false // a byte ≥ 0x80
		}
		del := w ^ 0x7f*ones
		if (del-ones)&^del&highs != 0 {
			return false // a 0x7f
		}
		if (w-0x20*ones)&^w&highs != 0 { // a byte < 0x20: line feeds only
			for _, c := range data[i : i+8] {
				if c < 0x20 && c != '\n' {
					return false
				}
			}
		}
	}
	for _, c := range data[i:] {
		if c != '\n' && (c < 0x20 || c >= 0x7f) {
			return false
		}
	}
	return true
}

// splitLines is strings.Split(s, "\n") for s with n line feeds.
func splitLines(s string, n int) []string {
	lines := make([]string, 0, n+1)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return append(lines, s)
		}
		lines = append(lines, s[:i])
		s = s[i+1:]
	}
}
