package server

import (
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

// hub fans snapshot changes out to the SSE streams of each environment.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[*subscriber]struct{}
	// n streams are open, peak at most since the last trim.
	n, peak int
	// draining: a trim was asked for since the streams were last all gone.
	draining bool
	// trim is called when many streams have ended (their buffers and
	// stacks are garbage the OS should get back).
	trim func()
}

// trimAfter is how many streams must have ended, and at least half of
// those that were open, before memory is handed back.
const trimAfter = 1000

type subscriber struct {
	ch chan []byte
	// lagged is closed when the stream fell too far behind: it ends, and
	// the client reconnects and refetches instead of missing a change.
	lagged chan struct{}
	once   sync.Once
}

func newHub() *hub { return &hub{subs: map[string]map[*subscriber]struct{}{}} }

func (h *hub) subscribe(env string) *subscriber {
	sub := &subscriber{ch: make(chan []byte, 16), lagged: make(chan struct{})}
	h.mu.Lock()
	if h.subs[env] == nil {
		h.subs[env] = map[*subscriber]struct{}{}
	}
	h.subs[env][sub] = struct{}{}
	h.n++
	h.peak = max(h.peak, h.n)
	h.mu.Unlock()
	return sub
}

func (h *hub) unsubscribe(env string, sub *subscriber) {
	h.mu.Lock()
	delete(h.subs[env], sub)
	if len(h.subs[env]) == 0 {
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

// publish never blocks: a subscriber whose buffer is full is cut off.
func (h *hub) publish(env string, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs[env] {
		select {
		case sub.ch <- msg:
		default:
			sub.once.Do(func() { close(sub.lagged) })
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
	send := func(msg []byte) bool {
		// A client that stops reading must not pin the handler forever:
		// every write has 20 to 30 s. Moving the deadline costs a timer
		// update, so it moves only when less than 20 s are left.
		if now := time.Now(); deadline.Sub(now) < sendTimeout-sendSlack {
			deadline = now.Add(sendTimeout)
			_ = rc.SetWriteDeadline(deadline)
		}
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: 2000\n: connected\n\n")) {
		return nil
	}
	beat := time.NewTicker(s.opts.Heartbeat)
	defer beat.Stop()
	tokensChanged := s.tokens.changed()
	// The token may have been revoked between authentication and taking
	// the channel above: check once now, then on every token change.
	if s.revoked(r, p) {
		_ = send([]byte("event: revoked\ndata: {}\n\n"))
		return nil
	}
	for {
		select {
		case <-tokensChanged:
			tokensChanged = s.tokens.changed()
			if s.revoked(r, p) {
				_ = send([]byte("event: revoked\ndata: {}\n\n"))
				return nil
			}
		case <-r.Context().Done():
			return nil
		case <-s.stopping:
			return nil
		case <-sub.lagged:
			return nil
		case msg := <-sub.ch:
			if ofrep {
				if msg = ofrepStreamMessage(msg); msg == nil {
					continue
				}
			}
			if !send(msg) {
				return nil
			}
		case <-beat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return nil
			}
		}
	}
}

// revoked reports whether the token of a streaming request is gone. When
// the store cannot say, the stream goes on: it was valid when it began.
func (s *Server) revoked(r *http.Request, p *auth.Principal) bool {
	token, _ := requestToken(r)
	sum := auth.Sum(token)
	got, err := s.app.Authenticate(r.Context(), hex.EncodeToString(sum[:]))
	if errs.Is(err, errs.Unauthorized) {
		return true
	}
	if err != nil {
		s.log.Warn("events: cannot check the stream's token; keeping the stream", "err", err)
		return false
	}
	return got.TokenID != p.TokenID
}
