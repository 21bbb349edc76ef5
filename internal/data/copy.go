package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/diag"
)

// Progress is how far the copy of one table is.
type Progress struct {
	Table      string  `json:"table"`
	Rows       int64   `json:"rows"`
	RowsPerSec float64 `json:"rows_per_sec"`
	// Estimated is the source's row estimate (its statistics; 0 when it has
	// none); ETASeconds the time left at the current rate while it runs.
	Estimated  int64   `json:"estimated_rows,omitempty"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
	Done       bool    `json:"done"`
}

// CopyOptions are how a copy runs.
type CopyOptions struct {
	Tables []string // all of the source's when empty
	Atomic bool     // load into a shadow schema swapped in at the end: all tables or none
	// Key keys the transformers (HMAC-SHA256).
	Key     []byte
	Workers int // parallel tables, and readers of a large table; 0 is 4
	// SplitRows is the estimated size from which a table with an integer
	// key is read in key ranges by parallel readers; 0 is 200,000.
	SplitRows int64
	Progress  func(Progress)       // called from one goroutine at a time
	Tick      time.Duration        // between progress reports; 0 is 500ms
	Confirm   func(*CopyJob) error // after every check, before anything is written
	Notice    func(string)         // what the copy tells along the way (a stale shadow schema dropped)
}

// CopyJob is a checked copy ready to run.
type CopyJob struct {
	From, To  Endpoint
	Class     *Classification
	Src, Dst  *Schema
	opts      CopyOptions
	src, dst  *pgx.Conn
	plans     map[string][]colT
	shadow    *shadow             // an atomic copy's, while it loads
	snapshot  string              // the source's exported snapshot, while it runs
	splits    map[string][]string // a large table's key ranges (WHERE clauses)
	estimates map[string]int64    // rows by the source's statistics
	shadows   []ShadowSchema      // the target's shadow schemas, found by PrepareCopy
}

// Report is what a copy did.
type Report struct {
	Copied    []string // completely
	Untouched []string // left as they were
	Rows      map[string]int64
}

// Refusal is a copy that did not start: every problem, nothing written.
type Refusal struct{ Problems diag.List }

func (r *Refusal) Error() string { return r.Problems.Error() }
func (r *Refusal) Unwrap() error { return r.Problems }

// Connect opens a connection, never quoting the password in an error.
func Connect(ctx context.Context, e Endpoint) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, e.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot connect to the database of %s (%s): %s", e.Env, e.Env, e.Key, Redact(err.Error(), e.URL))
	}
	return c, nil
}

// PrepareCopy connects to both databases, classifies the source's columns
// and checks everything; a refusal is a *Refusal listing every problem.
func PrepareCopy(ctx context.Context, from, to Endpoint, rules *Rules, opts CopyOptions) (*CopyJob, error) {
	j := &CopyJob{From: from, To: to, opts: opts}
	pre := CheckCopy(&Classification{}, nil, nil, from, to, rules)
	if len(pre) > 0 { // live target or the same database: do not even connect
		return nil, &Refusal{pre}
	}
	var err error
	if j.src, err = Connect(ctx, from); err != nil {
		return nil, err
	}
	if j.dst, err = Connect(ctx, to); err != nil {
		j.Close()
		return nil, err
	}
	if j.Src, err = Inspect(ctx, j.src); err != nil {
		j.Close()
		return nil, fmt.Errorf("%s: %w", from.Env, err)
	}
	if j.Dst, err = Inspect(ctx, j.dst); err != nil {
		j.Close()
		return nil, fmt.Errorf("%s: %w", to.Env, err)
	}
	j.Class = Classify(j.Src, rules, opts.Tables, nil)
	problems := CheckCopy(j.Class, j.Src, j.Dst, from, to, rules)
	if same, err := sameServer(ctx, j.src, j.dst); err == nil && same {
		problems = append(problems, diag.Errorf(diag.Pos{File: "envplane.yaml"}, "%s and %s are the same database: a copy would overwrite its own source", from.Env, to.Env))
	}
	if len(problems) == 0 {
		problems = append(problems, j.compile(ctx, rules)...)
	}
	if len(problems) == 0 && opts.Atomic {
		problems = append(problems, shadowProblems(ctx, j.dst, j.Dst, j.Class.Tables, to.Env)...)
	}
	if len(problems) == 0 {
		if j.shadows, err = findShadows(ctx, j.dst); err != nil {
			problems = append(problems, diag.Errorf(diag.Pos{}, "%s: looking for shadow schemas of earlier copies: %s", to.Env, err))
		}
		problems = append(problems, liveShadowProblems(j.shadows, to.Env)...)
	}
	if len(problems) > 0 {
		j.Close()
		return nil, &Refusal{problems}
	}
	return j, nil
}

// Close releases the connections.
func (j *CopyJob) Close() {
	for _, c := range []*pgx.Conn{j.src, j.dst} {
		if c != nil {
			c.Close(context.Background())
		}
	}
}

// sameServer asks both servers who they are: the same cluster and database
// reached under two names is still the same database.
func sameServer(ctx context.Context, a, b *pgx.Conn) (bool, error) {
	q := `SELECT current_database() || '/' || coalesce((SELECT system_identifier::text FROM pg_control_system()), '') || '/' || current_setting('port')`
	var x, y string
	if err := a.QueryRow(ctx, q).Scan(&x); err != nil {
		return false, err
	}
	if err := b.QueryRow(ctx, q).Scan(&y); err != nil {
		return false, err
	}
	return x == y, nil
}

var varcharLen = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:character varying|character)\((\d+)\)$`) })

