package server

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

// hub fans snapshot changes out to the SSE streams of each environment.
// A message is encoded once (publish's caller) and every stream writes the
// same bytes. Each stream has one goroutine (net/http's) waiting on two
// channels: its messages and a poke. Everything else a stream must react to
// (the server stopping, falling behind, a token change, its heartbeat) is a
// flag set by the hub, followed by a poke; so there is no timer and no
// shared channel per stream.
type hub struct {
	mu      sync.Mutex
	subs    map[string]map[*subscriber]struct{}
	stopped bool
	// n streams are open, peak at most since the last trim.
	n, peak int
	// draining: a trim was asked for since the streams were last all gone.
	draining bool
	// trim is called when many streams have ended (their buffers and
	// stacks are garbage the OS should get back).
	trim func()
	// next is the heartbeat shard of the next stream (round robin).
	next uint32
}

// trimAfter is how many streams must have ended, and at least half of
// those that were open, before memory is handed back.
const trimAfter = 1000

// heartbeatShards: the heartbeat interval is cut into this many ticks, each
// beating the streams of one shard, so that thousands of streams do not
// all write at the same moment.
const heartbeatShards = 16

// maxBacklog bounds the messages waiting for one stream.
const maxBacklog = 16

// Flags of a subscriber: what the stream's goroutine must look at when poked.
const (
	subStop   uint32 = 1 << iota // the server stops: end the stream
	subLagged                    // fell more than maxBacklog behind: end it
	subTokens                    // tokens changed: check the stream's token
	subBeat                      // time for a heartbeat
)

type subscriber struct {
	ch    chan []byte   // messages, at most maxBacklog waiting
	poke  chan struct{} // capacity 1: "look at flags"
	flags atomic.Uint32
	shard uint32
}

// signal sets flags f on sub and pokes it, never blocking.
func (sub *subscriber) signal(f uint32) {
	sub.flags.Or(f)
	select {
	case sub.poke <- struct{}{}:
	default:
	}
}

func newHub() *hub { return &hub{subs: map[string]map[*subscriber]struct{}{}} }

func (h *hub) subscribe(env string) *subscriber {
	sub := &subscriber{ch: make(chan []byte, maxBacklog), poke: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		sub.signal(subStop)
	}
	sub.shard = h.next % heartbeatShards
	h.next++
	if h.subs[env] == nil {
		h.subs[env] = map[*subscriber]struct{}{}
	}
	h.subs[env][sub] = struct{}{}
	h.n++
	h.peak = max(h.peak, h.n)
	return sub
}

func (h *hub) unsubscribe(env string, sub *subscriber) {
	h.mu.Lock()
	delete(h.subs[env], sub)
	if len(h.subs[env]) == 0 {
		// A map never shrinks: the one that held thousands of streams goes.
		delete(h.subs, env)
	}
	h.n--
	trim := h.peak-h.n >= trimAfter && h.n <= h.peak/2
	if trim {
		h.peak = h.n
		h.draining = true
	}
	// The last stream of a wave that asked for a trim asks again, so the
	// trim (debounced) comes after it.
	if h.n == 0 && h.draining {
		trim, h.draining = true, false
	}
	trim = trim && h.trim != nil
	h.mu.Unlock()
	if trim {
		h.trim()
	}
}

// publish never blocks: a subscriber whose backlog is full is cut off (its
// client reconnects and refetches instead of missing a change).
func (h *hub) publish(env string, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs[env] {
		select {
		case sub.ch <- msg:
		default:
			sub.signal(subLagged)
		}
	}
}

// signalAll sets flags f on every stream (of shard, unless shard < 0).
func (h *hub) signalAll(f uint32, shard int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.subs {
		for sub := range subs {
			if shard < 0 || sub.shard == uint32(shard) {
				sub.signal(f)
			}
		}
	}
}

// stop ends every stream, and every stream that begins from now on.
func (h *hub) stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	h.signalAll(subStop, -1)
}

// watchStreams gives every stream its heartbeat and tells them of token
// changes, until ctx ends: one timer for all streams.
func (s *Server) watchStreams(ctx context.Context) {
	tick := time.NewTicker(max(s.opts.Heartbeat/heartbeatShards, time.Millisecond))
	defer tick.Stop()
	tokens := s.tokens.changed()
	shard := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.hub.signalAll(subBeat, shard)
			shard = (shard + 1) % heartbeatShards
		case <-tokens:
			tokens = s.tokens.changed()
			s.hub.signalAll(subTokens, -1)
		}
	}
}

