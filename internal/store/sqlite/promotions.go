package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/promocol"
)

func (r reader) GetPromotion(ctx context.Context, id string) (store.Promotion, error) {
	var data string
	err := r.q.QueryRowContext(ctx, `SELECT data FROM promotions WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Promotion{}, errs.Wrap(errs.NotFound, err, "promotion %q not found", id)
	}
	if err != nil {
		return store.Promotion{}, mapErr(err, "sqlite: read promotion %q", id)
	}
	p, err := promocol.Decode(data)
	return p, mapErr(err, "sqlite: decode promotion %q", id)
}

func (r reader) ListPromotions(ctx context.Context, f domain.PromotionFilter) ([]store.Promotion, error) {
	var where []string
	var args []any
	if f.Environment != "" {
		where, args = append(where, "environment = ?"), append(args, f.Environment)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if f.OpenOnly {
		where, args = append(where, "state IN (?, ?, ?)"), append(args, string(domain.PromotionChecking),
			string(domain.PromotionAwaitingApproval), string(domain.PromotionApproved))
	}
	q := `SELECT data FROM promotions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := r.q.QueryContext(ctx, q+` ORDER BY seq DESC LIMIT ?`, append(args, sqlLimit(f.Limit))...)
	if err != nil {
		return nil, mapErr(err, "sqlite: list promotions")
	}
	defer rows.Close()
	var out []store.Promotion
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, mapErr(err, "sqlite: list promotions")
		}
		p, err := promocol.Decode(data)
		if err != nil {
			return nil, mapErr(err, "sqlite: decode promotion")
		}
		out = append(out, p)
	}
	return out, mapErr(rows.Err(), "sqlite: list promotions")
}

func (t *tx) InsertPromotion(ctx context.Context, p store.Promotion) error {
	data, err := promocol.Encode(p)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "promotion %q", p.ID)
	}
	for _, check := range []struct{ q, what string }{
		{`SELECT 1 FROM environments WHERE name = ?`, p.Environment},
		{`SELECT 1 FROM releases WHERE id = ?`, p.Release},
	} {
		var one int
		if err := t.q.QueryRowContext(ctx, check.q, check.what).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return errs.Wrap(errs.NotFound, err, "%q not found", check.what)
		} else if err != nil {
			return mapErr(err, "sqlite: insert promotion %q", p.ID)
		}
	}
	_, err = t.q.ExecContext(ctx, `INSERT INTO promotions (id, seq, environment, release, state, created_at, updated_at, data)
		VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM promotions), ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Environment, p.Release, string(p.State), p.CreatedAt.UnixMicro(), p.UpdatedAt.UnixMicro(), data)
	if isUnique(err) {
		return errs.Wrap(errs.Conflict, err, "a promotion with ID %q already exists", p.ID)
	}
	return mapErr(err, "sqlite: insert promotion %q", p.ID)
}

func (t *tx) UpdatePromotion(ctx context.Context, p store.Promotion) error {
	data, err := promocol.Encode(p)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "promotion %q", p.ID)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE promotions SET state = ?, updated_at = ?, data = ? WHERE id = ?`,
		string(p.State), p.UpdatedAt.UnixMicro(), data, p.ID)
	if err != nil {
		return mapErr(err, "sqlite: update promotion %q", p.ID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return mapErr(err, "sqlite: update promotion %q", p.ID)
	} else if n == 0 {
		return errs.E(errs.NotFound, "promotion %q not found", p.ID)
	}
	return nil
}
