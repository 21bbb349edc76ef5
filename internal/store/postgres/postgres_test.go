package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/store/storetest"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	pgtest.BaseURL(t)
	url := storetest.PerTest(func(t *testing.T) string { return pgtest.URL(t) })
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), url(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// await returns the next event of the given kind within d.
func await(t *testing.T, ch <-chan store.Event, kind string, d time.Duration) store.Event {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("subscription closed")
			}
			if string(ev.Kind) == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within %v", kind, d)
		}
	}
}

func notify(t *testing.T, s store.Store, ev store.Event) {
	t.Helper()
	if err := s.WithTx(t.Context(), func(tx store.Tx) error { tx.Notify(ev); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyReachesOtherReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	ch, err := b.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	notify(t, a, store.Event{Kind: "release", ID: "r1"})
	if ev := await(t, ch, "release", time.Second); ev.ID != "r1" {
		t.Errorf("event = %+v, want release r1", ev)
	}
}

// terminate ends the backends of connections whose last query matches
// pattern and mentions the test's schema, returning how many it ended.
func terminate(t *testing.T, url, where string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND datname = current_database() AND `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := open(t, url)
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Only this test's listener: its LISTEN names the schema.
	if n := terminate(t, url, `query ILIKE 'LISTEN%' AND query LIKE '%' || $1 || '%'`, pgtest.Schema(t, url)); n != 1 {
		t.Fatalf("terminated %d LISTEN backends, want 1", n)
	}
	await(t, ch, "resync", 5*time.Second)
	notify(t, s, store.Event{Kind: "token", ID: "t1"})
	if ev := await(t, ch, "token", time.Second); ev.ID != "t1" {
		t.Errorf("event after reconnecting = %+v, want token t1", ev)
	}
}

// TestOutage: when every connection is cut, calls fail as Unavailable (never
// as internal errors) and the store recovers by itself.
func TestOutage(t *testing.T) {
	t.Parallel()
	app := fmt.Sprintf("envplane-outage-%d", time.Now().UnixNano())
	url := pgtest.WithParam(t, pgtest.URL(t), "application_name", app)
	s := open(t, url)
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := terminate(t, url, `application_name = $1`, app); n < 2 {
		t.Fatalf("terminated %d backends, want the pool's and the listener's", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		err := s.WithTx(t.Context(), func(tx store.Tx) error {
			tx.Notify(store.Event{Kind: "environment", Environment: "dev"})
			return tx.UpsertEnvironment(t.Context(), store.Environment{Name: fmt.Sprint("dev", i)})
		})
		if err == nil {
			break
		}
		if !errs.Is(err, errs.Unavailable) {
			t.Fatalf("write during the outage: %v (kind %v), want Unavailable", err, errs.KindOf(err))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The write may commit before the listener is back, and its event is then
	// lost: that is what "resync" announces. Events after it arrive.
	await(t, ch, "resync", 5*time.Second)
	notify(t, s, store.Event{Kind: "environment", Environment: "dev"})
	await(t, ch, "environment", 5*time.Second)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after recovery: %v", err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.URL(t))
	s.Close()
	for name, err := range map[string]error{
		"Ping":       s.Ping(t.Context()),
		"GetRelease": func() error { _, err := s.GetRelease(t.Context(), "r1"); return err }(),
		"WithTx":     s.WithTx(t.Context(), func(store.Tx) error { return nil }),
	} {
		if !errs.Is(err, errs.Unavailable) {
			t.Errorf("%s after Close = %v (kind %v), want Unavailable", name, err, errs.KindOf(err))
		}
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	_, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if !errs.Is(err, errs.Unavailable) {
		t.Errorf("Open(unreachable) = %v (kind %v), want Unavailable", err, errs.KindOf(err))
	}
}

// TestReplicasStartTogether: migrations run once even when several replicas
// open a fresh database at the same moment.
func TestReplicasStartTogether(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url)
			if err == nil {
				s.Close()
			}
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	applied, latest, err := open(t, url).Migrations(t.Context())
	if err != nil || applied != latest {
		t.Errorf("Migrations = %d, %d, %v", applied, latest, err)
	}
}
