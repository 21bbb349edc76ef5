package storetest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

func testFlagOverrides(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(
			tx.UpsertEnvironment(ctx, store.Environment{Name: "dev", UpdatedAt: base}),
			tx.UpsertEnvironment(ctx, store.Environment{Name: "prod", Position: 1, UpdatedAt: base}),
		)
	})
	if got, err := s.ListFlagOverrides(ctx, ""); err != nil || got != nil {
		t.Fatalf("ListFlagOverrides on an empty store = %v, %v", got, err)
	}
	str := func(s string) *string { return &s }
	full := store.FlagOverride{Environment: "prod", Key: "dark-mode", State: str("DISABLED"), DefaultVariant: str("off"),
		Targeting: json.RawMessage(`{"if":[true,"on",null]}`), VariantsDigest: "v1", UpdatedAt: base.In(zone), UpdatedBy: "ann"}
	bare := store.FlagOverride{Environment: "dev", Key: "banner", State: str("ENABLED"), VariantsDigest: "v2", UpdatedAt: base, UpdatedBy: "bob"}
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(tx.PutFlagOverride(ctx, full), tx.PutFlagOverride(ctx, bare))
	})
	full.UpdatedAt = base
	got, err := s.ListFlagOverrides(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListFlagOverrides", []store.FlagOverride{bare, full}, got)
	got, _ = s.ListFlagOverrides(ctx, "prod")
	diff(t, "ListFlagOverrides(prod)", []store.FlagOverride{full}, got)

	// A put replaces, NULLs included.
	replaced := store.FlagOverride{Environment: "prod", Key: "dark-mode", DefaultVariant: str("on"), VariantsDigest: "v3", UpdatedAt: base, UpdatedBy: "cy"}
	tx(t, s, func(tx store.Tx) error { return tx.PutFlagOverride(ctx, replaced) })
	got, _ = s.ListFlagOverrides(ctx, "prod")
	diff(t, "ListFlagOverrides after a replace", []store.FlagOverride{replaced}, got)

	err = s.WithTx(ctx, func(tx store.Tx) error {
		return tx.PutFlagOverride(ctx, store.FlagOverride{Environment: "staging", Key: "x", VariantsDigest: "v", UpdatedAt: base, UpdatedBy: "x"})
	})
	wantKind(t, "PutFlagOverride in an unknown environment", err, errs.NotFound)
	tx(t, s, func(tx store.Tx) error { return tx.DeleteFlagOverride(ctx, "prod", "dark-mode") })
	got, _ = s.ListFlagOverrides(ctx, "prod")
	diff(t, "ListFlagOverrides after a delete", []store.FlagOverride(nil), got)
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.DeleteFlagOverride(ctx, "prod", "dark-mode") })
	wantKind(t, "DeleteFlagOverride of none", err, errs.NotFound)
}
