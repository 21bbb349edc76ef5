// Package postgres keeps envplane's state in PostgreSQL through a pgx pool, so
// that several replicas can share one state. Writers are serialized by a
// transaction-scoped advisory lock, which makes "read the last audit entry,
// append the next" safe across replicas. Change events travel as NOTIFY,
// which PostgreSQL delivers only on commit, to a LISTEN connection in every
// replica.
//
// Everything lives in the first schema of the connection's search_path (add
// ?search_path=name to the URL to pick one); the advisory lock keys and the
// notification channel are derived from that schema, so several deployments,
// or parallel tests, can share one database without seeing each other.
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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

// Tunables of the LISTEN connection; variables so tests can shorten them.
var (
	// listenIdleCheck is how long the listener waits quietly before checking
	// that its connection is still alive.
	listenIdleCheck = 30 * time.Second
	// reconnectMaxDelay bounds the backoff between reconnection attempts.
	reconnectMaxDelay = 5 * time.Second
)

// Store is a PostgreSQL database holding envplane's state.
type Store struct {
	reader     // queries on the pool
	pool       *pgxpool.Pool
	listenCfg  *pgx.ConnConfig
	channel    string // NOTIFY channel
	writeKey   int64  // advisory lock serializing write transactions
	migrateKey int64  // advisory lock serializing migrations
	idleCheck  time.Duration
	hub        *fanout.Hub
	migrations []migrate.Migration
	stop       context.CancelFunc // ends the listener
	done       chan struct{}      // closed when the listener has ended
	closeOnce  sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// string), applies pending migrations and starts listening for changes made
// by every replica. An unreachable database is errs.Unavailable.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "postgres: invalid database URL")
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "envplane"
	}
	ms, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "postgres: embedded migrations")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, mapErr(err, "postgres: connect")
	}
	s := &Store{
		reader: reader{q: pool}, pool: pool, listenCfg: cfg.ConnConfig.Copy(),
		hub: fanout.New(), migrations: ms, idleCheck: listenIdleCheck,
	}
	if err := s.start(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) start(ctx context.Context) error {
	var schema *string
	if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return mapErr(err, "postgres: connect")
	}
	if schema == nil {
		return errs.E(errs.Invalid, "postgres: no schema on the search_path exists; create it first")
	}
	s.channel = channelFor(*schema)
	s.writeKey, s.migrateKey = lockKey("write", *schema), lockKey("migrate", *schema)
	if err := s.migrate(ctx); err != nil {
		return err
	}
	conn, err := s.listen(ctx)
	if err != nil {
		return err
	}
	listenCtx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go s.listenLoop(listenCtx, conn)
	return nil
}

// channelFor names the NOTIFY channel: plain "envplane" in the public
// schema, otherwise qualified by the schema and kept within PostgreSQL's
// 63-byte identifier limit.
func channelFor(schema string) string {
	if schema == "public" {
		return "envplane"
	}
	if c := "envplane:" + schema; len(c) <= 63 {
		return c
	}
	sum := sha256.Sum256([]byte(schema))
	return "envplane:" + hex.EncodeToString(sum[:16])
}

// lockKey is a fixed advisory lock key per purpose and schema.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("envplane/" + purpose + "/" + schema))
	return int64(h.Sum64())
}

// migrate applies pending migrations on one connection holding a session
// advisory lock, so replicas starting together apply each migration once.
func (s *Store) migrate(ctx context.Context) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err, "postgres: migrate")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, s.migrateKey); err != nil {
		return mapErr(err, "postgres: migration lock")
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, s.migrateKey); uerr != nil {
			// Never hand the pool a connection that may still hold the lock.
			conn.Conn().Close(unlockCtx)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return mapErr(err, "postgres: create schema_migrations")
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return mapErr(err, "postgres: read schema_migrations")
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return mapErr(err, "postgres: read schema_migrations")
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range s.migrations {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return mapErr(err, "postgres: migration %s", m.Name)
		}
	}
	return nil
}

