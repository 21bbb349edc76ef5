package data

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// MaxSeedRows bounds one table of a seed spec.
const MaxSeedRows = 10_000_000

// SeedSpec is a parsed seed file.
type SeedSpec struct {
	File   string
	Tables map[string]*SeedTable
}

// SeedTable is how many rows a table gets and how some columns are made.
type SeedTable struct {
	Count   int
	Columns map[string]*Gen
	Pos     diag.Pos
}

// Gen makes a column's values.
type Gen struct {
	Kind    string // fake, range, choice, ref, fixed, null, template
	Arg     string
	Lo, Hi  string // range bounds as written
	Choices []string
	Weights []int
	Fixed   any
	Pos     diag.Pos
}

var genKinds = []string{"choice", "fake", "fixed", "null", "range", "ref", "template"}

// ParseSeed reads a seed spec, reporting every problem with its place.
func ParseSeed(file string, src []byte) (*SeedSpec, error) {
	s := &SeedSpec{File: file, Tables: map[string]*SeedTable{}}
	p := &rparser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, diag.List{diag.Errorf(diag.Pos{File: file}, "%v", err)}
	}
	if len(doc.Content) == 0 {
		return s, nil
	}
	p.fields(doc.Content[0], "seed file", map[string]func(*yaml.Node){
		"tables": func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				p.errorf(v, "tables: expected a mapping of table: {count: N, columns: {…}}, found %s", tree.DescribeYAML(v))
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				tk, tv := v.Content[i], v.Content[i+1]
				st := &SeedTable{Columns: map[string]*Gen{}, Pos: p.pos(tk), Count: -1}
				s.Tables[tk.Value] = st
				p.fields(tv, tk.Value, map[string]func(*yaml.Node){
					"count": func(v *yaml.Node) {
						n, err := strconv.Atoi(v.Value)
						if err != nil || n < 0 || n > MaxSeedRows {
							p.errorf(v, "%s.count: expected a whole number from 0 to %d, found %s", tk.Value, MaxSeedRows, tree.DescribeYAML(v))
							return
						}
						st.Count = n
					},
					"columns": func(v *yaml.Node) {
						if v.Kind != yaml.MappingNode {
							p.errorf(v, "%s.columns: expected a mapping of column: generator, found %s", tk.Value, tree.DescribeYAML(v))
							return
						}
						for j := 0; j+1 < len(v.Content); j += 2 {
							if g := p.gen(v.Content[j+1], tk.Value+"."+v.Content[j].Value); g != nil {
								st.Columns[v.Content[j].Value] = g
							}
						}
					},
				})
				if st.Count < 0 && tv.Kind == yaml.MappingNode {
					p.errorf(tk, "%s: needs `count:`", tk.Value)
				}
			}
		},
	})
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

