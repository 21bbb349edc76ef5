package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// sessionTokenColumns are the token's columns, qualified for the join.
var sessionTokenColumns = "t." + strings.ReplaceAll(tokenColumns, ", ", ", t.")

// prefixScanner scans the leading columns into pre, the rest into what
// Scan is given.
type prefixScanner struct {
	row scanner
	pre []any
}

func (p prefixScanner) Scan(dest ...any) error { return p.row.Scan(append(p.pre, dest...)...) }

func (r reader) GetSession(ctx context.Context, idHash string) (store.Session, store.Token, error) {
	s := store.Session{IDHash: idHash}
	var created, expires int64
	row := r.q.QueryRowContext(ctx, `SELECT s.csrf, s.created_at, s.expires_at, `+sessionTokenColumns+`
		FROM sessions s JOIN tokens t ON t.id = s.token_id WHERE s.id_hash = ?`, idHash)
	t, err := scanToken(prefixScanner{row, []any{&s.CSRF, &created, &expires}})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, store.Token{}, errs.E(errs.NotFound, "no such session")
	}
	if err != nil {
		return store.Session{}, store.Token{}, mapErr(err, "sqlite: read session")
	}
	s.TokenID, s.CreatedAt, s.ExpiresAt = t.ID, fromMicros(created), fromMicros(expires)
	return s, t, nil
}

func (t *tx) InsertSession(ctx context.Context, s store.Session) error {
	var n int
	if err := t.q.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE id = ?`, s.TokenID).Scan(&n); err != nil {
		return mapErr(err, "sqlite: read token %q", s.TokenID)
	}
	if n == 0 {
		return errs.E(errs.NotFound, "token %q not found", s.TokenID)
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		s.IDHash, s.TokenID, s.CSRF, s.CreatedAt.UnixMicro(), s.ExpiresAt.UnixMicro())
	return mapErr(err, "sqlite: store a session")
}

func (t *tx) DeleteSession(ctx context.Context, idHash string) error {
	res, err := t.q.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	if err != nil {
		return mapErr(err, "sqlite: delete a session")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errs.E(errs.NotFound, "no such session")
	}
	return nil
}

func (t *tx) DeleteSessions(ctx context.Context, now time.Time, tokenID string, keep int) (int64, error) {
	res, err := t.q.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?
		OR (token_id = ? AND id_hash NOT IN (SELECT id_hash FROM sessions WHERE token_id = ? ORDER BY created_at DESC, id_hash LIMIT ?))`,
		now.UnixMicro(), tokenID, tokenID, max(keep, 0))
	if err != nil {
		return 0, mapErr(err, "sqlite: delete sessions")
	}
	n, err := res.RowsAffected()
	return n, mapErr(err, "sqlite: delete sessions")
}