// compile turns each table's rules into column transformations; fixed
// values are converted to the column's type by the target server once.
func (j *CopyJob) compile(ctx context.Context, rules *Rules) diag.List {
	var out diag.List
	j.plans = map[string][]colT{}
	for _, tn := range j.Class.Tables {
		t := j.Src.Tables[tn]
		var cols, tmpls []colT
		for i, cp := range j.Class.Columns[tn] {
			if cp.Rule == nil || cp.Rule.Kind == Keep {
				continue
			}
			c := colT{idx: i, col: cp.Column, rule: cp.Rule}
			if m := varcharLen().FindStringSubmatch(cp.Column.Type); m != nil {
				c.maxLen, _ = strconv.Atoi(m[1])
			}
			switch cp.Rule.Kind {
			case Fixed:
				b, err := fixedBytes(ctx, j.dst, cp.Column, cp.Rule.Fixed)
				if err != nil {
					out = append(out, diag.Errorf(cp.Rule.Pos, "%s.%s: %s is no valid %s: %s", tn, cp.Column.Name, cp.Rule, cp.Column.Type, err))
				}
				c.fixed = b
			case Template:
				c.tmpl, _ = parseTemplate(cp.Rule.Arg, t.Columns)
				tmpls = append(tmpls, c)
				continue
			}
			cols = append(cols, c)
		}
		j.plans[tn] = append(cols, tmpls...)
	}
	return out
}

func fixedBytes(ctx context.Context, c *pgx.Conn, col Column, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	var txt string
	switch x := v.(type) {
	case map[string]any, []any:
		if col.TypName == "json" || col.TypName == "jsonb" {
			b, err := json.Marshal(x)
			if err != nil {
				return nil, err
			}
			txt = string(b)
		} else if l, ok := x.([]any); ok && strings.HasPrefix(col.TypName, "_") {
			parts := make([]string, len(l))
			for i, e := range l {
				parts[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(fmt.Sprint(e)) + `"`
			}
			txt = "{" + strings.Join(parts, ",") + "}"
		} else {
			return nil, errors.New("a mapping or list fits only json, jsonb and array columns")
		}
	case time.Time:
		txt = x.Format(time.RFC3339Nano)
	default:
		if col.TypName == "json" || col.TypName == "jsonb" {
			b, _ := json.Marshal(x)
			txt = string(b)
		} else {
			txt = fmt.Sprint(x)
		}
	}
	res := c.PgConn().ExecParams(ctx, "SELECT $1::text::"+col.Type, [][]byte{[]byte(txt)}, nil, []int16{0}, []int16{1}).Read()
	if res.Err != nil {
		var msg = res.Err.Error()
		return nil, errors.New(msg)
	}
	if len(res.Rows) != 1 {
		return nil, errors.New("no value")
	}
	b := append([]byte{}, res.Rows[0][0]...)
	return b, nil
}

// Run copies the tables. Without Atomic each table is loaded in its own
// transaction, several at a time; with it, into shadow tables swapped in
// at the end in one short transaction. Either way the
// source is read under one snapshot. On error or interruption the report
// says which tables were copied completely and which were left as they
// were.
func (j *CopyJob) Run(ctx context.Context) (*Report, error) {
	rep := &Report{Rows: map[string]int64{}}
	if j.opts.Confirm != nil {
		if err := j.opts.Confirm(j); err != nil {
			rep.Untouched = j.Class.Tables
			return rep, err
		}
	}
	if err := j.dropStaleShadows(ctx); err != nil {
		rep.Untouched = j.Class.Tables
		return rep, err
	}
	// One snapshot for every reader.
	stx, err := j.src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return rep, fmt.Errorf("%s: %w", j.From.Env, err)
	}
	defer stx.Rollback(context.Background())
	var snapshot string
	if err := stx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return rep, fmt.Errorf("%s: exporting the snapshot: %w", j.From.Env, err)
	}
	j.snapshot = snapshot
	if err := j.planSplits(ctx, stx, j.workers()); err != nil {
		rep.Untouched = j.Class.Tables
		return rep, err
	}
	prog := newProgress(j.opts.Progress, j.opts.Tick)
	defer prog.stop()
	if j.opts.Atomic {
		err = j.runAtomic(ctx, snapshot, rep, prog)
	} else {
		err = j.runTables(ctx, snapshot, rep, prog)
	}
	return rep, err
}