func (p *rparser) gen(n *yaml.Node, col string) *Gen {
	g := &Gen{Pos: p.pos(n)}
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!null" || n.Value == "null") {
		g.Kind = "null"
		return g
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.errorf(n, "%s: expected a generator like {fake: email}, {range: [1, 100]}, {choice: {a: 3, b: 1}} or {ref: table.column}, found %s", col, tree.DescribeYAML(n))
		return nil
	}
	k, v := n.Content[0], n.Content[1]
	g.Kind = k.Value
	where := col + ": " + k.Value
	switch k.Value {
	case "fake":
		if g.Arg = p.str(v, where); g.Arg != "" && !contains(Fakes, g.Arg) {
			p.errorf(v, "%s: unknown kind %q%s", where, g.Arg, didYouMean(g.Arg, Fakes))
		}
	case "ref":
		if g.Arg = p.str(v, where); g.Arg != "" && !strings.Contains(g.Arg, ".") {
			p.errorf(v, "%s: expected table.column, found %q", where, g.Arg)
		}
	case "template":
		g.Arg = p.str(v, where)
	case "range":
		if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
			p.errorf(v, "%s: expected [low, high], found %s", where, tree.DescribeYAML(v))
			return nil
		}
		g.Lo, g.Hi = v.Content[0].Value, v.Content[1].Value
		lo, e1 := strconv.ParseFloat(g.Lo, 64)
		hi, e2 := strconv.ParseFloat(g.Hi, 64)
		if e1 == nil && e2 == nil && lo > hi {
			p.errorf(v, "%s: low %s is above high %s", where, g.Lo, g.Hi)
		}
		if (e1 == nil) != (e2 == nil) {
			p.errorf(v, "%s: both bounds must be numbers, or both dates", where)
		}
		if e1 != nil && e2 != nil {
			a, ea := parseTime(g.Lo)
			b, eb := parseTime(g.Hi)
			if ea != nil || eb != nil {
				p.errorf(v, "%s: expected numbers or dates (2024-01-01, RFC 3339), found %s and %s", where, tree.DescribeYAML(v.Content[0]), tree.DescribeYAML(v.Content[1]))
			} else if a.After(b) {
				p.errorf(v, "%s: low %s is after high %s", where, g.Lo, g.Hi)
			}
		}
	case "choice":
		switch v.Kind {
		case yaml.SequenceNode:
			for _, it := range v.Content {
				g.Choices, g.Weights = append(g.Choices, it.Value), append(g.Weights, 1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(v.Content); i += 2 {
				w, err := strconv.Atoi(v.Content[i+1].Value)
				if err != nil || w < 0 || w > 1_000_000 {
					p.errorf(v.Content[i+1], "%s: weight of %q: expected a whole number from 0 to 1000000, found %s", where, v.Content[i].Value, tree.DescribeYAML(v.Content[i+1]))
					continue
				}
				g.Choices, g.Weights = append(g.Choices, v.Content[i].Value), append(g.Weights, w)
			}
		default:
			p.errorf(v, "%s: expected a list of values or a mapping of value: weight, found %s", where, tree.DescribeYAML(v))
			return nil
		}
		total := 0
		for _, w := range g.Weights {
			total += w
		}
		if total == 0 && len(p.errs) == 0 {
			p.errorf(v, "%s: no value has a weight above 0", where)
		}
	case "fixed":
		_ = v.Decode(&g.Fixed)
	default:
		p.errorf(k, "%s: unknown generator %q%s", col, k.Value, didYouMean(k.Value, genKinds))
		return nil
	}
	return g
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// SeedReport is how many rows each table got.
type SeedReport struct {
	Tables []string
	Rows   map[string]int
}

// Seed fills the spec's tables of the database at e with synthetic rows,
// parents first, deterministic for seed. Every problem with the spec or
// the database is reported before anything is written; the rows are
// written in one transaction.
func Seed(ctx context.Context, e Endpoint, spec *SeedSpec, seed uint64) (*SeedReport, error) {
	c, err := Connect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	s, err := Inspect(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Env, err)
	}
	var problems diag.List
	var names []string
	for _, tn := range sortedKeys(spec.Tables) {
		st := spec.Tables[tn]
		t := s.Tables[tn]
		if t == nil {
			problems = append(problems, diag.Errorf(st.Pos, "table %s: not in the database of %s%s", tn, e.Env, didYouMean(tn, s.Names())))
			continue
		}
		names = append(names, tn)
		for _, cn := range sortedKeys(st.Columns) {
			g := st.Columns[cn]
			col, ok := t.Column(cn)
			if !ok {
				problems = append(problems, diag.Errorf(g.Pos, "%s.%s: no such column", tn, cn))
				continue
			}
			if g.Kind == "null" && col.NotNull {
				problems = append(problems, diag.Errorf(g.Pos, "%s.%s: null, but the column is NOT NULL", tn, cn))
			}
			if g.Kind == "ref" {
				rt, rc, _ := strings.Cut(g.Arg, ".")
				if i := strings.LastIndex(g.Arg, "."); i > 0 {
					rt, rc = g.Arg[:i], g.Arg[i+1:]
				}
				if pt := s.Tables[rt]; pt == nil {
					problems = append(problems, diag.Errorf(g.Pos, "%s.%s: ref %s: no table %s", tn, cn, g.Arg, rt))
				} else if _, ok := pt.Column(rc); !ok {
					problems = append(problems, diag.Errorf(g.Pos, "%s.%s: ref %s: no column %s in %s", tn, cn, g.Arg, rc, rt))
				}
			}
		}
		for _, col := range t.Columns {
			if st.Columns[col.Name] != nil || col.Default || fkOf(t, col.Name) != nil {
				continue
			}
			if _, ok := typeGen(col); !ok && col.NotNull {
				problems = append(problems, diag.Errorf(st.Pos, "%s.%s (%s): no generator in the spec and none for its type; give it one", tn, col.Name, col.Type))
			}
		}
		for _, fk := range t.ForeignKeys {
			if _, seeded := spec.Tables[fk.RefTable]; !seeded && fk.RefTable != tn {
				var n int
				if pt := s.Tables[fk.RefTable]; pt != nil {
					_ = c.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+pt.Ident()+" LIMIT 1) x").Scan(&n)
				}
				if n == 0 {
					problems = append(problems, diag.Errorf(st.Pos, "%s references %s (%s), which is empty and not in the seed spec: add it", tn, fk.RefTable, fk.Name))
				}
			}
		}
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM "+t.Ident()+" LIMIT 1) x").Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			problems = append(problems, diag.Errorf(st.Pos, "table %s of %s is not empty: seed fills empty tables only", tn, e.Env))
		}
	}
	if len(problems) > 0 {
		return nil, &Refusal{problems}
	}
	order := s.Order(names)
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	rep := &SeedReport{Tables: order, Rows: map[string]int{}}
	for _, tn := range order {
		if err := seedTable(ctx, tx, s, s.Tables[tn], spec.Tables[tn], seed); err != nil {
			return nil, fmt.Errorf("%s: seeding %s: %w", e.Env, tn, err)
		}
		rep.Rows[tn] = spec.Tables[tn].Count
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return rep, nil
}