// listen opens the dedicated LISTEN connection.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return nil, mapErr(err, "postgres: listen")
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, mapErr(err, "postgres: listen")
	}
	return conn, nil
}

// listenLoop delivers notifications until ctx ends. When the connection
// drops it reconnects, with bounded backoff, and then publishes a resync:
// whatever was committed meanwhile was not heard.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn) {
	defer close(s.done)
	for {
		s.receive(ctx, conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		var delay time.Duration
		for conn = nil; conn == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			conn, _ = s.listen(ctx)
			delay = min(max(2*delay, 100*time.Millisecond), reconnectMaxDelay)
		}
		s.hub.Publish(store.Event{Kind: fanout.Resync})
	}
}

// receive publishes notifications until the connection fails or ctx ends.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, s.idleCheck)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if n != nil {
			var ev store.Event
			if json.Unmarshal([]byte(n.Payload), &ev) != nil || ev.Kind == "" {
				ev = store.Event{Kind: fanout.Resync}
			}
			s.hub.Publish(ev)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil || conn.IsClosed() || !errors.Is(err, context.DeadlineExceeded):
			return
		default:
			// Quiet for a while: a half-open TCP connection would wait
			// forever, so check it. Repeating LISTEN is a no-op that keeps
			// it the query pg_stat_activity shows for this connection.
			checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := conn.Exec(checkCtx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize())
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// WithTx runs fn in a write transaction that first takes the write advisory
// lock, so writers on every replica run one at a time. Queued events are sent
// with pg_notify inside the transaction, and PostgreSQL delivers them only if
// it commits.
func (s *Store) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	pgTx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done { // fn failed or panicked
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			pgTx.Rollback(rbCtx)
			cancel()
		}
	}()
	t := &tx{reader: reader{q: pgTx}, tx: pgTx}
	if err := fn(t); err != nil {
		return err
	}
	for _, ev := range t.events {
		payload, err := json.Marshal(ev)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "postgres: encode event")
		}
		if _, err := pgTx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, string(payload)); err != nil {
			return mapErr(err, "postgres: notify")
		}
	}
	done = true
	return mapErr(pgTx.Commit(ctx), "postgres: commit")
}

// begin starts a transaction holding the write lock. Nothing has been
// written yet, so a connection that turns out to be dead (the database
// restarted while it sat in the pool) is simply replaced.
func (s *Store) begin(ctx context.Context) (pgx.Tx, error) {
	var err error
	for range 3 {
		var pgTx pgx.Tx
		if pgTx, err = s.pool.Begin(ctx); err == nil {
			if _, err = pgTx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.writeKey); err == nil {
				return pgTx, nil
			}
			pgTx.Rollback(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil || !unavailable(err) {
			break
		}
	}
	return nil, mapErr(err, "postgres: begin transaction")
}

// Subscribe delivers events committed by every replica on this database from
// now until ctx ends, and a "resync" event whenever some may have been
// missed (after the LISTEN connection was re-established).
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Event, error) {
	return s.hub.Subscribe(ctx), nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.pool.Ping(ctx), "postgres: ping")
}

// Migrations reports the schema version applied and the latest this binary
// knows; a newer replica may have applied more.
func (s *Store) Migrations(ctx context.Context) (applied, latest int, err error) {
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return 0, 0, mapErr(err, "postgres: read schema_migrations")
	}
	return applied, len(s.migrations), nil
}

// Close stops listening, ends subscriptions and closes the pool; it is safe
// to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		s.hub.Close()
		s.pool.Close()
	})
	return nil
}

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reader answers queries, on the pool or inside a write transaction.
type reader struct{ q querier }

// tx is a write transaction. Statements that may be refused use ON CONFLICT
// DO NOTHING or check first instead of failing, because a failed statement
// would abort the whole PostgreSQL transaction, and callers may go on after
// a Conflict or NotFound (as they can on SQLite).
type tx struct {
	reader
	tx     pgx.Tx
	events []store.Event
}

