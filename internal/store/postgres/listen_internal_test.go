package postgres

import (
	"testing"
	"time"

	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

// TestListenerIdleChecks: the periodic liveness check on a quiet LISTEN
// connection leaves it working, without spurious resyncs.
func TestListenerIdleChecks(t *testing.T) {
	url := pgtest.URL(t)
	// Not parallel: Open reads this variable.
	saved := listenIdleCheck
	listenIdleCheck = 20 * time.Millisecond
	s, err := Open(t.Context(), url)
	listenIdleCheck = saved
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // several checks
	ev := store.Event{Kind: "release", ID: "r1"}
	if err := s.WithTx(t.Context(), func(tx store.Tx) error { tx.Notify(ev); return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ch:
		if got != ev {
			t.Errorf("first event = %+v, want %+v", got, ev)
		}
	case <-time.After(time.Second):
		t.Fatal("no event within 1s")
	}
}