// sendTimeout bounds a write to an SSE stream; the deadline is moved
// forward when less than sendTimeout-sendSlack of it is left.
const (
	sendTimeout = 30 * time.Second
	sendSlack   = 10 * time.Second
)

var (
	hdrEventStream = []string{"text/event-stream"}
	hdrNoBuffering = []string{"no"}
	msgConnected   = []byte("retry: 2000\n: connected\n\n")
	msgRevoked     = []byte("event: revoked\ndata: {}\n\n")
	msgHeartbeat   = []byte(": heartbeat\n\n")
)

// events streams the changes of one environment: an "event: release" when
// its current release changes, "event: environment" when its definition
// does, and a comment line as heartbeat. The stream ends when the client
// goes, the server shuts down, the client falls behind, or its token is
// revoked.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env := r.PathValue("env")
	if s.snap.Load().byName[env] == nil {
		return errs.E(errs.NotFound, "unknown environment %q", env)
	}
	// ofrep=true: only flag changes, as OFREP's refetch messages (ofrep.go).
	ofrep := r.URL.Query().Get("ofrep") == "true"
	token, _ := requestToken(r)
	sum := auth.Sum(token)
	sub := s.hub.subscribe(env)
	defer s.hub.unsubscribe(env, sub)
	s.metrics.sseClients.Inc()
	defer s.metrics.sseClients.Dec()

	rc := http.NewResponseController(w)
	h := w.Header()
	h["Content-Type"] = hdrEventStream
	h["X-Accel-Buffering"] = hdrNoBuffering // tell proxies not to hold events back
	w.WriteHeader(http.StatusOK)
	var deadline time.Time
	// write writes msg; flush sends what was written. A client that stops
	// reading must not pin the handler forever: every write has 20 to 30 s.
	// Moving the deadline costs a timer update, so it moves only when less
	// than 20 s are left.
	write := func(msg []byte) bool {
		if now := time.Now(); deadline.Sub(now) < sendTimeout-sendSlack {
			deadline = now.Add(sendTimeout)
			_ = rc.SetWriteDeadline(deadline)
		}
		_, err := w.Write(msg)
		return err == nil
	}
	flush := func() bool { return rc.Flush() == nil }
	if !write(msgConnected) || !flush() {
		return nil
	}
	// The token may have been revoked between authentication and
	// subscribing above: check once now, then on every token change.
	if s.revoked(r.Context(), sum, p) {
		_ = write(msgRevoked) && flush()
		return nil
	}
	done := r.Context().Done()
	for {
		select {
		case <-done:
			return nil
		case msg := <-sub.ch:
			// Whatever else is waiting goes out in the same flush.
			for {
				if ofrep {
					msg = ofrepStreamMessage(msg)
				}
				if msg != nil && !write(msg) {
					return nil
				}
				select {
				case msg = <-sub.ch:
					continue
				default:
				}
				break
			}
			if !flush() {
				return nil
			}
		case <-sub.poke:
			f := sub.flags.Swap(0)
			if f&(subStop|subLagged) != 0 {
				return nil
			}
			if f&subTokens != 0 && s.revoked(r.Context(), sum, p) {
				_ = write(msgRevoked) && flush()
				return nil
			}
			if f&subBeat != 0 && (!write(msgHeartbeat) || !flush()) {
				return nil
			}
		}
	}
}

// revoked reports whether the token (its hash sum) of a stream opened with
// principal p is gone, asking the principal cache first: it is emptied on
// every token change, so only the first stream after a change asks the
// store. When the store cannot say, the stream goes on: it was valid when
// it began.
func (s *Server) revoked(ctx context.Context, sum [sha256.Size]byte, p *auth.Principal) bool {
	e, unknown, gen := s.tokens.get(sum)
	if unknown {
		return true
	}
	if e == nil {
		var err error
		e, err = s.lookupToken(ctx, sum, gen)
		if errs.Is(err, errs.Unauthorized) {
			return true
		}
		if err != nil {
			s.log.Warn("events: cannot check the stream's token; keeping the stream", "err", err)
			return false
		}
	}
	return e.p.TokenID != p.TokenID
}
