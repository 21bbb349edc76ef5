package data

import (
	"context"

	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
)

// ColumnPlan is one source column with its rule (nil: unclassified) and
// what envplane would suggest for it.
type ColumnPlan struct {
	Table   string
	Column  Column
	Rule    *Rule
	Suggest string
	Why     string
}

// Classification is every column of the copied tables with its rule.
type Classification struct {
	Tables  []string // parents first
	Columns map[string][]ColumnPlan
	// Partitions are a partitioned table's partitions: it is copied through
	// the parent, its rules apply to every partition's rows, and each row
	// lands in the target's partition for it.
	Partitions map[string][]string
	// Problems are rules that do not fit the source: unknown tables and
	// columns, rules for the wrong type, foreign keys whose rules differ.
	Problems diag.List
}

// Unclassified lists the columns without a rule.
func (c *Classification) Unclassified() []ColumnPlan {
	var out []ColumnPlan
	for _, t := range c.Tables {
		for _, cp := range c.Columns[t] {
			if cp.Rule == nil {
				out = append(out, cp)
			}
		}
	}
	return out
}

// Classify gives every column of tables (all of src when empty) its rule
// from rules, a referencing column the rule of the column it references,
// and checks the rules against src. samples, when given, are sampled
// values by table.column for suggestions.
func Classify(src *Schema, rules *Rules, tables []string, samples map[string][]string) *Classification {
	c := &Classification{Columns: map[string][]ColumnPlan{}, Partitions: map[string][]string{}}
	for tn, t := range src.Tables {
		if t.Partitioned {
			c.Partitions[tn] = t.Partitions
		}
	}
	if len(tables) == 0 {
		tables = src.Names()
	}
	for _, t := range tables {
		if src.Tables[t] == nil {
			c.Problems = append(c.Problems, diag.Errorf(diag.Pos{}, "--tables: %s is no table of the source database%s", t, didYouMean(t, src.Names())))
		}
	}
	if rules != nil {
		for _, tn := range sortedKeys(rules.Tables) {
			st := src.Tables[tn]
			if st == nil {
				c.Problems = append(c.Problems, diag.Errorf(rules.TablePos[tn], "table %s: not in the source database%s", tn, didYouMean(tn, src.Names())))
				continue
			}
			for _, cn := range sortedKeys(rules.Tables[tn]) {
				if _, ok := st.Column(cn); !ok {
					names := make([]string, len(st.Columns))
					for i, col := range st.Columns {
						names[i] = col.Name
					}
					c.Problems = append(c.Problems, diag.Errorf(rules.Tables[tn][cn].Pos, "%s.%s: no such column in the source%s", tn, cn, didYouMean(cn, names)))
				}
			}
		}
	}
	var known []string
	for _, t := range tables {
		if src.Tables[t] != nil {
			known = append(known, t)
		}
	}
	c.Tables = src.Order(known)
	for _, tn := range c.Tables {
		t := src.Tables[tn]
		for _, col := range t.Columns {
			cp := ColumnPlan{Table: tn, Column: col, Rule: rules.Rule(tn, col.Name)}
			cp.Suggest, cp.Why = Suggest(t, col, samples[tn+"."+col.Name])
			if parent, from, fk := followed(src, rules, t, col.Name); parent != nil {
				switch {
				case cp.Rule == nil:
					r := *parent
					r.From = from
					cp.Rule = &r
					if pc := refColumn(src, from); parent.Kind == Hash && parent.Arg == "int" && pc != nil && pc.TypName != col.TypName {
						c.Problems = append(c.Problems, diag.Errorf(parent.Pos, "%s.%s (%s) follows %s of %s (%s): {hash: int} fills the column's width, so the two would not join; give both columns the same type or use another rule",
							tn, col.Name, col.Type, parent, from, pc.Type))
					}
				case parent.Kind != Keep && cp.Rule.String() != parent.String():
					c.Problems = append(c.Problems, diag.Errorf(cp.Rule.Pos, "%s.%s: rule %s differs from %s of %s, which it references (%s): the join would break; give it the same rule or leave it out to follow",
						tn, col.Name, cp.Rule, parent, from, fk))
				}
			}
			if cp.Rule != nil && cp.Rule.From == "" {
				if msg := fits(cp.Rule, t, col); msg != "" {
					c.Problems = append(c.Problems, diag.Errorf(cp.Rule.Pos, "%s.%s (%s): %s", tn, col.Name, col.Type, msg))
				}
			}
			c.Columns[tn] = append(c.Columns[tn], cp)
		}
		c.Problems = append(c.Problems, collisions(t, c.Columns[tn])...)
	}
	return c
}

// followed is the rule of the column col references, if any.
func followed(src *Schema, rules *Rules, t *Table, col string) (*Rule, string, string) {
	for _, fk := range t.ForeignKeys {
		for i, fc := range fk.Columns {
			if fc != col || i >= len(fk.RefColumns) {
				continue
			}
			if r := rules.Rule(fk.RefTable, fk.RefColumns[i]); r != nil {
				return r, fk.RefTable + "." + fk.RefColumns[i], fk.Name
			}
		}
	}
	return nil, "", ""
}