// runAtomic loads every table into a shadow schema, Workers at a time,
// validates it and swaps it in; on failure it drops the shadow and the
// target is as it was.
func (j *CopyJob) runAtomic(ctx context.Context, snapshot string, rep *Report, prog *progress) (err error) {
	sh, err := j.buildShadow(ctx)
	if err != nil {
		rep.Untouched = j.Class.Tables
		return fmt.Errorf("%s: preparing the shadow tables: %w", j.To.Env, err)
	}
	swapped := false
	defer func() {
		j.shadow = nil
		if !swapped {
			j.dropShadow(sh)
			rep.Copied, rep.Untouched = nil, j.Class.Tables
		}
		j.releaseShadow(sh)
	}()
	j.shadow = sh
	if err := j.runTables(ctx, snapshot, rep, prog); err != nil {
		return err
	}
	if err := j.validateShadow(ctx, sh); err != nil {
		return err
	}
	if err := j.swap(ctx, sh); err != nil {
		return err
	}
	swapped = true
	return nil
}

func replicaRole(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		return fmt.Errorf("cannot defer foreign key checks to the end (SET session_replication_role needs a superuser or the SET privilege on it): %w", err)
	}
	return nil
}

// runTables loads each table in its own transaction, Workers at a time,
// each reader joining the exported snapshot.
func (j *CopyJob) runTables(ctx context.Context, snapshot string, rep *Report, prog *progress) error {
	workers := min(j.workers(), len(j.Class.Tables))
	queue := make(chan string, len(j.Class.Tables))
	for _, tn := range j.Class.Tables {
		queue <- tn
	}
	close(queue)
	var mu sync.Mutex
	done := map[string]bool{}
	var errs []error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := j.worker(ctx, snapshot, queue, prog, func(tn string, n int64) {
				mu.Lock()
				done[tn] = true
				rep.Rows[tn] = n
				mu.Unlock()
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, tn := range j.Class.Tables {
		if done[tn] {
			rep.Copied = append(rep.Copied, tn)
		} else {
			rep.Untouched = append(rep.Untouched, tn)
		}
	}
	if len(errs) > 0 {
		return firstReal(errs)
	}
	if j.shadow != nil {
		return nil
	}
	return j.afterLoad(ctx, j.dst, j.into, false)
}

func (j *CopyJob) workers() int {
	if j.opts.Workers <= 0 {
		return 4
	}
	return j.opts.Workers
}

// into is the table a copied table is loaded into: the target's, or its
// shadow's.
func (j *CopyJob) into(tn string) string {
	if j.shadow != nil {
		return j.shadow.byID[tn].ident
	}
	return j.Dst.Tables[tn].Ident()
}

// firstReal prefers the error that caused the others' cancellation.
func firstReal(errs []error) error {
	for _, e := range errs {
		if !errors.Is(e, context.Canceled) {
			return e
		}
	}
	return errs[0]
}

func (j *CopyJob) worker(ctx context.Context, snapshot string, queue <-chan string, prog *progress, done func(string, int64)) error {
	src, err := Connect(ctx, j.From)
	if err != nil {
		return err
	}
	defer src.Close(context.Background())
	dst, err := Connect(ctx, j.To)
	if err != nil {
		return err
	}
	defer dst.Close(context.Background())
	stx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer stx.Rollback(context.Background())
	if _, err := stx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
		return fmt.Errorf("%s: joining the snapshot: %w", j.From.Env, err)
	}
	for tn := range queue {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := j.loadOne(ctx, stx.Conn(), dst, tn, prog)
		if err != nil {
			return err
		}
		done(tn, n)
	}
	return nil
}

func (j *CopyJob) loadOne(ctx context.Context, src, dst *pgx.Conn, tn string, prog *progress) (int64, error) {
	if j.shadow != nil { // a fresh table, seen by no one: no locks, no clearing, no triggers
		return j.copyTable(ctx, src, dst, tn, prog)
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.Background())
	if err := replicaRole(ctx, tx); err != nil {
		return 0, fmt.Errorf("%s: %w", j.To.Env, err)
	}
	t := j.Dst.Tables[tn]
	clear := "TRUNCATE " + t.Ident()
	if j.referenced(tn) {
		clear = "DELETE FROM " + t.Ident() // TRUNCATE refuses a referenced table
	}
	if _, err := tx.Exec(ctx, clear); err != nil {
		return 0, fmt.Errorf("%s: %s: %w", j.To.Env, tn, err)
	}
	n, err := j.copyTable(ctx, src, tx.Conn(), tn, prog)
	if err != nil {
		return 0, err
	}
	// An interruption does not cut the commit short: a commit whose answer
	// is lost may have happened, and the report must say what did.
	if err := tx.Commit(context.WithoutCancel(ctx)); err != nil {
		return 0, fmt.Errorf("%s: %s: %w", j.To.Env, tn, err)
	}
	return n, nil
}

func (j *CopyJob) referenced(tn string) bool {
	for _, t := range j.Dst.Tables {
		for _, fk := range t.ForeignKeys {
			if fk.RefTable == tn {
				return true
			}
		}
	}
	return false
}

// copyTable streams one table: COPY TO (binary) → transform → COPY FROM.
// A table split by key ranges is read by one connection per range, each
// joining the snapshot, and transformed in parallel; their tuples meet in
// the one COPY FROM, in chunks of whole tuples through a bounded channel.
func (j *CopyJob) copyTable(ctx context.Context, src, dst *pgx.Conn, tn string, prog *progress) (int64, error) {
	st := j.Src.Tables[tn]
	cols := make([]string, len(st.Columns))
	for i, c := range st.Columns {
		cols[i] = c.Name
	}
	list := quoteCols(cols)
	counter := prog.start(tn, j.estimates[tn])
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := j.splits[tn]
	if len(parts) == 0 {
		parts = []string{""}
	}
	cr := newChunks(ctx, 2*len(parts)+2)
	var mu sync.Mutex
	var errs []error
	fail := func(where string, err error) {
		if err == nil || errors.Is(err, io.ErrClosedPipe) {
			return
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return
		}
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %s after %d rows: %w", tn, where, counter.Load(), err))
		mu.Unlock()
		cancel()
	}
	var wg sync.WaitGroup
	for i, where := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := src
			if i > 0 {
				c, err := j.snapshotConn(ctx)
				if err != nil {
					fail("reading from "+j.From.Env, err)
					return
				}
				defer c.Close(context.Background())
				conn = c
			}
			q := "COPY " + st.Ident() + " (" + list + ") TO STDOUT (FORMAT binary)"
			if where != "" || st.Partitioned {
				q = "COPY (SELECT " + list + " FROM " + st.Ident() + where + ") TO STDOUT (FORMAT binary)"
			}
			r, w := io.Pipe()
			var readErr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, readErr = conn.PgConn().CopyTo(ctx, w, q)
				w.CloseWithError(readErr)
			}()
			tr := newTransformer(j.opts.Key, st.Columns, j.plans[tn])
			err := transformStream(r, cr, len(cols), tr, counter)
			r.CloseWithError(errors.Join(err, io.ErrClosedPipe))
			if err != nil {
				cancel()
			}
			<-done
			fail("transforming", err)
			fail("reading from "+j.From.Env, readErr)
		}()
	}
	go func() {
		wg.Wait()
		cr.close()
	}()
	_, writeErr := dst.PgConn().CopyFrom(ctx, cr, "COPY "+j.into(tn)+" ("+list+") FROM STDIN (FORMAT binary)")
	fail("writing to "+j.To.Env, writeErr)
	cancel() // the readers stop if the writer did
	wg.Wait()
	n := counter.Load()
	if len(errs) > 0 {
		return n, errs[0]
	}
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return n, fmt.Errorf("%s: %w", tn, err)
	}
	if err := ctx.Err(); err != nil && writeErr != nil {
		return n, fmt.Errorf("%s: %w", tn, err)
	}
	prog.finish(tn, n)
	return n, nil
}

