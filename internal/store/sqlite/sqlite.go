// Package sqlite keeps envplane's state in one SQLite file through the pure-Go
// modernc.org/sqlite driver, so `envplane serve` needs neither cgo nor another
// service. Writes go through a single connection, one transaction at a time,
// and are fsynced before they are acknowledged; reads use a separate pool and,
// thanks to WAL, never wait for the writer. One file has one server process
// (Open locks it: a second Open fails while the first Store is open),
// so change events are fanned out in memory.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/blobkey"
	"github.com/envplane/envplane/internal/store/internal/fanout"
	"github.com/envplane/envplane/internal/store/internal/jsoncol"
	"github.com/envplane/envplane/internal/store/internal/migrate"
	"github.com/envplane/envplane/internal/store/internal/promocol"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// envplane_sha256 keys blobs in migration 0003, as blobkey.Of does in Go.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("envplane_sha256", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case []byte:
			return blobkey.Of(v), nil
		case string:
			return blobkey.Of([]byte(v)), nil
		case nil:
			return blobkey.Of(nil), nil
		}
		return nil, fmt.Errorf("envplane_sha256: %T is not text or a blob", args[0])
	})
}

// busyTimeoutMS is how long a statement waits for a lock held by another
// process on the same file before failing as unavailable.
const busyTimeoutMS = 5000

// Store is a SQLite database holding envplane's state.
type Store struct {
	reader             // queries on the read pool
	w          *sql.DB // exactly one connection: the writer
	r          *sql.DB
	writer     chan struct{} // a one-slot semaphore serializing WithTx
	hub        *fanout.Hub
	migrations []migrate.Migration
	lock       *fileLock // held until Close
	closeOnce  sync.Once
	closeErr   error
}

var _ store.Store = (*Store)(nil)

// Open opens the database file at path, creating it (mode 0600) and its
// parent directories when missing, and applies pending migrations. The
// Store holds an exclusive lock on path+".lock" until Close: while it is
// open, another Open of the same file (in any process) fails with a
// Conflict naming the holder's pid.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errs.E(errs.Invalid, "sqlite: the database path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "sqlite: database path %q", path)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "sqlite: create the database directory")
	}
	// Creating the file here makes it private from the start; SQLite gives
	// the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "sqlite: open %s", abs)
	}
	f.Close()
	ms, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "sqlite: embedded migrations")
	}
	lock, err := lockDatabase(abs)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, abs, ms)
	if err != nil {
		lock.release()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func open(ctx context.Context, abs string, ms []migrate.Migration) (*Store, error) {
	w, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "sqlite: open %s", abs)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, writer: make(chan struct{}, 1), hub: fanout.New(), migrations: ms}
	if err := s.setUp(ctx); err != nil {
		w.Close()
		return nil, err
	}

	r, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		w.Close()
		return nil, errs.Wrap(errs.Internal, err, "sqlite: open %s", abs)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s.r, s.reader = r, reader{q: r}
	return s, nil
}

// dsn builds a file: URI (so any path is safe) carrying the per-connection
// pragmas. synchronous=FULL fsyncs the WAL at every commit, making a write
// durable once acknowledged; _txlock=immediate takes the write lock at BEGIN,
// so a transaction never fails half-way on a lock upgrade.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

func (s *Store) setUp(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return mapErr(err, "sqlite: open the database")
	}
	if !strings.EqualFold(mode, "wal") {
		return errs.E(errs.Internal, "sqlite: the database is in %s journal mode, and WAL could not be enabled", mode)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return mapErr(err, "sqlite: create schema_migrations")
	}
	for _, m := range s.migrations {
		if err := s.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration in its own transaction unless it is recorded as
// applied; BEGIN IMMEDIATE makes a second process opening the same file wait
// and then skip it.
func (s *Store) apply(ctx context.Context, m migrate.Migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err, "sqlite: migration %s", m.Name)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return mapErr(err, "sqlite: migration %s", m.Name)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return mapErr(err, "sqlite: migration %s", m.Name)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixMicro()); err != nil {
		return mapErr(err, "sqlite: migration %s", m.Name)
	}
	return mapErr(tx.Commit(), "sqlite: migration %s", m.Name)
}