func fkOf(t *Table, col string) *ForeignKey {
	for i, fk := range t.ForeignKeys {
		for _, c := range fk.Columns {
			if c == col {
				return &t.ForeignKeys[i]
			}
		}
	}
	return nil
}

// typeGen is the generator for a column nothing names, from its name and type.
func typeGen(col Column) (*Gen, bool) {
	sug, _ := Suggest(&Table{}, col, nil)
	if strings.HasPrefix(sug, "{fake: ") && col.Category == "S" {
		return &Gen{Kind: "fake", Arg: strings.TrimSuffix(strings.TrimPrefix(sug, "{fake: "), "}")}, true
	}
	switch col.TypName {
	case "text", "varchar", "bpchar", "citext", "name":
		return &Gen{Kind: "fake", Arg: "word"}, true
	case "int2":
		return &Gen{Kind: "range", Lo: "0", Hi: "1000"}, true
	case "int4", "int8":
		return &Gen{Kind: "range", Lo: "1", Hi: "100000"}, true
	case "numeric", "float4", "float8":
		return &Gen{Kind: "range", Lo: "0", Hi: "1000.0"}, true
	case "bool":
		return &Gen{Kind: "choice", Choices: []string{"true", "false"}, Weights: []int{1, 1}}, true
	case "date", "timestamp", "timestamptz":
		return &Gen{Kind: "range", Lo: "2022-01-01", Hi: "2025-12-31"}, true
	case "uuid":
		return &Gen{Kind: "fake", Arg: "uuid"}, true
	case "json", "jsonb":
		return &Gen{Kind: "fixed", Fixed: map[string]any{}}, true
	}
	if strings.HasPrefix(col.TypName, "_") {
		return &Gen{Kind: "fixed", Fixed: []any{}}, true
	}
	return nil, false
}

func seedTable(ctx context.Context, tx pgx.Tx, s *Schema, t *Table, st *SeedTable, seed uint64) error {
	h := fnv.New64a()
	h.Write([]byte(t.ID()))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	unique := map[string]bool{}
	for _, ix := range t.Uniques {
		if len(ix.Columns) == 1 {
			unique[ix.Columns[0]] = true
		}
	}
	type colGen struct {
		col  Column
		gen  *Gen
		keys []string // ref / foreign key values
	}
	var cols []colGen
	for _, col := range t.Columns {
		g := st.Columns[col.Name]
		var keys []string
		ref := ""
		if g != nil && g.Kind == "ref" {
			ref = g.Arg
		} else if fk := fkOf(t, col.Name); g == nil && fk != nil && fk.RefTable != t.ID() {
			for i, c := range fk.Columns {
				if c == col.Name {
					ref = fk.RefTable + "." + fk.RefColumns[i]
				}
			}
		}
		if ref != "" {
			i := strings.LastIndex(ref, ".")
			pt := s.Tables[ref[:i]]
			q := fmt.Sprintf("SELECT %s::text FROM %s WHERE %[1]s IS NOT NULL ORDER BY 1", pgx.Identifier{ref[i+1:]}.Sanitize(), pt.Ident())
			rows, err := tx.Query(ctx, q)
			if err != nil {
				return err
			}
			if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			if len(keys) == 0 {
				return fmt.Errorf("%s: %s has no rows to refer to", col.Name, ref)
			}
			g = &Gen{Kind: "ref"}
		}
		if g == nil {
			if col.Default {
				continue
			}
			var ok bool
			if g, ok = typeGen(col); !ok {
				g = &Gen{Kind: "null"}
			}
		}
		cols = append(cols, colGen{col: col, gen: g, keys: keys})
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.col.Name
	}
	var buf bytes.Buffer
	fk := newFaker()
	for i := 0; i < st.Count; i++ {
		for j, c := range cols {
			if j > 0 {
				buf.WriteByte(',')
			}
			v, null := genValue(r, fk, c.col, c.gen, c.keys, i, unique[c.col.Name])
			if null {
				continue
			}
			buf.WriteByte('"')
			buf.WriteString(strings.ReplaceAll(v, `"`, `""`))
			buf.WriteByte('"')
		}
		buf.WriteByte('\n')
	}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, &buf, "COPY "+t.Ident()+" ("+quoteCols(names)+") FROM STDIN (FORMAT csv)")
	if err != nil {
		return err
	}
	for _, col := range t.Columns {
		if col.Sequence != "" && st.Columns[col.Name] != nil {
			q := fmt.Sprintf("SELECT setval(%s, coalesce((SELECT max(%s) FROM %s), 0) + 1, false)", quoteLiteral(col.Sequence), pgx.Identifier{col.Name}.Sanitize(), t.Ident())
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
	}
	return nil
}

