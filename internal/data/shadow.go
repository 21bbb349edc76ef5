package data

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envplane/envplane/internal/diag"
)

// An atomic copy loads every table into shadow schemas (one per target
// schema, named envplane_shadow_…, which Inspect never lists) built like
// the target's tables, validates them there, and swaps them in with one
// short transaction: the old tables are dropped and the shadow tables moved
// into their schemas. Until then readers of the target see the old rows;
// on an error or interruption the shadow schemas are dropped and the
// target is as it was.

// A copy holds a session advisory lock on its shadow tag while it runs, so
// a shadow schema whose lock nobody holds was left by a copy that was
// killed (its connection gone) before it could drop it.

const shadowPrefix = "envplane_shadow_"

func shadowLockKey(tag string) string { return shadowPrefix + tag }

// ShadowSchema is a shadow schema found in a target.
type ShadowSchema struct {
	Name    string
	Comment string // which copy made it, and when
	Live    bool   // a running copy holds it
}

// findShadows lists the target's shadow schemas, each stale or live.
func findShadows(ctx context.Context, c *pgx.Conn) ([]ShadowSchema, error) {
	rows, err := c.Query(ctx, `SELECT nspname, coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace
WHERE nspname LIKE 'envplane\_shadow\_%' ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	var out []ShadowSchema
	for rows.Next() {
		var s ShadowSchema
		if err := rows.Scan(&s.Name, &s.Comment); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		tag, _, _ := strings.Cut(strings.TrimPrefix(out[i].Name, shadowPrefix), "_")
		var got bool
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", shadowLockKey(tag)).Scan(&got); err != nil {
			return nil, err
		}
		if got {
			if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock(hashtext($1))", shadowLockKey(tag)); err != nil {
				return nil, err
			}
		}
		out[i].Live = !got
	}
	return out, nil
}

// liveShadowProblems refuses a copy into a target that a running atomic
// copy will swap tables into.
func liveShadowProblems(shadows []ShadowSchema, env string) diag.List {
	var out diag.List
	for _, s := range shadows {
		if s.Live {
			out = append(out, diag.Errorf(diag.Pos{}, "%s: another --atomic copy into %s is running (shadow schema %s: %s): wait for it to end", env, env, s.Name, s.Comment))
		}
	}
	return out
}

// dropStaleShadows drops the shadow schemas left by killed copies, saying
// which.
func (j *CopyJob) dropStaleShadows(ctx context.Context) error {
	for _, s := range j.shadows {
		if s.Live {
			continue
		}
		if _, err := j.dst.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s.Name}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("%s: dropping shadow schema %s, left by an interrupted --atomic copy: %w (drop it with: DROP SCHEMA %s CASCADE)", j.To.Env, s.Name, err, pgx.Identifier{s.Name}.Sanitize())
		}
		if j.opts.Notice != nil {
			what := s.Comment
			if what == "" {
				what = "an --atomic copy"
			}
			j.opts.Notice(fmt.Sprintf("%s: dropped shadow schema %s left behind by an interrupted copy (%s)", j.To.Env, s.Name, what))
		}
	}
	j.shadows = nil
	return nil
}

// shadowTable is what the shadow of one target table needs.
type shadowTable struct {
	id       string // the table's ID (rules, output)
	qn       string // the target table as pg_get_*def prints it (schema-qualified)
	ident    string // the shadow table, quoted
	schema   string // the target schema
	indexes  []string
	fkeys    []string
	triggers []string
	grants   []string
	owner    string
	parts    []shadowPart // a partitioned table's partitions, parents first
}

// shadowPart is the shadow of one partition of a partitioned table.
type shadowPart struct {
	ident  string // quoted, in a shadow schema
	schema string // where the partition lives in the target
}

type shadow struct {
	tag     string
	schemas map[string]string // target schema → shadow schema
	tables  []*shadowTable
	byID    map[string]*shadowTable
}

// shadowProblems lists what an atomic copy cannot carry over: views and
// rules over a copied table (they would block the swap) and row security
// policies (not recreated).
func shadowProblems(ctx context.Context, c *pgx.Conn, dst *Schema, tables []string, env string) diag.List {
	var idents []string
	for _, tn := range tables {
		if t, ok := dst.Tables[tn]; ok {
			idents = append(idents, t.Ident())
		}
	}
	rows, err := c.Query(ctx, `
SELECT t.oid::regclass::text, 'view or rule ' || v.oid::regclass::text
FROM unnest($1::text[]) x(name) JOIN pg_class t ON t.oid = x.name::regclass
JOIN pg_depend d ON d.refobjid = t.oid AND d.classid = 'pg_rewrite'::regclass
JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
WHERE v.oid <> t.oid
UNION
SELECT t.oid::regclass::text, 'row security policy ' || p.polname
FROM unnest($1::text[]) x(name) JOIN pg_class t ON t.oid = x.name::regclass
JOIN pg_policy p ON p.polrelid = t.oid
ORDER BY 1, 2`, idents)
	if err != nil {
		return diag.List{diag.Errorf(diag.Pos{}, "%s: checking what depends on the copied tables: %s", env, err)}
	}
	var out diag.List
	for rows.Next() {
		var tbl, what string
		if err := rows.Scan(&tbl, &what); err != nil {
			return diag.List{diag.Errorf(diag.Pos{}, "%s: %s", env, err)}
		}
		out = append(out, diag.Errorf(diag.Pos{}, "%s: --atomic swaps table %s for a new one; %s depends on it: copy without --atomic", env, tbl, what))
	}
	if err := rows.Err(); err != nil {
		return diag.List{diag.Errorf(diag.Pos{}, "%s: %s", env, err)}
	}
	return out
}

// buildShadow creates the shadow schemas and, in each, an empty table like
// each copied target table (columns, defaults, identity, generated
// columns, CHECK and NOT NULL constraints, storage, comments) with its own
// sequences; indexes, keys, triggers and grants come after the load.
func (j *CopyJob) buildShadow(ctx context.Context) (*shadow, error) {
	b := make([]byte, 4)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	sh := &shadow{schemas: map[string]string{}, byID: map[string]*shadowTable{}, tag: tag}
	// Held for as long as this connection lives: until the copy ends, or
	// its process does.
	if _, err := j.dst.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", shadowLockKey(tag)); err != nil {
		return nil, err
	}
	comment := fmt.Sprintf("envplane data copy --atomic from %s, started %s", j.From.Env, time.Now().UTC().Format(time.RFC3339))
	tx, err := j.dst.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	// Every name pg_get_*def prints is schema-qualified.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO pg_catalog"); err != nil {
		return nil, err
	}
	schemaFor := func(target string) (string, error) {
		if name, ok := sh.schemas[target]; ok {
			return name, nil
		}
		name := fmt.Sprintf("%s%s_%d", shadowPrefix, tag, len(sh.schemas)+1)
		sh.schemas[target] = name
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", err
		}
		_, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+pgx.Identifier{name}.Sanitize()+" IS "+quoteLiteral(comment))
		return name, err
	}
	for _, tn := range j.Class.Tables {
		t := j.Dst.Tables[tn]
		if _, err := schemaFor(t.Schema); err != nil {
			return nil, err
		}
		st := &shadowTable{id: tn, schema: t.Schema, ident: pgx.Identifier{sh.schemas[t.Schema], t.Name}.Sanitize()}
		sh.tables = append(sh.tables, st)
		sh.byID[tn] = st
	}
	q := func(sql string, args []any, scan func(pgx.Rows) error) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	for _, st := range sh.tables {
		t := j.Dst.Tables[st.id]
		var oid uint32
		if err := tx.QueryRow(ctx, `SELECT c.oid, c.oid::regclass::text, pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = $1::regclass`, t.Ident()).Scan(&oid, &st.qn, &st.owner); err != nil {
			return nil, fmt.Errorf("%s: %w", st.id, err)
		}
		create := "CREATE TABLE " + st.ident + " (LIKE " + t.Ident() + " INCLUDING ALL EXCLUDING INDEXES EXCLUDING STATISTICS)"
		if t.Partitioned {
			var key string
			if err := tx.QueryRow(ctx, "SELECT pg_get_partkeydef($1)", oid).Scan(&key); err != nil {
				return nil, fmt.Errorf("%s: %w", st.id, err)
			}
			create += " PARTITION BY " + key
		}
		if _, err := tx.Exec(ctx, create); err != nil {
			return nil, fmt.Errorf("%s: creating its shadow: %w", st.id, err)
		}
		if t.Partitioned {
			// The partitions, level by level, each under its parent's shadow.
			var parts []struct {
				oid, parent              uint32
				schema, name, bound, key string
			}
			err := q(`SELECT p.relid::oid, p.parentrelid::oid, n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid), coalesce(pg_get_partkeydef(c.oid), '')
FROM pg_partition_tree($1) p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.relid <> $1::oid ORDER BY p.level, c.relname`, []any{oid}, func(r pgx.Rows) error {
				var x struct {
					oid, parent              uint32
					schema, name, bound, key string
				}
				if err := r.Scan(&x.oid, &x.parent, &x.schema, &x.name, &x.bound, &x.key); err != nil {
					return err
				}
				parts = append(parts, x)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("%s: partitions: %w", st.id, err)
			}
			idents := map[uint32]string{oid: st.ident}
			for _, x := range parts {
				ss, err := schemaFor(x.schema)
				if err != nil {
					return nil, err
				}
				ident := pgx.Identifier{ss, x.name}.Sanitize()
				idents[x.oid] = ident
				stmt := "CREATE TABLE " + ident + " PARTITION OF " + idents[x.parent] + " " + x.bound
				if x.key != "" {
					stmt += " PARTITION BY " + x.key
				}
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return nil, fmt.Errorf("%s: creating the shadow of partition %s: %w", st.id, x.name, err)
				}
				st.parts = append(st.parts, shadowPart{ident: ident, schema: x.schema})
			}
		}
		// Serial columns get a sequence of their own (identity columns got one from LIKE).
		err := q(`SELECT a.attname, s.relname, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart, q.seqcache, q.seqcycle
FROM pg_attribute a JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_sequence q ON q.seqrelid = s.oid
WHERE a.attrelid = $1 AND a.attidentity = ''`, []any{oid}, func(r pgx.Rows) error {
			var col, seq, typ string
			var inc, mn, mx, start, cache int64
			var cycle bool
			if err := r.Scan(&col, &seq, &typ, &inc, &mn, &mx, &start, &cache, &cycle); err != nil {
				return err
			}
			cyc := "NO CYCLE"
			if cycle {
				cyc = "CYCLE"
			}
			sq := pgx.Identifier{sh.schemas[st.schema], seq}.Sanitize()
			st.indexes = append([]string{
				fmt.Sprintf("CREATE SEQUENCE %s AS %s INCREMENT BY %d MINVALUE %d MAXVALUE %d START WITH %d CACHE %d %s OWNED BY %s.%s",
					sq, typ, inc, mn, mx, start, cache, cyc, st.ident, pgx.Identifier{col}.Sanitize()),
				fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval(%s::regclass)", st.ident, pgx.Identifier{col}.Sanitize(), quoteLiteral(sq)),
			}, st.indexes...)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: sequences: %w", st.id, err)
		}
		for _, s := range st.indexes { // the sequences, before the load
			if _, err := tx.Exec(ctx, s); err != nil {
				return nil, fmt.Errorf("%s: %w", st.id, err)
			}
		}
		st.indexes = nil
		on, only := " ON "+st.qn+" ", " ON ONLY "+st.qn+" "
		err = q(`SELECT pg_get_indexdef(i.indexrelid), coalesce(c.conname, ''), coalesce(pg_get_constraintdef(c.oid), '')
FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')
WHERE i.indrelid = $1 ORDER BY i.indexrelid`, []any{oid}, func(r pgx.Rows) error {
			var def, con, condef string
			if err := r.Scan(&def, &con, &condef); err != nil {
				return err
			}
			if con != "" {
				st.indexes = append(st.indexes, "ALTER TABLE "+st.ident+" ADD CONSTRAINT "+pgx.Identifier{con}.Sanitize()+" "+condef)
			} else if strings.Contains(def, on) {
				st.indexes = append(st.indexes, strings.Replace(def, on, " ON "+st.ident+" ", 1))
			} else if strings.Contains(def, only) { // a partitioned index: built on every partition
				st.indexes = append(st.indexes, strings.Replace(def, only, " ON "+st.ident+" ", 1))
			} else {
				return fmt.Errorf("cannot rebuild index %q", def)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: indexes: %w", st.id, err)
		}
		err = q(`SELECT c.conname, pg_get_constraintdef(c.oid), c.confrelid::regclass::text FROM pg_constraint c WHERE c.conrelid = $1 AND c.contype = 'f' ORDER BY c.conname`,
			[]any{oid}, func(r pgx.Rows) error {
				var name, def, ref string
				if err := r.Scan(&name, &def, &ref); err != nil {
					return err
				}
				st.fkeys = append(st.fkeys, name+"\x00"+def+"\x00"+ref)
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("%s: foreign keys: %w", st.id, err)
		}
		err = q(`SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname`, []any{oid}, func(r pgx.Rows) error {
			var def string
			if err := r.Scan(&def); err != nil {
				return err
			}
			if !strings.Contains(def, on) {
				return fmt.Errorf("cannot rebuild trigger %q", def)
			}
			st.triggers = append(st.triggers, strings.Replace(def, on, " ON "+st.ident+" ", 1))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: triggers: %w", st.id, err)
		}
		err = q(`SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, a.privilege_type, a.is_grantable
FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = $1`, []any{oid}, func(r pgx.Rows) error {
			var who, priv string
			var opt bool
			if err := r.Scan(&who, &priv, &opt); err != nil {
				return err
			}
			g := "GRANT " + priv + " ON " + st.ident + " TO " + who
			if opt {
				g += " WITH GRANT OPTION"
			}
			st.grants = append(st.grants, g)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: grants: %w", st.id, err)
		}
	}
	// Foreign keys between copied tables point at the shadows.
	for _, st := range sh.tables {
		for i, f := range st.fkeys {
			p := strings.SplitN(f, "\x00", 3)
			def := p[1]
			for _, other := range sh.tables {
				if other.qn == p[2] {
					def = strings.Replace(def, "REFERENCES "+p[2]+"(", "REFERENCES "+other.ident+"(", 1)
				}
			}
			st.fkeys[i] = "ALTER TABLE " + st.ident + " ADD CONSTRAINT " + pgx.Identifier{p[0]}.Sanitize() + " " + def
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return sh, nil
}

// validate builds the shadow tables' keys and indexes, resets their
// sequences and checks their foreign keys: every check a swap depends on
// happens here, while the target is untouched.
func (j *CopyJob) validateShadow(ctx context.Context, sh *shadow) error {
	if err := j.afterLoad(ctx, j.dst, func(tn string) string {
		if st, ok := sh.byID[tn]; ok {
			return st.ident
		}
		return j.Dst.Tables[tn].Ident()
	}, true); err != nil {
		return err
	}
	tx, err := j.dst.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	var me string
	if err := tx.QueryRow(ctx, "SELECT current_user").Scan(&me); err != nil {
		return err
	}
	// Index builds sort in memory up to this (the server's, for this
	// transaction only); the default 64MB spills large tables to disk.
	if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return err
	}
	// Keys first (a foreign key needs its parent's), then the rest.
	for step := 0; step < 3; step++ {
		for _, st := range sh.tables {
			var stmts []string
			switch step {
			case 0:
				stmts = st.indexes
			case 1:
				stmts = st.fkeys
			case 2:
				stmts = st.triggers
				if st.owner != me {
					stmts = append(stmts, "ALTER TABLE "+st.ident+" OWNER TO "+pgx.Identifier{st.owner}.Sanitize())
					for _, p := range st.parts {
						stmts = append(stmts, "ALTER TABLE "+p.ident+" OWNER TO "+pgx.Identifier{st.owner}.Sanitize())
					}
				}
				stmts = append(stmts, st.grants...)
			}
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("%s: %s: %w", j.To.Env, st.id, err)
				}
			}
		}
	}
	return tx.Commit(ctx)
}

// swap drops the old tables and moves the shadows into their place in one
// transaction; it waits at most a few seconds for the tables' locks, and
// tries again a few times.
//
// Once begun, the swap is not interrupted (a commit whose answer is lost
// may have happened): it takes at most a few seconds.
func (j *CopyJob) swap(ctx context.Context, sh *shadow) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	var err error
	for try := 0; try < 5; try++ {
		if err = j.swapOnce(ctx, sh); err == nil {
			return nil
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55P03" { // lock_not_available
			break
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	return fmt.Errorf("%s: swapping the copied tables in: %w", j.To.Env, err)
}

func (j *CopyJob) swapOnce(ctx context.Context, sh *shadow) error {
	tx, err := j.dst.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	stmts := []string{"SET LOCAL lock_timeout = '3s'"}
	var old []string
	for _, st := range sh.tables {
		old = append(old, j.Dst.Tables[st.id].Ident())
	}
	stmts = append(stmts, "DROP TABLE "+strings.Join(old, ", "))
	for _, st := range sh.tables {
		stmts = append(stmts, "ALTER TABLE "+st.ident+" SET SCHEMA "+pgx.Identifier{st.schema}.Sanitize())
		for _, p := range st.parts {
			stmts = append(stmts, "ALTER TABLE "+p.ident+" SET SCHEMA "+pgx.Identifier{p.schema}.Sanitize())
		}
	}
	for _, s := range sh.schemas {
		stmts = append(stmts, "DROP SCHEMA "+pgx.Identifier{s}.Sanitize())
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// drop removes the shadow schemas (after a failure), even when ctx is done.
func (j *CopyJob) dropShadow(sh *shadow) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, j.To) // j.dst may be mid-COPY after a cancellation
	if err != nil {
		return
	}
	defer c.Close(ctx)
	for _, s := range sh.schemas {
		c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE")
	}
}

// releaseShadow gives up the shadow's lock once it is swapped in or dropped.
func (j *CopyJob) releaseShadow(sh *shadow) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	j.dst.Exec(ctx, "SELECT pg_advisory_unlock(hashtext($1))", shadowLockKey(sh.tag))
}
