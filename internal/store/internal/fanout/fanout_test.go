package fanout

import (
	"context"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/store"
)

func receive(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(time.Second):
		t.Fatal("no event within 1s")
		return store.Event{}
	}
}

func TestOrderAndFanOut(t *testing.T) {
	h := New()
	defer h.Close()
	a, b := h.Subscribe(t.Context()), h.Subscribe(t.Context())
	evs := []store.Event{{Kind: "release", ID: "1"}, {Kind: "audit", ID: "2"}}
	h.Publish(evs...)
	for _, ch := range []<-chan store.Event{a, b} {
		for _, want := range evs {
			if got := receive(t, ch); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}
	}
}

// A subscriber that falls too far behind gets one resync instead of an
// unbounded queue, and then the events that follow.
func TestOverflowCollapsesIntoResync(t *testing.T) {
	h := New()
	defer h.Close()
	slow := h.Subscribe(t.Context())
	many := make([]store.Event, maxQueue+1)
	for i := range many {
		many[i] = store.Event{Kind: "audit", ID: string(rune('a' + i%26))}
	}
	h.Publish(many...)
	if got := receive(t, slow); got.Kind != Resync {
		t.Fatalf("got %+v after an overflow, want a resync", got)
	}
	h.Publish(store.Event{Kind: "token", ID: "t"})
	if got := receive(t, slow); got.Kind != "token" {
		t.Errorf("got %+v after the resync, want the next event", got)
	}
}

func TestChannelClosesWithContextAndHub(t *testing.T) {
	h := New()
	ctx, cancel := context.WithCancel(t.Context())
	byCtx, byHub := h.Subscribe(ctx), h.Subscribe(t.Context())
	cancel()
	h.Close()
	for _, ch := range []<-chan store.Event{byCtx, byHub} {
		select {
		case _, ok := <-ch:
			if ok {
				t.Error("event on an ended subscription")
			}
		case <-time.After(time.Second):
			t.Error("subscription not closed")
		}
	}
	if _, ok := <-h.Subscribe(t.Context()); ok {
		t.Error("Subscribe on a closed hub delivered an event")
	}
}