const releaseColumns = `id, digest, labels, size, created_at, created_by`

func scanRelease(row pgx.Row) (store.Release, error) {
	var r store.Release
	var labels string
	if err := row.Scan(&r.ID, &r.Digest, &labels, &r.Size, &r.CreatedAt, &r.CreatedBy); err != nil {
		return r, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	var err error
	if r.Labels, err = jsoncol.Map(labels); err != nil {
		return r, errs.Wrap(errs.Internal, err, "postgres: release %s labels", r.ID)
	}
	return r, nil
}

func (r reader) GetRelease(ctx context.Context, id string) (store.Release, error) {
	rel, err := scanRelease(r.q.QueryRow(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return rel, errs.Wrap(errs.NotFound, err, "release %q not found", id)
	}
	if err != nil {
		return rel, mapErr(err, "postgres: read release %q", id)
	}
	return r.withFiles(ctx, rel)
}

func (r reader) GetReleaseByDigest(ctx context.Context, digest string) (store.Release, error) {
	rel, err := scanRelease(r.q.QueryRow(ctx, `SELECT `+releaseColumns+` FROM releases WHERE digest = $1`, digest))
	if errors.Is(err, pgx.ErrNoRows) {
		return rel, errs.Wrap(errs.NotFound, err, "no release has digest %q", digest)
	}
	if err != nil {
		return rel, mapErr(err, "postgres: read release by digest")
	}
	return rel, nil
}

// withFiles loads a release's files. A release and its files are written in
// one transaction, so a visible release has all of them.
func (r reader) withFiles(ctx context.Context, rel store.Release) (store.Release, error) {
	rows, err := r.q.Query(ctx, `SELECT f.path, b.content FROM release_files f JOIN blobs b ON b.digest = f.blob
		WHERE f.release_id = $1`, rel.ID)
	if err != nil {
		return rel, mapErr(err, "postgres: read release %q files", rel.ID)
	}
	rel.Files = map[string][]byte{}
	var path string
	var content []byte
	_, err = pgx.ForEachRow(rows, []any{&path, &content}, func() error {
		if content == nil {
			content = []byte{}
		}
		rel.Files[path] = content
		content = nil // Scan reuses a non-nil slice's memory
		return nil
	})
	return rel, mapErr(err, "postgres: read release %q files", rel.ID)
}

func (r reader) GetReleaseFile(ctx context.Context, id, path string) ([]byte, error) {
	var content []byte
	err := r.q.QueryRow(ctx, `SELECT b.content FROM release_files f JOIN blobs b ON b.digest = f.blob
		WHERE f.release_id = $1 AND f.path = $2`, id, path).Scan(&content)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.Wrap(errs.NotFound, err, "release %q has no file %q", id, path)
	}
	if err != nil {
		return nil, mapErr(err, "postgres: read release %q file %q", id, path)
	}
	if content == nil {
		content = []byte{}
	}
	return content, nil
}

func (r reader) ListReleases(ctx context.Context, limit int) ([]store.Release, error) {
	rows, err := r.q.Query(ctx, `SELECT `+releaseColumns+` FROM releases ORDER BY seq DESC LIMIT $1`, sqlLimit(limit))
	if err != nil {
		return nil, mapErr(err, "postgres: list releases")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.Release, error) { return scanRelease(row) })
	return out, mapErr(err, "postgres: list releases")
}

const environmentColumns = `name, position, protection, data, promoted, coalesce(release, ''), updated_at, coalesce(gates, '')`

func scanEnvironment(row pgx.Row) (store.Environment, error) {
	var e store.Environment
	var gates string
	err := row.Scan(&e.Name, &e.Position, &e.Protection, &e.Data, &e.Promoted, &e.Release, &e.UpdatedAt, &gates)
	e.UpdatedAt = e.UpdatedAt.UTC()
	if err == nil {
		if e.Gates, err = promocol.DecodeGates(gates); err != nil {
			err = errs.Wrap(errs.Internal, err, "postgres: environment %s gates", e.Name)
		}
	}
	return e, err
}