// refColumn is the column "table.column" names.
func refColumn(s *Schema, ref string) *Column {
	i := strings.LastIndex(ref, ".")
	if i < 0 || s.Tables[ref[:i]] == nil {
		return nil
	}
	c, _ := s.Tables[ref[:i]].Column(ref[i+1:])
	return c
}

var intTypes = []string{"int2", "int4", "int8"}

// fits says why a rule cannot apply to a column's type ("" when it can).
func fits(r *Rule, t *Table, col Column) string {
	text := col.Category == "S"
	switch r.Kind {
	case Fake, Mask:
		if !text {
			return fmt.Sprintf("%s makes text; the column is not text (use fixed, null, noise or hash)", r)
		}
	case Template:
		if !text {
			return fmt.Sprintf("%s makes text; the column is not text", r)
		}
		if _, err := parseTemplate(r.Arg, t.Columns); err != nil {
			return err.Error()
		}
	case Hash:
		switch {
		case r.Arg == "uuid" && (text || col.TypName == "uuid"):
		case r.Arg == "int" && (text || contains(intTypes, col.TypName)):
		case (r.Arg == "hex" || r.Arg == "email") && text:
		default:
			return fmt.Sprintf("%s does not fit the column's type (hex and email need text, uuid a uuid or text, int an integer or text)", r)
		}
	case Noise:
		if r.Dur > 0 && !contains([]string{"date", "timestamp", "timestamptz"}, col.TypName) {
			return fmt.Sprintf("%s moves dates and timestamps; for numbers give a fraction like {noise: 0.1}", r)
		}
		if r.Frac > 0 && !contains([]string{"int2", "int4", "int8", "float4", "float8", "numeric"}, col.TypName) {
			return fmt.Sprintf("%s changes numbers; for dates and timestamps give an interval like {noise: 365d}", r)
		}
	case Null:
		if col.NotNull {
			return "null: the column is NOT NULL"
		}
	}
	return ""
}

// lossy says whether a rule can map two distinct values to one.
func lossy(r *Rule, col Column) bool {
	switch r.Kind {
	case Keep, Null:
		return false
	case Fake:
		return !contains([]string{"email", "username", "url"}, r.Arg)
	case Hash:
		return r.Arg == "int" && (col.TypName == "int2" || col.TypName == "int4")
	}
	return true // mask, noise, fixed, template
}

// collisions reports unique indexes a transformer could make collide.
func collisions(t *Table, cols []ColumnPlan) diag.List {
	var out diag.List
	byName := map[string]ColumnPlan{}
	for _, cp := range cols {
		byName[cp.Column.Name] = cp
	}
	for _, ix := range t.Uniques {
		safe := false
		var culprit *ColumnPlan
		for _, cn := range ix.Columns {
			cp := byName[cn]
			if cp.Rule == nil || !lossy(cp.Rule, cp.Column) {
				safe = true
				continue
			}
			if culprit == nil {
				culprit = &cp
			}
		}
		if culprit != nil && !safe {
			pos := culprit.Rule.Pos
			out = append(out, diag.Errorf(pos, "%s.%s: unique index %s (%s): %s can map two values to one; use keep, {hash: …} or {fake: email}",
				t.ID(), culprit.Column.Name, ix.Name, strings.Join(ix.Columns, ", "), culprit.Rule))
		}
	}
	return out
}

// Rank orders data classes: a copy into a lower class needs every column
// classified.
func Rank(c domain.DataClass) int {
	switch c {
	case domain.DataSynthetic:
		return 0
	case domain.DataAnonymized:
		return 1
	case domain.DataProductionLike:
		return 2
	case domain.DataLive:
		return 3
	}
	return 0
}

// Endpoint is one side of a copy: an environment and its database.
type Endpoint struct {
	Env   string
	Class domain.DataClass
	URL   string
	// Key is the config key the URL came from, for messages.
	Key string
}

// CheckCopy is every reason a copy from → to must not start: a live target,
// unclassified columns into a lower class, and a target schema that does
// not fit. dst may be nil when the target could not be inspected.
func CheckCopy(c *Classification, src, dst *Schema, from, to Endpoint, rules *Rules) diag.List {
	out := append(diag.List(nil), c.Problems...)
	ws := diag.Pos{File: "envplane.yaml"}
	rpos := diag.Pos{}
	if rules != nil {
		rpos = diag.Pos{File: rules.File}
	}
	if to.Class == domain.DataLive {
		out = append(out, diag.Errorf(ws, "environment %s holds live data: envplane never copies into it", to.Env))
	}
	if from.Env == to.Env {
		out = append(out, diag.Errorf(ws, "source and target are the same environment %s", to.Env))
	} else if sameURL(from.URL, to.URL) {
		out = append(out, diag.Errorf(ws, "%s and %s have the same database (%s): a copy would overwrite its own source", from.Env, to.Env, to.Key))
	}
	if Rank(to.Class) < Rank(from.Class) {
		for _, cp := range c.Unclassified() {
			out = append(out, diag.Errorf(rpos, "%s.%s (%s): no rule, and %s (%s) is a lower data class than %s (%s); suggested: %s%s",
				cp.Table, cp.Column.Name, cp.Column.Type, to.Env, to.Class, from.Env, from.Class, cp.Suggest, why(cp.Why)))
		}
	}
	if dst != nil {
		out = append(out, fit(c, src, dst)...)
	}
	return out
}

