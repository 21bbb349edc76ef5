// Package fanout delivers committed store events to every subscriber in one
// process. Publishing never blocks a writer: each subscriber has its own
// bounded queue, and a queue that overflows collapses into a single resync
// event, which tells a slow subscriber to reload everything instead of
// letting it miss changes silently.
package fanout

import (
	"context"
	"sync"

	"github.com/envplane/envplane/internal/store"
)

// Resync is the kind of the event that stands for "events may have been
// lost: reload everything".
const Resync = "resync"

// maxQueue bounds the events waiting for one subscriber.
const maxQueue = 1024

// Hub fans events out to subscribers. The zero value is not usable; call New.
type Hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	done   chan struct{}
	closed bool
}

type sub struct {
	mu    sync.Mutex
	queue []store.Event
	wake  chan struct{} // capacity 1: "the queue may have grown"
}

// New returns an open hub.
func New() *Hub {
	return &Hub{subs: map[*sub]struct{}{}, done: make(chan struct{})}
}

// Subscribe returns a channel of the events published from now on. It is
// closed when ctx ends or the hub closes.
func (h *Hub) Subscribe(ctx context.Context) <-chan store.Event {
	out := make(chan store.Event)
	s := &sub{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(out)
		return out
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			ev, ok := s.pop()
			if !ok {
				select {
				case <-s.wake:
					continue
				case <-ctx.Done():
					return
				case <-h.done:
					return
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-h.done:
				return
			}
		}
	}()
	return out
}

// Publish queues events, in order, for every current subscriber.
func (h *Hub) Publish(events ...store.Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.push(events)
	}
}

// Close ends every subscription.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

func (s *sub) push(events []store.Event) {
	s.mu.Lock()
	if len(s.queue)+len(events) > maxQueue {
		// Whatever was pending is superseded by a full reload.
		s.queue = append(s.queue[:0], store.Event{Kind: Resync})
	} else {
		s.queue = append(s.queue, events...)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sub) pop() (store.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return store.Event{}, false
	}
	ev := s.queue[0]
	s.queue = s.queue[1:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
	return ev, true
}