func (r reader) ListEnvironments(ctx context.Context) ([]store.Environment, error) {
	rows, err := r.q.Query(ctx, `SELECT `+environmentColumns+` FROM environments ORDER BY position, name`)
	if err != nil {
		return nil, mapErr(err, "postgres: list environments")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.Environment, error) { return scanEnvironment(row) })
	return out, mapErr(err, "postgres: list environments")
}

func (r reader) GetEnvironment(ctx context.Context, name string) (store.Environment, error) {
	e, err := scanEnvironment(r.q.QueryRow(ctx, `SELECT `+environmentColumns+` FROM environments WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, errs.Wrap(errs.NotFound, err, "environment %q not found", name)
	}
	return e, mapErr(err, "postgres: read environment %q", name)
}

// History returns env's assignments, newest first; an unknown env is NotFound.
func (r reader) History(ctx context.Context, env string, limit int) ([]store.Assignment, error) {
	if _, err := r.GetEnvironment(ctx, env); err != nil {
		return nil, err
	}
	rows, err := r.q.Query(ctx, `SELECT environment, release, coalesce(previous, ''), actor, at
		FROM assignments WHERE environment = $1 ORDER BY id DESC LIMIT $2`, env, sqlLimit(limit))
	if err != nil {
		return nil, mapErr(err, "postgres: read history of %q", env)
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.Assignment, error) {
		var a store.Assignment
		err := row.Scan(&a.Environment, &a.Release, &a.Previous, &a.Actor, &a.At)
		a.At = a.At.UTC()
		return a, err
	})
	return out, mapErr(err, "postgres: read history of %q", env)
}

const tokenColumns = `id, name, hash, role, environments, "groups", created_at, created_by`

func scanToken(row pgx.Row) (store.Token, error) {
	var t store.Token
	var envs, groups string
	if err := row.Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &envs, &groups, &t.CreatedAt, &t.CreatedBy); err != nil {
		return t, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	var err1, err2 error
	t.Environments, err1 = jsoncol.List(envs)
	t.Groups, err2 = jsoncol.List(groups)
	if err := errors.Join(err1, err2); err != nil {
		return t, errs.Wrap(errs.Internal, err, "postgres: token %s scopes", t.ID)
	}
	return t, nil
}

func (r reader) GetTokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(r.q.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, errs.Wrap(errs.NotFound, err, "token not found")
	}
	return t, mapErr(err, "postgres: read token")
}

func (r reader) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := r.q.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr(err, "postgres: list tokens")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.Token, error) { return scanToken(row) })
	return out, mapErr(err, "postgres: list tokens")
}

const auditColumns = `seq, at, actor, action, target, details, prev_hash, hash`

func scanAudit(row pgx.Row) (store.AuditEntry, error) {
	var e store.AuditEntry
	var details string
	err := row.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.Target, &details, &e.PrevHash, &e.Hash)
	e.At, e.Details = e.At.UTC(), []byte(details)
	return e, err
}

func (r reader) ListAudit(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	rows, err := r.q.Query(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2`, after, sqlLimit(limit))
	if err != nil {
		return nil, mapErr(err, "postgres: list audit")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.AuditEntry, error) { return scanAudit(row) })
	return out, mapErr(err, "postgres: list audit")
}

func (r reader) LastAudit(ctx context.Context) (store.AuditEntry, bool, error) {
	e, err := scanAudit(r.q.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AuditEntry{}, false, nil
	}
	if err != nil {
		return store.AuditEntry{}, false, mapErr(err, "postgres: read last audit entry")
	}
	return e, true, nil
}

