package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/store/sqlite"
)

// newApp is an App over a fresh SQLite store with a test chain and a
// clock the test moves.
func newApp(t testing.TB, now *time.Time) *app.App {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	chain, err := audit.NewChain(bytes.Repeat([]byte{7}, audit.MinKeySize))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{Store: st, Clock: func() time.Time { return *now }, RevealWindow: time.Minute,
		Audit: app.AuditOptions{Chain: chain}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewNeedsAnAuditKey(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := app.New(app.Options{Store: st}); err == nil {
		t.Fatal("an App without a chain key or vault was built")
	}
}

// TestSDKRevealsAreSummedPerWindow: an SDK key's reveals become one entry
// per key and environment once the window closed, counting requests.
func TestSDKRevealsAreSummedPerWindow(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a := newApp(t, &now)
	ctx := context.Background()
	sdk := &auth.Principal{TokenID: "tok_1", Name: "app", Role: auth.SDK, Environments: []string{"dev"}}
	admin := &auth.Principal{TokenID: "tok_2", Name: "ops", Role: auth.Admin}
	reveal := app.Reveal{Environment: "dev", Via: "config", Keys: []string{"db.password"}}

	for range 5 {
		if err := a.RecordReveal(ctx, sdk, reveal); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing hidden shown: nothing recorded, for anybody.
	if err := a.RecordReveal(ctx, admin, app.Reveal{Environment: "dev", Via: "config"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	if err := a.FlushReveals(ctx, false); err != nil {
		t.Fatal(err)
	}
	entries := func() []string {
		es, _, err := a.ListAudit(ctx, admin, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			var d map[string]any
			_ = json.Unmarshal(e.Details, &d)
			out = append(out, e.Action+" "+e.Actor+" "+d["environment"].(string)+" "+string(mustJSON(d["requests"])))
		}
		return out
	}
	if got := entries(); len(got) != 0 {
		t.Fatalf("flushed before the window closed: %v", got)
	}
	now = now.Add(31 * time.Second)
	if err := a.FlushReveals(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordReveal(ctx, admin, reveal); err != nil { // one entry at once
		t.Fatal(err)
	}
	want := []string{
		string(domain.ActionConfigReveal) + " app (token tok_1) dev 5",
		string(domain.ActionConfigReveal) + " ops (token tok_2) dev null",
	}
	if diff := cmp.Diff(want, entries()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
