package web

import (
	"net/http"
	"reflect"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

// maxWatched bounds the environments one stream follows.
const maxWatched = 64

// events streams the changes of the environments in ?env= to the page's
// script, which re-renders the page: the server's own SSE events, behind
// the session instead of a bearer token. The stream ends when the session
// or its token does, or the server stops.
func (u *UI) events(q *req) error {
	envs := q.r.URL.Query()["env"]
	if len(envs) == 0 || len(envs) > maxWatched {
		return errs.E(errs.Invalid, "name 1 to %d environments to follow (env=…)", maxWatched)
	}
	known := map[string]bool{}
	for _, e := range u.src.Environments() {
		known[e.Name] = true
	}
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(q.r.Context().Done())}}
	for _, env := range envs {
		if err := q.p.Can(auth.ReadEvents, env); err != nil {
			return err
		}
		if !known[env] {
			return errs.E(errs.NotFound, "unknown environment %q", env)
		}
		msgs, gone, cancel := u.src.Watch(env)
		defer cancel()
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(gone)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(msgs)})
	}
	beat := time.NewTicker(u.beat)
	defer beat.Stop()
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(beat.C)})

	rc := http.NewResponseController(q.w)
	h := q.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	q.w.WriteHeader(http.StatusOK)
	send := func(msg []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := q.w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: 2000\n: connected\n\n")) {
		return nil
	}
	for {
		i, v, _ := reflect.Select(cases)
		switch {
		case i == 0: // the client went
			return nil
		case i == len(cases)-1: // heartbeat: the session and token still valid?
			if _, _, err := u.app.Session(q.ctx(), q.sess.IDHash); errs.Is(err, errs.Unauthorized) {
				_ = send([]byte("event: revoked\ndata: {}\n\n"))
				return nil
			}
			if !send([]byte(": heartbeat\n\n")) {
				return nil
			}
		case i%2 == 1: // a watch ended (lagged, server stopping): the client reconnects
			return nil
		default:
			if !send(v.Bytes()) {
				return nil
			}
		}
	}
}