// WithTx runs fn in a write transaction. Transactions run one at a time, and
// the events fn queued are published before the next one starts, so
// subscribers see them in commit order.
func (s *Store) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writer }()

	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err, "sqlite: begin transaction")
	}
	done := false
	defer func() {
		if !done { // fn failed or panicked
			_ = sqlTx.Rollback()
		}
	}()
	t := &tx{reader: reader{q: sqlTx}}
	if err := fn(t); err != nil {
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return mapErr(err, "sqlite: commit")
	}
	s.hub.Publish(t.events...)
	return nil
}

// Subscribe delivers the events of transactions committed through this
// Store from now until ctx ends.
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Event, error) {
	return s.hub.Subscribe(ctx), nil
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return mapErr(s.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n), "sqlite: ping")
}

// Migrations reports the schema version applied and the latest this binary knows.
func (s *Store) Migrations(ctx context.Context) (applied, latest int, err error) {
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return 0, 0, mapErr(err, "sqlite: read schema_migrations")
	}
	return applied, len(s.migrations), nil
}

// Close ends subscriptions and closes the database; it is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.hub.Close()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close(), s.lock.release())
	})
	return s.closeErr
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader answers queries, on the read pool or inside a write transaction.
type reader struct{ q querier }

// tx is a write transaction.
type tx struct {
	reader
	events []store.Event
}

const releaseColumns = `id, digest, labels, size, created_at, created_by`

type scanner interface{ Scan(dest ...any) error }

func scanRelease(row scanner) (store.Release, error) {
	var r store.Release
	var labels string
	var at int64
	if err := row.Scan(&r.ID, &r.Digest, &labels, &r.Size, &at, &r.CreatedBy); err != nil {
		return r, err
	}
	var err error
	if r.Labels, err = jsoncol.Map(labels); err != nil {
		return r, fmt.Errorf("release %s labels: %w", r.ID, err)
	}
	r.CreatedAt = fromMicros(at)
	return r, nil
}

func (r reader) GetRelease(ctx context.Context, id string) (store.Release, error) {
	rel, err := scanRelease(r.q.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return rel, errs.Wrap(errs.NotFound, err, "release %q not found", id)
	}
	if err != nil {
		return rel, mapErr(err, "sqlite: read release %q", id)
	}
	return r.withFiles(ctx, rel)
}

func (r reader) GetReleaseByDigest(ctx context.Context, digest string) (store.Release, error) {
	rel, err := scanRelease(r.q.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE digest = ?`, digest))
	if errors.Is(err, sql.ErrNoRows) {
		return rel, errs.Wrap(errs.NotFound, err, "no release has digest %q", digest)
	}
	if err != nil {
		return rel, mapErr(err, "sqlite: read release by digest")
	}
	return rel, nil
}

// withFiles loads a release's files. A release and its files are written in
// one transaction, so a visible release has all of them.
func (r reader) withFiles(ctx context.Context, rel store.Release) (store.Release, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT f.path, b.content FROM release_files f JOIN blobs b ON b.digest = f.blob
		WHERE f.release_id = ?`, rel.ID)
	if err != nil {
		return rel, mapErr(err, "sqlite: read release %q files", rel.ID)
	}
	defer rows.Close()
	rel.Files = map[string][]byte{}
	for rows.Next() {
		var path string
		var content []byte
		if err := rows.Scan(&path, &content); err != nil {
			return rel, mapErr(err, "sqlite: read release %q files", rel.ID)
		}
		if content == nil {
			content = []byte{}
		}
		rel.Files[path] = content
	}
	return rel, mapErr(rows.Err(), "sqlite: read release %q files", rel.ID)
}

func (r reader) GetReleaseFile(ctx context.Context, id, path string) ([]byte, error) {
	var content []byte
	err := r.q.QueryRowContext(ctx, `SELECT b.content FROM release_files f JOIN blobs b ON b.digest = f.blob
		WHERE f.release_id = ? AND f.path = ?`, id, path).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.Wrap(errs.NotFound, err, "release %q has no file %q", id, path)
	}
	if err != nil {
		return nil, mapErr(err, "sqlite: read release %q file %q", id, path)
	}
	if content == nil {
		content = []byte{}
	}
	return content, nil
}