func (t *tx) InsertRelease(ctx context.Context, r store.Release) error {
	labels, err := jsoncol.Encode(r.Labels)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "release labels")
	}
	tag, err := t.q.Exec(ctx, `INSERT INTO releases (id, digest, labels, size, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		r.ID, r.Digest, labels, r.Size, r.CreatedAt, r.CreatedBy)
	if err != nil {
		return mapErr(err, "postgres: insert release %q", r.ID)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.Conflict, "a release with ID %q or digest %q already exists", r.ID, r.Digest)
	}
	// Each content is stored once: only blobs not stored yet are sent.
	keys := make(map[string]string, len(r.Files)) // path → blob
	var all []string
	for path, content := range r.Files {
		k := blobkey.Of(content)
		keys[path] = k
		all = append(all, k)
	}
	rows, err := t.q.Query(ctx, `SELECT digest FROM blobs WHERE digest = ANY($1)`, all)
	if err != nil {
		return mapErr(err, "postgres: insert release %q files", r.ID)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return mapErr(err, "postgres: insert release %q files", r.ID)
	}
	stored := make(map[string]bool, len(r.Files))
	for _, k := range have {
		stored[k] = true
	}
	var blobs, files [][]any
	for path, content := range r.Files {
		k := keys[path]
		if !stored[k] {
			stored[k] = true
			if content == nil {
				content = []byte{} // NULL would break NOT NULL
			}
			blobs = append(blobs, []any{k, content})
		}
		files = append(files, []any{r.ID, path, k})
	}
	// COPY sends every new blob, then every file, in one round trip each.
	if len(blobs) > 0 {
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"blobs"}, []string{"digest", "content"}, pgx.CopyFromRows(blobs)); err != nil {
			return mapErr(err, "postgres: insert release %q files", r.ID)
		}
	}
	_, err = t.tx.CopyFrom(ctx, pgx.Identifier{"release_files"}, []string{"release_id", "path", "blob"}, pgx.CopyFromRows(files))
	return mapErr(err, "postgres: insert release %q files", r.ID)
}

// UpsertEnvironment creates or updates env's definition; e.Release is
// ignored, since only SetRelease changes an environment's release.
func (t *tx) UpsertEnvironment(ctx context.Context, e store.Environment) error {
	gates, err := promocol.EncodeGates(e.Gates)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "environment %q gates", e.Name)
	}
	_, err = t.q.Exec(ctx, `INSERT INTO environments (name, position, protection, data, promoted, release, updated_at, gates)
		VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, protection = excluded.protection,
			data = excluded.data, promoted = excluded.promoted, updated_at = excluded.updated_at, gates = excluded.gates`,
		e.Name, e.Position, e.Protection, e.Data, e.Promoted, e.UpdatedAt, gates)
	return mapErr(err, "postgres: upsert environment %q", e.Name)
}

func (t *tx) SetRelease(ctx context.Context, env, release, actor string, at time.Time) (string, error) {
	var previous string
	var exists bool
	err := t.q.QueryRow(ctx, `SELECT coalesce(e.release, ''), EXISTS (SELECT 1 FROM releases WHERE id = $2)
		FROM environments e WHERE e.name = $1`, env, release).Scan(&previous, &exists)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errs.Wrap(errs.NotFound, err, "environment %q not found", env)
	}
	if err != nil {
		return "", mapErr(err, "postgres: read environment %q", env)
	}
	if !exists {
		return "", errs.E(errs.NotFound, "release %q not found", release)
	}
	if _, err := t.q.Exec(ctx, `UPDATE environments SET release = $1, updated_at = $2 WHERE name = $3`,
		release, at, env); err != nil {
		return "", mapErr(err, "postgres: set release of %q", env)
	}
	if _, err := t.q.Exec(ctx, `INSERT INTO assignments (environment, release, previous, actor, at) VALUES ($1, $2, $3, $4, $5)`,
		env, release, nullIfEmpty(previous), actor, at); err != nil {
		return "", mapErr(err, "postgres: record assignment of %q", env)
	}
	return previous, nil
}

func (t *tx) InsertToken(ctx context.Context, tok store.Token) error {
	envs, err1 := jsoncol.Encode(tok.Environments)
	groups, err2 := jsoncol.Encode(tok.Groups)
	if err := errors.Join(err1, err2); err != nil {
		return errs.Wrap(errs.Invalid, err, "token scopes")
	}
	tag, err := t.q.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		tok.ID, tok.Name, tok.Hash, tok.Role, envs, groups, tok.CreatedAt, tok.CreatedBy)
	if err != nil {
		return mapErr(err, "postgres: insert token %q", tok.ID)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.Conflict, "a token with ID %q or the same secret already exists", tok.ID)
	}
	return nil
}

func (t *tx) DeleteToken(ctx context.Context, id string) error {
	tag, err := t.q.Exec(ctx, `DELETE FROM tokens WHERE id = $1`, id)
	if err != nil {
		return mapErr(err, "postgres: delete token %q", id)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "token %q not found", id)
	}
	return nil
}

func (t *tx) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	var last int64
	if err := t.q.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM audit`).Scan(&last); err != nil {
		return mapErr(err, "postgres: read last audit entry")
	}
	if e.Seq != last+1 {
		return errs.E(errs.Conflict, "audit entry %d is out of sequence: the next entry is %d", e.Seq, last+1)
	}
	tag, err := t.q.Exec(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		e.Seq, e.At, e.Actor, e.Action, e.Target, string(e.Details), e.PrevHash, e.Hash)
	if err != nil {
		return mapErr(err, "postgres: append audit entry %d", e.Seq)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.Conflict, "audit entry %d already exists", e.Seq)
	}
	return nil
}

