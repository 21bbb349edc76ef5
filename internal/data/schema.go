package data

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Column is one column of a table.
type Column struct {
	Name     string
	Num      int
	Type     string // format_type: character varying(40), numeric(10,2), …
	OID      uint32
	TypName  string // pg_type.typname: int4, text, _text, …
	Category string // pg_type.typcategory: S string, N numeric, D date/time, …
	NotNull  bool
	Default  bool // has a default or is an identity column
	Sequence string
}

// Table is one ordinary table with what copy and seed need of it.
type Table struct {
	Schema, Name string
	Columns      []Column
	PrimaryKey   []string
	Uniques      []Index
	ForeignKeys  []ForeignKey
	// Partitioned is a declaratively partitioned parent: copied through the
	// parent (rows are routed to the target's partitions); Partitions are
	// its partitions, all levels, as schema-qualified names.
	Partitioned bool
	Partitions  []string
}

// Index is a unique index over plain columns.
type Index struct {
	Name    string
	Columns []string
}

// ForeignKey is a reference from Columns to RefTable's RefColumns.
type ForeignKey struct {
	Name       string
	Columns    []string
	RefTable   string
	RefColumns []string
	Def        string
	Validated  bool // every row is known to satisfy it (not NOT VALID)
}

// ID is the table's name in rules and output: table for the public schema,
// schema.table otherwise.
func (t *Table) ID() string {
	if t.Schema == "public" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Ident is the quoted qualified name for SQL.
func (t *Table) Ident() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// Column returns the named column.
func (t *Table) Column(name string) (*Column, bool) {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i], true
		}
	}
	return nil, false
}

// Schema is a database's user tables by ID.
type Schema struct {
	Tables map[string]*Table
}

// Names lists the tables, sorted.
func (s *Schema) Names() []string {
	out := make([]string, 0, len(s.Tables))
	for n := range s.Tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Querier is what Inspect needs of a connection or transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Inspect reads the user tables of the database: columns, keys, unique
// indexes, foreign keys and sequences.
func Inspect(ctx context.Context, q Querier) (*Schema, error) {
	s := &Schema{Tables: map[string]*Table{}}
	id := func(schema, name string) string {
		if schema == "public" {
			return name
		}
		return schema + "." + name
	}
	rows, err := q.Query(ctx, `
SELECT n.nspname, c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.atttypid,
       t.typname, t.typcategory, a.attnotnull, (a.atthasdef OR a.attidentity <> ''),
       coalesce(pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
  AND n.nspname NOT LIKE 'envplane\_%'
ORDER BY n.nspname, c.relname, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("reading the schema: %w", err)
	}
	for rows.Next() {
		var sch, tbl string
		var c Column
		var cat byte
		if err := rows.Scan(&sch, &tbl, &c.Name, &c.Num, &c.Type, &c.OID, &c.TypName, &cat, &c.NotNull, &c.Default, &c.Sequence); err != nil {
			rows.Close()
			return nil, err
		}
		c.Category = string(rune(cat))
		t := s.Tables[id(sch, tbl)]
		if t == nil {
			t = &Table{Schema: sch, Name: tbl}
			s.Tables[id(sch, tbl)] = t
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the schema: %w", err)
	}
	rows, err = q.Query(ctx, `
SELECT n.nspname, c.relname, ic.relname, i.indisprimary,
       array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord),
       (0 = ANY (i.indkey::int2[])) OR i.indpred IS NOT NULL
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisunique AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("reading indexes: %w", err)
	}
	for rows.Next() {
		var sch, tbl, name string
		var primary, partial bool
		var cols []string
		if err := rows.Scan(&sch, &tbl, &name, &primary, &cols, &partial); err != nil {
			rows.Close()
			return nil, err
		}
		t := s.Tables[id(sch, tbl)]
		if t == nil {
			continue
		}
		if primary {
			t.PrimaryKey = cols
		}
		if !partial {
			t.Uniques = append(t.Uniques, Index{Name: name, Columns: cols})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading indexes: %w", err)
	}
	rows, err = q.Query(ctx, `
SELECT n.nspname, c.relname, con.conname,
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord),
       fn.nspname, fc.relname,
       array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord),
       pg_get_constraintdef(con.oid), con.convalidated
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class fc ON fc.oid = con.confrelid
JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND NOT c.relispartition
ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("reading foreign keys: %w", err)
	}
	for rows.Next() {
		var sch, tbl, fsch, ftbl string
		var fk ForeignKey
		if err := rows.Scan(&sch, &tbl, &fk.Name, &fk.Columns, &fsch, &ftbl, &fk.RefColumns, &fk.Def, &fk.Validated); err != nil {
			rows.Close()
			return nil, err
		}
		fk.RefTable = id(fsch, ftbl)
		if t := s.Tables[id(sch, tbl)]; t != nil {
			t.ForeignKeys = append(t.ForeignKeys, fk)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading foreign keys: %w", err)
	}
	// Partitioned parents and their partitions (every level below them).
	rows, err = q.Query(ctx, `
SELECT n.nspname, c.relname,
       array(SELECT pn.nspname || '.' || pc.relname FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE t.relid <> c.oid ORDER BY t.level, 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'p' AND NOT c.relispartition
ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("reading partitions: %w", err)
	}
	for rows.Next() {
		var sch, tbl string
		var parts []string
		if err := rows.Scan(&sch, &tbl, &parts); err != nil {
			rows.Close()
			return nil, err
		}
		if t := s.Tables[id(sch, tbl)]; t != nil {
			t.Partitioned, t.Partitions = true, parts
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading partitions: %w", err)
	}
	return s, nil
}

// Order sorts tables parents first (by their foreign keys among names);
// cycles keep the order they are given in.
func (s *Schema) Order(names []string) []string {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	done := map[string]bool{}
	var out []string
	for len(out) < len(names) {
		progressed := false
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, fk := range s.Tables[n].ForeignKeys {
				if fk.RefTable != n && in[fk.RefTable] && !done[fk.RefTable] {
					ready = false
				}
			}
			if ready {
				done[n], progressed = true, true
				out = append(out, n)
			}
		}
		if !progressed { // a cycle: take the rest as they are
			for _, n := range names {
				if !done[n] {
					done[n] = true
					out = append(out, n)
				}
			}
		}
	}
	return out
}

func quoteCols(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}