func (r reader) ListReleases(ctx context.Context, limit int) ([]store.Release, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+releaseColumns+` FROM releases ORDER BY seq DESC LIMIT ?`, sqlLimit(limit))
	if err != nil {
		return nil, mapErr(err, "sqlite: list releases")
	}
	defer rows.Close()
	var out []store.Release
	for rows.Next() {
		rel, err := scanRelease(rows)
		if err != nil {
			return nil, mapErr(err, "sqlite: list releases")
		}
		out = append(out, rel)
	}
	return out, mapErr(rows.Err(), "sqlite: list releases")
}

const environmentColumns = `name, position, protection, data, promoted, release, updated_at, gates`

func scanEnvironment(row scanner) (store.Environment, error) {
	var e store.Environment
	var release, gates sql.NullString
	var at int64
	err := row.Scan(&e.Name, &e.Position, &e.Protection, &e.Data, &e.Promoted, &release, &at, &gates)
	e.Release, e.UpdatedAt = release.String, fromMicros(at)
	if err == nil {
		e.Gates, err = promocol.DecodeGates(gates.String)
	}
	return e, err
}

func (r reader) ListEnvironments(ctx context.Context) ([]store.Environment, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+environmentColumns+` FROM environments ORDER BY position, name`)
	if err != nil {
		return nil, mapErr(err, "sqlite: list environments")
	}
	defer rows.Close()
	var out []store.Environment
	for rows.Next() {
		e, err := scanEnvironment(rows)
		if err != nil {
			return nil, mapErr(err, "sqlite: list environments")
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err(), "sqlite: list environments")
}