// genValue is one value as text; null reports NULL. i is the row number.
func genValue(r *rand.Rand, fk *faker, col Column, g *Gen, keys []string, i int, unique bool) (string, bool) {
	switch g.Kind {
	case "null":
		return "", true
	case "ref":
		return keys[r.IntN(len(keys))], false
	case "fixed":
		if g.Fixed == nil {
			return "", true
		}
		switch x := g.Fixed.(type) {
		case map[string]any:
			b, _ := json.Marshal(x)
			return string(b), false
		case []any:
			if col.TypName == "json" || col.TypName == "jsonb" {
				b, _ := json.Marshal(x)
				return string(b), false
			}
			parts := make([]string, len(x))
			for k, e := range x {
				parts[k] = `"` + strings.ReplaceAll(fmt.Sprint(e), `"`, `\"`) + `"`
			}
			return "{" + strings.Join(parts, ",") + "}", false
		}
		return fmt.Sprint(g.Fixed), false
	case "choice":
		total := 0
		for _, w := range g.Weights {
			total += w
		}
		n := r.IntN(max(total, 1))
		for k, w := range g.Weights {
			if n < w {
				return g.Choices[k], false
			}
			n -= w
		}
		return g.Choices[len(g.Choices)-1], false
	case "template":
		return strings.ReplaceAll(g.Arg, "{i}", strconv.Itoa(i+1)), false
	case "range":
		if unique && contains(intTypes, col.TypName) {
			return strconv.Itoa(i + 1), false
		}
		lo, e1 := strconv.ParseFloat(g.Lo, 64)
		hi, _ := strconv.ParseFloat(g.Hi, 64)
		if e1 == nil {
			if contains(intTypes, col.TypName) {
				return strconv.FormatInt(int64(lo)+r.Int64N(int64(hi)-int64(lo)+1), 10), false
			}
			return strconv.FormatFloat(lo+r.Float64()*(hi-lo), 'f', 2, 64), false
		}
		a, _ := parseTime(g.Lo)
		b, _ := parseTime(g.Hi)
		t := a.Add(time.Duration(r.Int64N(int64(b.Sub(a)) + 1)))
		if col.TypName == "date" {
			return t.Format("2006-01-02"), false
		}
		return t.UTC().Format(time.RFC3339), false
	case "fake":
		var d [32]byte
		for k := 0; k < 4; k++ {
			binary.BigEndian.PutUint64(d[k*8:], r.Uint64())
		}
		var v string
		if g.Arg == "uuid" {
			d[6] = d[6]&0x0f | 0x40
			d[8] = d[8]&0x3f | 0x80
			v = fmt.Sprintf("%x-%x-%x-%x-%x", d[0:4], d[4:6], d[6:8], d[8:10], d[10:16])
		} else {
			v = fk.fake(g.Arg, d)
		}
		if unique && g.Arg != "email" && g.Arg != "username" && g.Arg != "url" && g.Arg != "uuid" {
			v += "-" + strconv.Itoa(i+1)
		}
		if m := varcharLen().FindStringSubmatch(col.Type); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 && len([]rune(v)) > n {
				v = string([]rune(v)[:n])
			}
		}
		return v, false
	}
	return "", true
}