func why(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// fit is every way the target's tables differ from what the copy writes.
func fit(c *Classification, src, dst *Schema) diag.List {
	var out diag.List
	at := diag.Pos{}
	copied := map[string]bool{}
	for _, tn := range c.Tables {
		copied[tn] = true
	}
	for _, tn := range c.Tables {
		dt := dst.Tables[tn]
		if dt == nil {
			out = append(out, diag.Errorf(at, "target: table %s is missing", tn))
			continue
		}
		seen := map[string]bool{}
		for _, cp := range c.Columns[tn] {
			seen[cp.Column.Name] = true
			dc, ok := dt.Column(cp.Column.Name)
			switch {
			case !ok:
				out = append(out, diag.Errorf(at, "target: column %s.%s is missing (expected %s)", tn, cp.Column.Name, cp.Column.Type))
			case dc.Type != cp.Column.Type:
				out = append(out, diag.Errorf(at, "target: column %s.%s is %s; the source's is %s", tn, cp.Column.Name, dc.Type, cp.Column.Type))
			case dc.NotNull && cp.Rule != nil && cp.Rule.Kind == Null:
				out = append(out, diag.Errorf(cp.Rule.Pos, "target: column %s.%s is NOT NULL; the rule null empties it", tn, cp.Column.Name))
			case dc.NotNull && !cp.Column.NotNull && (cp.Rule == nil || cp.Rule.Kind != Fixed || cp.Rule.Fixed == nil):
				out = append(out, diag.Errorf(at, "target: column %s.%s is NOT NULL; the source's may be NULL", tn, cp.Column.Name))
			}
		}
		for _, dc := range dt.Columns {
			if !seen[dc.Name] && dc.NotNull && !dc.Default {
				out = append(out, diag.Errorf(at, "target: column %s.%s is NOT NULL without a default and not in the source", tn, dc.Name))
			}
		}
		for _, ix := range dt.Uniques {
			if hasIndex(src, tn, ix) {
				continue
			}
			cols := map[string]ColumnPlan{}
			for _, cp := range c.Columns[tn] {
				cols[cp.Column.Name] = cp
			}
			for _, cn := range ix.Columns {
				if cp, ok := cols[cn]; ok && cp.Rule != nil && lossy(cp.Rule, cp.Column) {
					out = append(out, diag.Errorf(cp.Rule.Pos, "target: %s.%s: unique index %s is only in the target; %s can map two values to one", tn, cn, ix.Name, cp.Rule))
					break
				}
			}
		}
	}
	for _, tn := range dst.Names() {
		if copied[tn] {
			continue
		}
		for _, fk := range dst.Tables[tn].ForeignKeys {
			if copied[fk.RefTable] {
				out = append(out, diag.Errorf(at, "target: table %s references %s (%s) but is not copied: copy it too, or its rows would point at rows that are gone", tn, fk.RefTable, fk.Name))
			}
		}
	}
	return out
}

// hasIndex reports whether the source has a unique index over ix's
// columns, which Classify already checked.
func hasIndex(src *Schema, tn string, ix Index) bool {
	if src == nil || src.Tables[tn] == nil {
		return false
	}
	for _, s := range src.Tables[tn].Uniques {
		if strings.Join(s.Columns, ",") == strings.Join(ix.Columns, ",") {
			return true
		}
	}
	return false
}

// sameURL compares two database URLs by host, port and database name.
func sameURL(a, b string) bool {
	ka, errA := urlKey(a)
	kb, errB := urlKey(b)
	return errA == nil && errB == nil && ka == kb
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PlanSource connects to the source, samples its text columns and
// classifies every column of tables (all when empty).
func PlanSource(ctx context.Context, from Endpoint, rules *Rules, tables []string) (*Classification, error) {
	c, err := Connect(ctx, from)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	s, err := Inspect(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from.Env, err)
	}
	samples := map[string][]string{}
	for _, tn := range s.Names() {
		t := s.Tables[tn]
		for _, col := range t.Columns {
			if col.Category != "S" || rules.Rule(tn, col.Name) != nil {
				continue
			}
			q := fmt.Sprintf("SELECT %s::text FROM %s WHERE %[1]s IS NOT NULL LIMIT 50", pgx.Identifier{col.Name}.Sanitize(), t.Ident())
			rows, err := c.Query(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("%s: sampling %s.%s: %w", from.Env, tn, col.Name, err)
			}
			vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return nil, fmt.Errorf("%s: sampling %s.%s: %w", from.Env, tn, col.Name, err)
			}
			samples[tn+"."+col.Name] = vals
		}
	}
	return Classify(s, rules, tables, samples), nil
}