func (r reader) GetEnvironment(ctx context.Context, name string) (store.Environment, error) {
	e, err := scanEnvironment(r.q.QueryRowContext(ctx, `SELECT `+environmentColumns+` FROM environments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return e, errs.Wrap(errs.NotFound, err, "environment %q not found", name)
	}
	return e, mapErr(err, "sqlite: read environment %q", name)
}

// History returns env's assignments, newest first; an unknown env is NotFound.
func (r reader) History(ctx context.Context, env string, limit int) ([]store.Assignment, error) {
	if _, err := r.GetEnvironment(ctx, env); err != nil {
		return nil, err
	}
	rows, err := r.q.QueryContext(ctx, `SELECT environment, release, coalesce(previous, ''), actor, at
		FROM assignments WHERE environment = ? ORDER BY id DESC LIMIT ?`, env, sqlLimit(limit))
	if err != nil {
		return nil, mapErr(err, "sqlite: read history of %q", env)
	}
	defer rows.Close()
	var out []store.Assignment
	for rows.Next() {
		var a store.Assignment
		var at int64
		if err := rows.Scan(&a.Environment, &a.Release, &a.Previous, &a.Actor, &at); err != nil {
			return nil, mapErr(err, "sqlite: read history of %q", env)
		}
		a.At = fromMicros(at)
		out = append(out, a)
	}
	return out, mapErr(rows.Err(), "sqlite: read history of %q", env)
}

const tokenColumns = `id, name, hash, role, environments, "groups", created_at, created_by`

func scanToken(row scanner) (store.Token, error) {
	var t store.Token
	var envs, groups string
	var at int64
	if err := row.Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &envs, &groups, &at, &t.CreatedBy); err != nil {
		return t, err
	}
	t.CreatedAt = fromMicros(at)
	var err1, err2 error
	t.Environments, err1 = jsoncol.List(envs)
	t.Groups, err2 = jsoncol.List(groups)
	if err := errors.Join(err1, err2); err != nil {
		return t, fmt.Errorf("token %s: %w", t.ID, err)
	}
	return t, nil
}

func (r reader) GetTokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(r.q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, errs.Wrap(errs.NotFound, err, "token not found")
	}
	return t, mapErr(err, "sqlite: read token")
}

func (r reader) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr(err, "sqlite: list tokens")
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, mapErr(err, "sqlite: list tokens")
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err(), "sqlite: list tokens")
}

const auditColumns = `seq, at, actor, action, target, details, prev_hash, hash`

func scanAudit(row scanner) (store.AuditEntry, error) {
	var e store.AuditEntry
	var at int64
	var details string
	err := row.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &details, &e.PrevHash, &e.Hash)
	e.At, e.Details = fromMicros(at), []byte(details)
	return e, err
}

func (r reader) ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, sqlLimit(limit))
	if err != nil {
		return nil, mapErr(err, "sqlite: list audit")
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, mapErr(err, "sqlite: list audit")
		}
		out = append(out, e)
	}
	return out, mapErr(rows.Err(), "sqlite: list audit")
}

func (r reader) LastAudit(ctx context.Context) (store.AuditEntry, bool, error) {
	e, err := scanAudit(r.q.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return store.AuditEntry{}, false, nil
	}
	if err != nil {
		return store.AuditEntry{}, false, mapErr(err, "sqlite: read last audit entry")
	}
	return e, true, nil
}

func (t *tx) InsertRelease(ctx context.Context, r store.Release) error {
	labels, err := jsoncol.Encode(r.Labels)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "release labels")
	}
	_, err = t.q.ExecContext(ctx, `INSERT INTO releases (id, seq, digest, labels, size, created_at, created_by)
		VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM releases), ?, ?, ?, ?, ?)`,
		r.ID, r.Digest, labels, r.Size, r.CreatedAt.UnixMicro(), r.CreatedBy)
	if isUnique(err) {
		return errs.Wrap(errs.Conflict, err, "a release with ID %q or digest %q already exists", r.ID, r.Digest)
	}
	if err != nil {
		return mapErr(err, "sqlite: insert release %q", r.ID)
	}
	// Each content is stored once: a blob that exists is only referenced.
	for path, content := range r.Files {
		if content == nil {
			content = []byte{} // NULL would break NOT NULL
		}
		key := blobkey.Of(content)
		var one int
		err := t.q.QueryRowContext(ctx, `SELECT 1 FROM blobs WHERE digest = ?`, key).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = t.q.ExecContext(ctx, `INSERT INTO blobs (digest, content) VALUES (?, ?)`, key, content)
		}
		if err != nil {
			return mapErr(err, "sqlite: insert release %q file %q", r.ID, path)
		}
		if _, err := t.q.ExecContext(ctx, `INSERT INTO release_files (release_id, path, blob) VALUES (?, ?, ?)`,
			r.ID, path, key); err != nil {
			return mapErr(err, "sqlite: insert release %q file %q", r.ID, path)
		}
	}
	return nil
}

// UpsertEnvironment creates or updates env's definition; e.Release is
// ignored, since only SetRelease changes an environment's release.
func (t *tx) UpsertEnvironment(ctx context.Context, e store.Environment) error {
	gates, err := promocol.EncodeGates(e.Gates)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "environment %q gates", e.Name)
	}
	_, err = t.q.ExecContext(ctx, `INSERT INTO environments (name, position, protection, data, promoted, release, updated_at, gates)
		VALUES (?, ?, ?, ?, ?, NULL, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, protection = excluded.protection,
			data = excluded.data, promoted = excluded.promoted, updated_at = excluded.updated_at, gates = excluded.gates`,
		e.Name, e.Position, e.Protection, e.Data, e.Promoted, e.UpdatedAt.UnixMicro(), gates)
	return mapErr(err, "sqlite: upsert environment %q", e.Name)
}

func (t *tx) SetRelease(ctx context.Context, env, release, actor string, at time.Time) (string, error) {
	var previous sql.NullString
	err := t.q.QueryRowContext(ctx, `SELECT release FROM environments WHERE name = ?`, env).Scan(&previous)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.Wrap(errs.NotFound, err, "environment %q not found", env)
	}
	if err != nil {
		return "", mapErr(err, "sqlite: read environment %q", env)
	}
	var one int
	err = t.q.QueryRowContext(ctx, `SELECT 1 FROM releases WHERE id = ?`, release).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errs.Wrap(errs.NotFound, err, "release %q not found", release)
	}
	if err != nil {
		return "", mapErr(err, "sqlite: read release %q", release)
	}
	if _, err := t.q.ExecContext(ctx, `UPDATE environments SET release = ?, updated_at = ? WHERE name = ?`,
		release, at.UnixMicro(), env); err != nil {
		return "", mapErr(err, "sqlite: set release of %q", env)
	}
	if _, err := t.q.ExecContext(ctx, `INSERT INTO assignments (environment, release, previous, actor, at) VALUES (?, ?, ?, ?, ?)`,
		env, release, previous, actor, at.UnixMicro()); err != nil {
		return "", mapErr(err, "sqlite: record assignment of %q", env)
	}
	return previous.String, nil
}

func (t *tx) InsertToken(ctx context.Context, tok store.Token) error {
	envs, err1 := jsoncol.Encode(tok.Environments)
	groups, err2 := jsoncol.Encode(tok.Groups)
	if err := errors.Join(err1, err2); err != nil {
		return errs.Wrap(errs.Invalid, err, "token scopes")
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		tok.ID, tok.Name, tok.Hash, tok.Role, envs, groups, tok.CreatedAt.UnixMicro(), tok.CreatedBy)
	if isUnique(err) {
		return errs.Wrap(errs.Conflict, err, "a token with ID %q or the same secret already exists", tok.ID)
	}
	return mapErr(err, "sqlite: insert token %q", tok.ID)
}

func (t *tx) DeleteToken(ctx context.Context, id string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM tokens WHERE id = ?`, id)
	if err != nil {
		return mapErr(err, "sqlite: delete token %q", id)
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err, "sqlite: delete token %q", id)
	} else if n == 0 {
		return errs.E(errs.NotFound, "token %q not found", id)
	}
	return nil
}

