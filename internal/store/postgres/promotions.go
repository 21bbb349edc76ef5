package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/internal/promocol"
)

func (r reader) GetPromotion(ctx context.Context, id string) (store.Promotion, error) {
	var data string
	err := r.q.QueryRow(ctx, `SELECT data FROM promotions WHERE id = $1`, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Promotion{}, errs.Wrap(errs.NotFound, err, "promotion %q not found", id)
	}
	if err != nil {
		return store.Promotion{}, mapErr(err, "postgres: read promotion %q", id)
	}
	p, err := promocol.Decode(data)
	if err != nil {
		return p, errs.Wrap(errs.Internal, err, "postgres: decode promotion %q", id)
	}
	return p, nil
}

func (r reader) ListPromotions(ctx context.Context, f domain.PromotionFilter) ([]store.Promotion, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Environment != "" {
		where = append(where, "environment = "+arg(f.Environment))
	}
	if f.State != "" {
		where = append(where, "state = "+arg(string(f.State)))
	}
	if f.OpenOnly {
		where = append(where, "state IN ("+arg(string(domain.PromotionChecking))+", "+arg(string(domain.PromotionAwaitingApproval))+
			", "+arg(string(domain.PromotionApproved))+")")
	}
	q := `SELECT data FROM promotions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ` + arg(sqlLimit(f.Limit))
	rows, err := r.q.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err, "postgres: list promotions")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (store.Promotion, error) {
		var data string
		if err := row.Scan(&data); err != nil {
			return store.Promotion{}, err
		}
		p, err := promocol.Decode(data)
		if err != nil {
			return p, errs.Wrap(errs.Internal, err, "postgres: decode promotion")
		}
		return p, nil
	})
	return out, mapErr(err, "postgres: list promotions")
}

func (t *tx) InsertPromotion(ctx context.Context, p store.Promotion) error {
	data, err := promocol.Encode(p)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "promotion %q", p.ID)
	}
	var envOK, relOK bool
	if err := t.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM environments WHERE name = $1), EXISTS (SELECT 1 FROM releases WHERE id = $2)`,
		p.Environment, p.Release).Scan(&envOK, &relOK); err != nil {
		return mapErr(err, "postgres: insert promotion %q", p.ID)
	}
	if !envOK {
		return errs.E(errs.NotFound, "environment %q not found", p.Environment)
	}
	if !relOK {
		return errs.E(errs.NotFound, "release %q not found", p.Release)
	}
	tag, err := t.q.Exec(ctx, `INSERT INTO promotions (id, environment, release, state, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		p.ID, p.Environment, p.Release, string(p.State), p.CreatedAt, p.UpdatedAt, data)
	if err != nil {
		return mapErr(err, "postgres: insert promotion %q", p.ID)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.Conflict, "a promotion with ID %q already exists", p.ID)
	}
	return nil
}

func (t *tx) UpdatePromotion(ctx context.Context, p store.Promotion) error {
	data, err := promocol.Encode(p)
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "promotion %q", p.ID)
	}
	tag, err := t.q.Exec(ctx, `UPDATE promotions SET state = $1, updated_at = $2, data = $3 WHERE id = $4`,
		string(p.State), p.UpdatedAt, data, p.ID)
	if err != nil {
		return mapErr(err, "postgres: update promotion %q", p.ID)
	}
	if tag.RowsAffected() == 0 {
		return errs.E(errs.NotFound, "promotion %q not found", p.ID)
	}
	return nil
}
