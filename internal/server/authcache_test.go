package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/server"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/sqlite"
)

// countingStore counts token lookups.
type countingStore struct {
	store.Store
	lookups atomic.Int64
}

func (c *countingStore) GetTokenByHash(ctx context.Context, hash string) (store.Token, error) {
	c.lookups.Add(1)
	return c.Store.GetTokenByHash(ctx, hash)
}

func startCounting(t *testing.T, mod ...func(*server.Options)) (*harness, *countingStore) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envplane.db"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	return startOn(t, cs, mod...), cs
}

// A repeated unknown token is refused from memory; a token created
// afterwards (here by another replica, through a store event) is accepted.
func TestUnknownTokenCache(t *testing.T) {
	h, cs := startCounting(t)
	const unknown = "ep_notyetcreated000000000000000000000000"
	const path = "/api/v1/environments"
	before := cs.lookups.Load()
	for range 5 {
		if r := h.call("GET", path, unknown, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401: %s", r.status, r.body)
		}
	}
	if got := cs.lookups.Load() - before; got != 1 {
		t.Errorf("5 requests with one unknown token made %d store lookups, want 1", got)
	}

	err := cs.WithTx(context.Background(), func(tx store.Tx) error {
		if err := tx.InsertToken(context.Background(), store.Token{ID: "tok_other", Name: "other", Hash: auth.HashToken(unknown),
			Role: string(auth.Viewer), Environments: []string{}, CreatedAt: time.Now().UTC(), CreatedBy: "test"}); err != nil {
			return err
		}
		tx.Notify(domain.Event{Kind: domain.EventToken, ID: "tok_other"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return h.call("GET", path, unknown, nil).status == http.StatusOK })

	// A token created through this server's API works at once.
	if r := h.call("GET", path, "ep_created00000000000000000000000000000", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("status %d", r.status)
	}
	tok, _ := h.token("ci", "viewer")
	h.must(http.StatusOK, "GET", path, tok, nil)
}

// Lookups of unknown tokens are limited per client address; tokens already
// cached, known or unknown, are not affected. (A token not yet cached, from
// an address over its limit, waits like a guess: it cannot be told apart.)
func TestUnknownTokenLimit(t *testing.T) {
	h, cs := startCounting(t, func(o *server.Options) { o.AuthFailLimit, o.AuthFailBurst = 0.5, 3 })
	viewer, _ := h.token("viewer", "viewer")
	const path = "/api/v1/environments"
	h.must(http.StatusOK, "GET", path, viewer, nil)
	h.must(http.StatusOK, "GET", path, adminToken, nil)
	var got []int
	for i := range 5 {
		got = append(got, h.call("GET", path, "ep_guess"+itoa(i)+"000000000000000000000000000000", nil).status)
	}
	want := []int{401, 401, 401, 429, 429}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("statuses of 5 guesses (-want +got):\n%s", d)
	}
	r := h.call("GET", path, "ep_guess9000000000000000000000000000000", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" || r.err(t).Code != "rate_limited" {
		t.Errorf("over the limit: %d, Retry-After %q, %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	lookups := cs.lookups.Load()
	h.must(http.StatusUnauthorized, "GET", path, "ep_guess0000000000000000000000000000000", nil) // cached: still 401
	h.must(http.StatusOK, "GET", path, viewer, nil)
	h.must(http.StatusOK, "GET", path, adminToken, nil)
	if got := cs.lookups.Load() - lookups; got != 0 {
		t.Errorf("%d lookups, want none", got)
	}
}