// snapshotConn opens another reader of the source that joins the copy's
// snapshot.
func (j *CopyJob) snapshotConn(ctx context.Context) (*pgx.Conn, error) {
	c, err := Connect(ctx, j.From)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	if _, err := c.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(j.snapshot)); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("%s: joining the snapshot: %w", j.From.Env, err)
	}
	return c, nil
}

// splitRows is the default of CopyOptions.SplitRows.
const splitRows = 200_000

// planSplits estimates each table's rows and splits the large ones with a
// single-column integer primary key into equal key ranges (by the key's
// minimum and maximum under the snapshot).
func (j *CopyJob) planSplits(ctx context.Context, tx pgx.Tx, workers int) error {
	j.splits, j.estimates = map[string][]string{}, map[string]int64{}
	split := j.opts.SplitRows
	if split <= 0 {
		split = splitRows
	}
	for _, tn := range j.Class.Tables {
		t := j.Src.Tables[tn]
		var est float64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::float8 FROM pg_class c
WHERE c.oid = $1::regclass OR c.oid IN (SELECT relid FROM pg_partition_tree($1::regclass))`, t.Ident()).Scan(&est); err != nil {
			return fmt.Errorf("%s: %s: %w", j.From.Env, tn, err)
		}
		j.estimates[tn] = int64(est)
		if workers < 2 || int64(est) < split || len(t.PrimaryKey) != 1 {
			continue
		}
		col, _ := t.Column(t.PrimaryKey[0])
		if col == nil || (col.TypName != "int2" && col.TypName != "int4" && col.TypName != "int8") {
			continue
		}
		k := pgx.Identifier{col.Name}.Sanitize()
		var lo, hi *int64
		if err := tx.QueryRow(ctx, "SELECT min("+k+")::int8, max("+k+")::int8 FROM "+t.Ident()).Scan(&lo, &hi); err != nil {
			return fmt.Errorf("%s: %s: %w", j.From.Env, tn, err)
		}
		if lo == nil || *hi-*lo < int64(workers) {
			continue
		}
		n := int(min(int64(workers), int64(est)/max(split/2, 1)))
		step := (*hi - *lo + 1) / int64(n)
		for i := 0; i < n; i++ {
			a, b := *lo+int64(i)*step, *lo+int64(i+1)*step
			switch {
			case i == 0:
				j.splits[tn] = append(j.splits[tn], fmt.Sprintf(" WHERE %s < %d", k, b))
			case i == n-1:
				j.splits[tn] = append(j.splits[tn], fmt.Sprintf(" WHERE %s >= %d", k, a))
			default:
				j.splits[tn] = append(j.splits[tn], fmt.Sprintf(" WHERE %s >= %d AND %s < %d", k, a, k, b))
			}
		}
	}
	return nil
}

func transformStream(r io.Reader, cr *chunks, ncols int, tr *transformer, counter *atomic.Int64) error {
	in, err := newTupleReader(r)
	if err != nil {
		return err
	}
	buf, err := cr.get()
	if err != nil {
		return err
	}
	fields := make([][]byte, ncols)
	for {
		ok, err := in.next(fields)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := tr.row(fields); err != nil {
			return err
		}
		buf = appendTuple(buf, fields)
		counter.Add(1)
		if len(buf) >= chunkSize {
			if err := cr.put(buf); err != nil {
				return err
			}
			if buf, err = cr.get(); err != nil {
				return err
			}
		}
	}
	return cr.put(buf)
}

// afterLoad resets the sequences of copied columns and checks that every
// foreign key of and into the copied tables holds.
//
// In a shadow (shadowKeys) a foreign key between two copied tables is
// checked by adding it to the shadow afterwards, so it is not checked here
// twice.
func (j *CopyJob) afterLoad(ctx context.Context, c *pgx.Conn, ident func(string) string, shadowKeys bool) error {
	for _, tn := range j.Class.Tables {
		t := j.Dst.Tables[tn]
		for _, col := range t.Columns {
			if col.Sequence == "" {
				continue
			}
			seq := quoteLiteral(col.Sequence)
			if ident(tn) != t.Ident() { // a shadow table has sequences of its own
				seq = fmt.Sprintf("pg_get_serial_sequence(%s, %s)", quoteLiteral(ident(tn)), quoteLiteral(col.Name))
			}
			q := fmt.Sprintf("SELECT setval(%s, coalesce((SELECT max(%s) FROM %s), 0) + 1, false)",
				seq, pgx.Identifier{col.Name}.Sanitize(), ident(tn))
			if _, err := c.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: resetting sequence %s: %w", j.To.Env, col.Sequence, err)
			}
		}
	}
	copied := map[string]bool{}
	for _, tn := range j.Class.Tables {
		copied[tn] = true
	}
	var problems diag.List
	for _, tn := range j.Dst.Names() {
		t := j.Dst.Tables[tn]
		for _, fk := range t.ForeignKeys {
			if !copied[tn] && !copied[fk.RefTable] || shadowKeys && copied[tn] && copied[fk.RefTable] {
				continue
			}
			if copied[tn] && copied[fk.RefTable] && j.heldInSource(tn, fk) {
				continue
			}
			pt := j.Dst.Tables[fk.RefTable]
			var notNull, match []string
			for i := range fk.Columns {
				cc, pc := pgx.Identifier{fk.Columns[i]}.Sanitize(), pgx.Identifier{fk.RefColumns[i]}.Sanitize()
				notNull = append(notNull, "c."+cc+" IS NOT NULL")
				match = append(match, "p."+pc+" = c."+cc)
			}
			q := fmt.Sprintf("SELECT count(*) FROM %s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
				ident(tn), strings.Join(notNull, " AND "), ident(pt.ID()), strings.Join(match, " AND "))
			var n int64
			if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
				return fmt.Errorf("%s: checking %s: %w", j.To.Env, fk.Name, err)
			}
			if n > 0 {
				problems = append(problems, diag.Errorf(diag.Pos{}, "%s: %s.(%s) → %s.(%s): %d rows reference no row (%s)",
					j.To.Env, tn, strings.Join(fk.Columns, ", "), fk.RefTable, strings.Join(fk.RefColumns, ", "), n, fk.Name))
			}
		}
	}
	return problems.Err()
}

// heldInSource tells whether a foreign key between two copied tables holds
// by construction: the source has the same key, validated, both tables were
// read whole under one snapshot, and a referencing column always has its
// referenced column's rule (Classify refuses another), so equal values stay
// equal. Checking it again would read both tables once more.
func (j *CopyJob) heldInSource(tn string, fk ForeignKey) bool {
	st := j.Src.Tables[tn]
	if st == nil {
		return false
	}
	for _, s := range st.ForeignKeys {
		if s.Validated && s.RefTable == fk.RefTable && slices.Equal(s.Columns, fk.Columns) && slices.Equal(s.RefColumns, fk.RefColumns) {
			return true
		}
	}
	return false
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// progress reports each table's rows and rate every tick.
type progress struct {
	fn   func(Progress)
	mu   sync.Mutex
	live map[string]*tableProgress
	quit chan struct{}
	wg   sync.WaitGroup
}

type tableProgress struct {
	rows  atomic.Int64
	est   int64
	start time.Time
}

func newProgress(fn func(Progress), tick time.Duration) *progress {
	p := &progress{fn: fn, live: map[string]*tableProgress{}, quit: make(chan struct{})}
	if fn == nil {
		return p
	}
	if tick <= 0 {
		tick = 500 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.mu.Lock()
				for _, tn := range sortedKeys(p.live) {
					tp := p.live[tn]
					n := tp.rows.Load()
					pr := Progress{Table: tn, Rows: n, RowsPerSec: rate(n, tp.start), Estimated: tp.est}
					if pr.RowsPerSec > 0 && tp.est > n {
						pr.ETASeconds = math.Ceil(float64(tp.est-n) / pr.RowsPerSec)
					}
					p.fn(pr)
				}
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func rate(n int64, start time.Time) float64 {
	s := time.Since(start).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(int64(float64(n)/s*10)) / 10
}

func (p *progress) start(tn string, est int64) *atomic.Int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp := &tableProgress{start: time.Now(), est: est}
	p.live[tn] = tp
	return &tp.rows
}

func (p *progress) finish(tn string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp := p.live[tn]
	delete(p.live, tn)
	if p.fn != nil && tp != nil {
		p.fn(Progress{Table: tn, Rows: n, RowsPerSec: rate(n, tp.start), Done: true})
	}
}

func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
}