func (t *tx) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	var last int64
	if err := t.q.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM audit`).Scan(&last); err != nil {
		return mapErr(err, "sqlite: read last audit entry")
	}
	if e.Seq != last+1 {
		return errs.E(errs.Conflict, "audit entry %d is out of sequence: the next entry is %d", e.Seq, last+1)
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.At.UnixMicro(), e.Actor, e.Action, e.Target, string(e.Details), e.PrevHash, e.Hash)
	if isUnique(err) {
		return errs.Wrap(errs.Conflict, err, "audit entry %d already exists", e.Seq)
	}
	return mapErr(err, "sqlite: append audit entry %d", e.Seq)
}

func (t *tx) SetAuditHash(ctx context.Context, seq int64, prevHash, hash string) error {
	res, err := t.q.ExecContext(ctx, `UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, prevHash, hash, seq)
	if err != nil {
		return mapErr(err, "sqlite: re-sign audit entry %d", seq)
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err, "sqlite: re-sign audit entry %d", seq)
	} else if n == 0 {
		return errs.E(errs.NotFound, "audit entry %d not found", seq)
	}
	return nil
}

// Notify queues ev for delivery after commit. Identical events in one
// transaction are delivered once, as PostgreSQL does.
func (t *tx) Notify(ev store.Event) {
	for _, q := range t.events {
		if q == ev {
			return
		}
	}
	t.events = append(t.events, ev)
}

// fromMicros turns a stored time back into a UTC time.Time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// sqlLimit maps "no limit" (0 or less) to SQLite's LIMIT -1.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// mapErr gives a driver error its kind: locks held too long, I/O failures
// and a closed database make the store unavailable; anything else is
// internal. format describes the operation, for logs.
func mapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var kinded *errs.Error
	if errors.As(err, &kinded) {
		return err
	}
	if isUnique(err) {
		return errs.Wrap(errs.Conflict, err, format, args...)
	}
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
			sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return errs.Wrap(errs.Unavailable, err, "database unavailable")
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrConnDone) ||
		strings.Contains(err.Error(), "sql: database is closed") {
		return errs.Wrap(errs.Unavailable, err, "database unavailable")
	}
	return errs.Wrap(errs.Internal, err, format, args...)
}
