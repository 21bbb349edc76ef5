// Package data refreshes environments' PostgreSQL databases: it reads the
// workspace's anonymisation rules and seed spec (docs/DATA.md), inspects a
// database's schema, plans and checks a copy, streams tables from one
// database to another with binary COPY through deterministic keyed
// transformers, and fills an empty schema with synthetic rows.
package data

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/tree"
)

// Rule kinds.
const (
	Keep     = "keep"
	Null     = "null"
	Fake     = "fake"
	Mask     = "mask"
	Noise    = "noise"
	Fixed    = "fixed"
	Hash     = "hash"
	Template = "template"
)

// Fakes are the kinds {fake: …} accepts.
var Fakes = []string{"email", "name", "first_name", "last_name", "phone", "ssn", "card", "iban",
	"address", "street", "city", "zip", "country", "company", "username", "url", "ipv4", "ipv6", "ip", "text", "word"}

// Hashes are the forms {hash: …} accepts.
var Hashes = []string{"hex", "uuid", "int", "email"}

// Rule is what happens to one column's values on the way to the target.
type Rule struct {
	Kind string
	// Arg is the fake kind, the hash form or the template text.
	Arg string
	// Mask keeps First and Last characters and replaces the rest by Char.
	First, Last int
	Char        string
	// Noise moves dates and timestamps by up to Dur, numbers by up to Frac.
	Dur  time.Duration
	Frac float64
	// Fixed is the value of {fixed: …}, as YAML decoded it.
	Fixed any
	Pos   diag.Pos
	// From names the referenced column whose rule this one follows.
	From string
}

// String is the rule as written in a rules file.
func (r *Rule) String() string {
	if r == nil {
		return "unclassified"
	}
	switch r.Kind {
	case Keep, Null:
		return r.Kind
	case Fake, Hash:
		return fmt.Sprintf("{%s: %s}", r.Kind, r.Arg)
	case Template:
		return fmt.Sprintf("{template: %q}", r.Arg)
	case Mask:
		var parts []string
		if r.First > 0 {
			parts = append(parts, fmt.Sprintf("first: %d", r.First))
		}
		if r.Last > 0 {
			parts = append(parts, fmt.Sprintf("last: %d", r.Last))
		}
		if r.Char != "" && r.Char != "*" {
			parts = append(parts, fmt.Sprintf("char: %q", r.Char))
		}
		return "{mask: {" + strings.Join(parts, ", ") + "}}"
	case Noise:
		if r.Dur > 0 {
			return "{noise: " + fmtDur(r.Dur) + "}"
		}
		return "{noise: " + strconv.FormatFloat(r.Frac, 'g', -1, 64) + "}"
	case Fixed:
		b, _ := yaml.Marshal(r.Fixed)
		return "{fixed: " + strings.TrimSpace(flowYAML(string(b), r.Fixed)) + "}"
	}
	return r.Kind
}

func flowYAML(s string, v any) string {
	switch v.(type) {
	case map[string]any:
		if len(v.(map[string]any)) == 0 {
			return "{}"
		}
	case []any:
		if len(v.([]any)) == 0 {
			return "[]"
		}
	}
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")
}

func fmtDur(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// Rules is a parsed rules file.
type Rules struct {
	File   string
	Key    string // the secret or variable holding the hashing key
	KeyPos diag.Pos
	// Tables maps a table (schema.table, or table in public) to its
	// columns' rules.
	Tables   map[string]map[string]*Rule
	TablePos map[string]diag.Pos
}

// Rule is the rule of table.column, nil when unclassified.
func (r *Rules) Rule(table, column string) *Rule {
	if r == nil {
		return nil
	}
	return r.Tables[table][column]
}

// ParseRules reads a rules file, reporting every problem at once with its
// file:line:col.
func ParseRules(file string, src []byte) (*Rules, error) {
	rs := &Rules{File: file, Tables: map[string]map[string]*Rule{}, TablePos: map[string]diag.Pos{}}
	p := &rparser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, diag.List{diag.Errorf(diag.Pos{File: file}, "%v", err)}
	}
	if len(doc.Content) == 0 {
		return nil, diag.List{diag.Errorf(diag.Pos{File: file, Line: 1, Column: 1}, "empty rules file: expected `key:` and `tables:`")}
	}
	root := doc.Content[0]
	p.fields(root, "rules file", map[string]func(*yaml.Node){
		"key": func(v *yaml.Node) {
			rs.Key, rs.KeyPos = p.str(v, "key"), p.pos(v)
		},
		"tables": func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				p.errorf(v, "tables: expected a mapping of table: {column: rule}, found %s", tree.DescribeYAML(v))
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				tk, tv := v.Content[i], v.Content[i+1]
				if _, dup := rs.Tables[tk.Value]; dup {
					p.errorf(tk, "table %s is listed twice", tk.Value)
					continue
				}
				cols := map[string]*Rule{}
				rs.Tables[tk.Value], rs.TablePos[tk.Value] = cols, p.pos(tk)
				if tv.Kind != yaml.MappingNode {
					p.errorf(tv, "%s: expected a mapping of column: rule, found %s", tk.Value, tree.DescribeYAML(tv))
					continue
				}
				for j := 0; j+1 < len(tv.Content); j += 2 {
					ck, cv := tv.Content[j], tv.Content[j+1]
					if _, dup := cols[ck.Value]; dup {
						p.errorf(ck, "%s.%s is listed twice", tk.Value, ck.Value)
						continue
					}
					if r := p.rule(cv, tk.Value+"."+ck.Value); r != nil {
						cols[ck.Value] = r
					}
				}
			}
		},
	})
	if rs.Key == "" && p.pos(root).Line > 0 && len(p.errs) == 0 {
		p.errs = append(p.errs, diag.Errorf(diag.Pos{File: file, Line: 1, Column: 1}, "rules file: missing `key:`, the secret (or variable) of the target environment that keys the transformers"))
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}