func (t *tx) SetAuditHash(ctx context.Context, seq int64, prevHash, hash string) error {
	tag, err := t.q.Exec(ctx, `UPDATE audit SET prev_hash = $1, hash = $2 WHERE seq = $3`, prevHash, hash, seq)
	if err != nil {
		return mapErr(err, "postgres: re-sign audit entry %d", seq)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "audit entry %d not found", seq)
	}
	return nil
}

// Notify queues ev for pg_notify at commit. PostgreSQL folds identical
// notifications of one transaction into one; so does the queue.
func (t *tx) Notify(ev store.Event) {
	for _, q := range t.events {
		if q == ev {
			return
		}
	}
	t.events = append(t.events, ev)
}

// collect is pgx.CollectRows returning nil, not an empty slice, for no rows,
// as database/sql code naturally does.
func collect[T any](rows pgx.Rows, fn pgx.RowToFunc[T]) ([]T, error) {
	out, err := pgx.CollectRows(rows, fn)
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// sqlLimit maps "no limit" (0 or less) to LIMIT NULL.
func sqlLimit(limit int) any {
	if limit <= 0 {
		return nil
	}
	return limit
}

// unavailable reports whether err means the database cannot be reached or
// cannot serve now, as opposed to refusing a statement.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources: too many connections, disk full
			strings.HasPrefix(pgErr.Code, "57P"), // terminated, shutting down, starting up
			pgErr.Code == "25006":                // read-only transaction: a standby after failover
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "closed pool")
}

// mapErr gives a driver error its kind. format describes the operation, for
// logs; client-visible messages stay generic.
func mapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var kinded *errs.Error
	if errors.As(err, &kinded) {
		return err
	}
	if unavailable(err) {
		return errs.Wrap(errs.Unavailable, err, "database unavailable")
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.Wrap(errs.NotFound, err, "not found")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return errs.Wrap(errs.Conflict, err, "already exists")
		case strings.HasPrefix(pgErr.Code, "22"): // data exception, e.g. text that is not UTF-8
			return errs.Wrap(errs.Invalid, err, "a value cannot be stored")
		}
	}
	return errs.Wrap(errs.Internal, err, format, args...)
}
