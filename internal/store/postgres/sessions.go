package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// sessionTokenColumns are the token's columns, qualified for the join.
var sessionTokenColumns = "t." + strings.ReplaceAll(tokenColumns, ", ", ", t.")

// prefixScanner scans the leading columns into pre, the rest into what
// Scan is given.
type prefixScanner struct {
	row pgx.Row
	pre []any
}

func (p prefixScanner) Scan(dest ...any) error { return p.row.Scan(append(p.pre, dest...)...) }

func (r reader) GetSession(ctx context.Context, idHash string) (store.Session, store.Token, error) {
	s := store.Session{IDHash: idHash}
	row := r.q.QueryRow(ctx, `SELECT s.csrf, s.created_at, s.expires_at, `+sessionTokenColumns+`
		FROM sessions s JOIN tokens t ON t.id = s.token_id WHERE s.id_hash = $1`, idHash)
	t, err := scanToken(prefixScanner{row, []any{&s.CSRF, &s.CreatedAt, &s.ExpiresAt}})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, store.Token{}, errs.E(errs.NotFound, "no such session")
	}
	if err != nil {
		return store.Session{}, store.Token{}, mapErr(err, "postgres: read session")
	}
	s.TokenID, s.CreatedAt, s.ExpiresAt = t.ID, s.CreatedAt.UTC(), s.ExpiresAt.UTC()
	return s, t, nil
}

// InsertSession checks first and inserts with ON CONFLICT DO NOTHING: a
// failed statement would abort the transaction (see tx).
func (t *tx) InsertSession(ctx context.Context, s store.Session) error {
	var exists bool
	if err := t.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1)`, s.TokenID).Scan(&exists); err != nil {
		return mapErr(err, "postgres: read token %q", s.TokenID)
	}
	if !exists {
		return errs.E(errs.NotFound, "token %q not found", s.TokenID)
	}
	tag, err := t.q.Exec(ctx, `INSERT INTO sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id_hash) DO NOTHING`, s.IDHash, s.TokenID, s.CSRF, s.CreatedAt, s.ExpiresAt)
	if err != nil {
		return mapErr(err, "postgres: store a session")
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.Conflict, "the session exists already")
	}
	return nil
}

func (t *tx) DeleteSession(ctx context.Context, idHash string) error {
	tag, err := t.q.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	if err != nil {
		return mapErr(err, "postgres: delete a session")
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "no such session")
	}
	return nil
}

func (t *tx) DeleteSessions(ctx context.Context, now time.Time, tokenID string, keep int) (int64, error) {
	tag, err := t.q.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1
		OR (token_id = $2 AND id_hash NOT IN (SELECT id_hash FROM sessions WHERE token_id = $2 ORDER BY created_at DESC, id_hash LIMIT $3))`,
		now, tokenID, max(keep, 0))
	if err != nil {
		return 0, mapErr(err, "postgres: delete sessions")
	}
	return tag.RowsAffected(), nil
}
