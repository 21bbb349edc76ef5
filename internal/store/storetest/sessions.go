package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

func testSessions(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	ann := store.Token{ID: "t1", Name: "ann", Hash: "h1", Role: "admin", CreatedAt: base, CreatedBy: "admin"}
	bob := store.Token{ID: "t2", Name: "bob", Hash: "h2", Role: "viewer", Environments: []string{"dev"}, CreatedAt: base, CreatedBy: "admin"}
	tx(t, s, func(tx store.Tx) error { return errors.Join(tx.InsertToken(ctx, ann), tx.InsertToken(ctx, bob)) })

	sess := func(id, token string, created time.Time, ttl time.Duration) store.Session {
		return store.Session{IDHash: id, TokenID: token, CSRF: "csrf-" + id, CreatedAt: created, ExpiresAt: created.Add(ttl)}
	}
	a1 := sess("a1", "t1", base.In(zone), time.Hour)
	a2 := sess("a2", "t1", base.Add(time.Minute), time.Hour)
	a3 := sess("a3", "t1", base.Add(2*time.Minute), time.Hour)
	b1 := sess("b1", "t2", base, 10*time.Minute)
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(tx.InsertSession(ctx, a1), tx.InsertSession(ctx, a2), tx.InsertSession(ctx, a3), tx.InsertSession(ctx, b1))
	})
	got, tok, err := s.GetSession(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	a1.CreatedAt, a1.ExpiresAt = a1.CreatedAt.UTC(), a1.ExpiresAt.UTC()
	diff(t, "GetSession(a1)", a1, got)
	diff(t, "GetSession(a1)'s token", ann, tok)
	wantUTC(t, "ExpiresAt", got.ExpiresAt)
	_, _, err = s.GetSession(ctx, "nope")
	wantKind(t, "GetSession of none", err, errs.NotFound)

	for _, tt := range []struct {
		name string
		s    store.Session
		kind errs.Kind
	}{
		{"same ID hash", sess("a1", "t2", base, time.Hour), errs.Conflict},
		{"unknown token", sess("x1", "t9", base, time.Hour), errs.NotFound},
	} {
		// The transaction stays usable after the refusal (PostgreSQL).
		err := s.WithTx(ctx, func(tx store.Tx) error {
			wantKind(t, "InsertSession with the "+tt.name, tx.InsertSession(ctx, tt.s), tt.kind)
			_, _, err := tx.GetSession(ctx, "a2")
			return err
		})
		if err != nil {
			t.Errorf("the transaction after InsertSession with the %s: %v", tt.name, err)
		}
	}

	// Expired at now, and t1's beyond its 2 newest, go; b1 (not expired
	// at base+10m-1µs) stays.
	var n int64
	tx(t, s, func(tx store.Tx) (err error) {
		n, err = tx.DeleteSessions(ctx, base.Add(10*time.Minute-time.Microsecond), "t1", 2)
		return err
	})
	if n != 1 {
		t.Errorf("DeleteSessions(keep 2) deleted %d, want 1 (a1)", n)
	}
	for id, want := range map[string]bool{"a1": false, "a2": true, "a3": true, "b1": true} {
		_, _, err := s.GetSession(ctx, id)
		if (err == nil) != want {
			t.Errorf("after DeleteSessions, GetSession(%s) = %v; want found %v", id, err, want)
		}
	}
	tx(t, s, func(tx store.Tx) (err error) {
		n, err = tx.DeleteSessions(ctx, base.Add(10*time.Minute), "", 0)
		return err
	})
	if n != 1 {
		t.Errorf("DeleteSessions(expired at base+10m) deleted %d, want 1 (b1)", n)
	}

	tx(t, s, func(tx store.Tx) error { return tx.DeleteSession(ctx, "a2") })
	_, _, err = s.GetSession(ctx, "a2")
	wantKind(t, "GetSession after DeleteSession", err, errs.NotFound)
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.DeleteSession(ctx, "a2") })
	wantKind(t, "DeleteSession of none", err, errs.NotFound)

	// Deleting the token ends its sessions.
	tx(t, s, func(tx store.Tx) error { return tx.DeleteToken(ctx, "t1") })
	_, _, err = s.GetSession(ctx, "a3")
	wantKind(t, "GetSession after its token was deleted", err, errs.NotFound)
}
