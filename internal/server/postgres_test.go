package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
)

// startPostgres starts a server on a PostgreSQL store at u.
func startPostgres(t *testing.T, u string) *harness {
	t.Helper()
	st, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, st)
}

// subscribe opens h's event stream of env and returns its lines.
func subscribe(t *testing.T, h *harness, env string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", h.hs.URL+"/api/v1/environments/"+env+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	lines := make(chan string, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

func awaitLine(t *testing.T, lines <-chan string, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

// TestReplicasOnPostgres runs two servers on one database: a change made
// through one reaches the other's event stream within a second.
func TestReplicasOnPostgres(t *testing.T) {
	u := pgtest.URL(t)
	a := startPostgres(t, u)
	b := startPostgres(t, u)
	if strings.Contains(b.stderr.String(), "ep_") {
		t.Error("the second replica bootstrapped again")
	}
	id := a.upload(shop(8080))
	a.setRelease("development", id)
	// b learns of the change through NOTIFY, a moment after a answered.
	eventually(t, func() bool {
		r := b.call("GET", "/api/v1/environments/development/config", adminToken, nil)
		return r.status == 200 && bytes.Contains(r.body, []byte("8080"))
	})
	lines := subscribe(t, b, "development")
	awaitLine(t, lines, ": connected", time.Second)
	id2 := a.upload(shop(8181))
	began := time.Now()
	a.setRelease("development", id2)
	awaitLine(t, lines, "event: release", time.Second)
	t.Logf("change seen on the other replica after %v", time.Since(began))
	if r := b.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil); !bytes.Contains(r.body, []byte("8181")) {
		t.Fatalf("replica b after the event: %s", r.body)
	}
	// A token revoked on one replica stops working on the other.
	tok, tokID := a.token("v", "viewer")
	b.must(200, "GET", "/api/v1/environments", tok, nil)
	a.must(204, "DELETE", "/api/v1/tokens/"+tokID, adminToken, nil)
	eventually(t, func() bool { return b.call("GET", "/api/v1/environments", tok, nil).status == http.StatusUnauthorized })
	b.must(200, "GET", "/api/v1/audit/verify", adminToken, nil)
}

// TestPostgresOutage cuts the server's connection path to PostgreSQL: config
// keeps being served from memory, writes fail with 503, readiness turns
// false, and everything recovers by itself when the path returns.
func TestPostgresOutage(t *testing.T) {
	base := pgtest.URL(t)
	pu, err := url.Parse(base)
	if err != nil || pu.Host == "" {
		t.Skipf("ENVPLANE_TEST_POSTGRES_URL is not a postgres:// URL with a host: %q", base)
	}
	px := newProxy(t, pu.Host)
	pu.Host = px.addr
	h := startPostgres(t, pu.String())
	id := h.upload(shop(8080))
	h.setRelease("development", id)
	cfg := h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	lines := subscribe(t, h, "development")
	awaitLine(t, lines, ": connected", time.Second)

	px.cut()
	again := h.must(200, "GET", "/api/v1/environments/development/config", adminToken, nil)
	if !bytes.Equal(cfg.body, again.body) {
		t.Error("config changed during the outage")
	}
	h.must(200, "GET", "/api/v1/environments/development/config?service=api", adminToken, nil)
	eventually(t, func() bool { return h.call("GET", "/health/ready", "", nil).status == http.StatusServiceUnavailable })
	w := h.call("POST", "/api/v1/tokens", adminToken, map[string]any{"name": "x", "role": "viewer"})
	if w.status != http.StatusServiceUnavailable || w.err(t).Code != "unavailable" {
		t.Errorf("write during the outage: %d %s", w.status, w.body)
	}

	px.restore()
	eventually(t, func() bool { return h.call("GET", "/health/ready", "", nil).status == http.StatusOK })
	eventually(t, func() bool {
		return h.call("POST", "/api/v1/tokens", adminToken, map[string]any{"name": "y", "role": "viewer"}).status == http.StatusCreated
	})
	id2 := h.upload(shop(8282))
	h.setRelease("development", id2)
	awaitLine(t, lines, "event: release", 2*time.Second)
	h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil)
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10 s")
}

// proxy is a TCP relay on 127.0.0.1 whose connections can be cut and whose
// listener can be stopped and restarted, to simulate a database outage.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

// cut stops accepting and closes every relayed connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens on the same address again.
func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}