type rparser struct {
	file string
	errs diag.List
}

func (p *rparser) pos(n *yaml.Node) diag.Pos {
	return diag.Pos{File: p.file, Line: n.Line, Column: n.Column}
}

func (p *rparser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, diag.Errorf(p.pos(n), format, args...))
}

func (p *rparser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.Value == "" {
		p.errorf(n, "%s: expected a string, found %s", what, tree.DescribeYAML(n))
		return ""
	}
	return n.Value
}

func (p *rparser) fields(n *yaml.Node, what string, fields map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping, found %s", what, tree.DescribeYAML(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fn, ok := fields[k.Value]
		if !ok {
			known := make([]string, 0, len(fields))
			for name := range fields {
				known = append(known, name)
			}
			sort.Strings(known)
			p.errorf(k, "%s: unknown field %q%s", what, k.Value, didYouMean(k.Value, known))
			continue
		}
		fn(v)
	}
}

func closest(s string, known []string) string {
	if c := suggest.Closest(s, known); c != "" {
		return fmt.Sprintf(" (did you mean %s?)", c)
	}
	return ""
}

func didYouMean(s string, known []string) string {
	if c := suggest.Closest(s, known); c != "" {
		return fmt.Sprintf(" (did you mean %s?)", c)
	}
	return " (known: " + strings.Join(known, ", ") + ")"
}

var ruleKinds = []string{Keep, Null, Fake, Mask, Noise, Fixed, Hash, Template}

// rule reads one column's rule: keep, null (or ~), or a one-key mapping.
func (p *rparser) rule(n *yaml.Node, col string) *Rule {
	r := &Rule{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode {
		switch {
		case n.ShortTag() == "!!null" || n.Value == Null:
			r.Kind = Null
		case n.Value == Keep:
			r.Kind = Keep
		default:
			p.errorf(n, "%s: unknown rule %q; expected keep, null or one of {fake: …}, {mask: …}, {noise: …}, {fixed: …}, {hash: …}, {template: …}%s", col, n.Value, closest(n.Value, ruleKinds))
			return nil
		}
		return r
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.errorf(n, "%s: expected keep, null or a mapping with one rule, like {fake: email}, found %s", col, tree.DescribeYAML(n))
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	r.Kind = k.Value
	where := col + ": " + k.Value
	switch k.Value {
	case Fake:
		r.Arg = p.str(v, where)
		if r.Arg != "" && !contains(Fakes, r.Arg) {
			p.errorf(v, "%s: unknown kind %q%s", where, r.Arg, didYouMean(r.Arg, Fakes))
			return nil
		}
	case Hash:
		r.Arg = p.str(v, where)
		if r.Arg != "" && !contains(Hashes, r.Arg) {
			p.errorf(v, "%s: %q is not one of %s", where, r.Arg, strings.Join(Hashes, " | "))
			return nil
		}
	case Template:
		r.Arg = p.str(v, where)
	case Mask:
		r.Char = "*"
		p.fields(v, where, map[string]func(*yaml.Node){
			"first": func(v *yaml.Node) { r.First = p.count(v, where+".first") },
			"last":  func(v *yaml.Node) { r.Last = p.count(v, where+".last") },
			"char": func(v *yaml.Node) {
				if r.Char = p.str(v, where+".char"); r.Char != "" && len([]rune(r.Char)) != 1 {
					p.errorf(v, "%s.char: expected one character, found %q", where, r.Char)
				}
			},
		})
	case Noise:
		s := p.str(v, where)
		if s == "" {
			return nil
		}
		if d, err := parseDur(s); err == nil {
			r.Dur = d
		} else if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f <= 10 {
			r.Frac = f
		} else {
			p.errorf(v, "%s: expected an interval like 365d, 12h or 30m (dates, timestamps) or a fraction like 0.1 (numbers), found %q", where, s)
			return nil
		}
	case Fixed:
		if err := v.Decode(&r.Fixed); err != nil {
			p.errorf(v, "%s: %v", where, err)
			return nil
		}
	default:
		p.errorf(k, "%s: unknown rule %q%s", col, k.Value, didYouMean(k.Value, ruleKinds))
		return nil
	}
	return r
}

func (p *rparser) count(v *yaml.Node, what string) int {
	i, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || i < 0 || i > 1000 {
		p.errorf(v, "%s: expected a whole number from 0 to 1000, found %s", what, tree.DescribeYAML(v))
		return 0
	}
	return i
}

// parseDur reads 365d, 2w, or a Go duration.
func parseDur(s string) (time.Duration, error) {
	for suf, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			i, err := strconv.Atoi(n)
			if err != nil || i <= 0 || i > 100000 {
				return 0, fmt.Errorf("bad interval %q", s)
			}
			return time.Duration(i) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad interval %q", s)
	}
	return d, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
