package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// twoEnvs is a workspace whose api service gets the same config as the
// environment itself, with a sensitive key.
func twoEnvs(port string) string {
	files := map[string]string{
		"envplane.yaml":    "name: m\nenvironments:\n  - name: development\n    data: synthetic\n    protection: open\n  - name: staging\n    data: synthetic\n    protection: open\nservices: [api]\nconfig:\n  layers: [base.yaml, '{env}.yaml']\n",
		"base.yaml":        "server:\n  port: " + port + "\n  hosts: [a, b]\ndatabase:\n  password: hunter2\n",
		"development.yaml": "logging:\n  level: debug\n",
		"staging.yaml":     "logging:\n  level: warn\n",
	}
	b, _ := json.Marshal(map[string]any{"files": files})
	return string(b)
}

func mustDo(t *testing.T, s *Server, want int, method, path, body string) string {
	t.Helper()
	code, got := do(t, s, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, got)
	}
	return got
}

func releaseID(t *testing.T, body string) string {
	t.Helper()
	var r struct{ ID string }
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.ID == "" {
		t.Fatalf("not a release: %s", body)
	}
	return r.ID
}

// TestDroppedTreesAnswerAlike: explain and diff of configs whose trees were
// let go after rendering answer exactly what they answer with the trees kept.
func TestDroppedTreesAnswerAlike(t *testing.T) {
	reads := []string{
		"/api/v1/environments/development/config?service=api",
		"/api/v1/environments/development/explain?key=server.port",
		"/api/v1/environments/development/explain?key=database.password&reveal=true",
		"/api/v1/environments/development/explain?key=server.hosts&service=api",
		"/api/v1/environments/development/diff/staging",
		"/api/v1/environments/development/diff/staging?service=api&reveal=true",
	}
	run := func(drop bool) []string {
		s := newInternalServer(t)
		id := releaseID(t, mustDo(t, s, http.StatusCreated, "POST", "/api/v1/releases", twoEnvs("8080")))
		for _, env := range []string{"development", "staging"} {
			mustDo(t, s, http.StatusOK, "PUT", "/api/v1/environments/"+env+"/release", `{"release":"`+id+`"}`)
		}
		if drop {
			old := keepTreeBelow
			keepTreeBelow = 0
			defer func() { keepTreeBelow = old }()
		}
		var out []string
		for _, path := range reads {
			out = append(out, mustDo(t, s, http.StatusOK, "GET", path, ""))
		}
		res, _ := s.snap.Load().byName["development"].cfg.get("api")
		if res.treeDropped != drop || (res.res.Tree == nil) != drop {
			t.Fatalf("tree dropped: %v, want %v", res.treeDropped, drop)
		}
		return out
	}
	kept, dropped := run(false), run(true)
	for i := range reads {
		if kept[i] != dropped[i] {
			t.Errorf("%s:\nkept:    %s\ndropped: %s", reads[i], kept[i], dropped[i])
		}
	}
}

// TestServicesShareBodies: two services with the same rendered config hold
// one copy of its bytes.
func TestServicesShareBodies(t *testing.T) {
	s := newInternalServer(t)
	id := releaseID(t, mustDo(t, s, http.StatusCreated, "POST", "/api/v1/releases", twoEnvs("8080")))
	mustDo(t, s, http.StatusOK, "PUT", "/api/v1/environments/development/release", `{"release":"`+id+`"}`)
	a := mustDo(t, s, http.StatusOK, "GET", "/api/v1/environments/development/config", "")
	b := mustDo(t, s, http.StatusOK, "GET", "/api/v1/environments/development/config?service=api", "")
	if a != b || !strings.Contains(a, "debug") {
		t.Fatalf("configs differ: %s\n%s", a, b)
	}
	cfg := s.snap.Load().byName["development"].cfg
	ra, _ := cfg.get("")
	rb, _ := cfg.get("api")
	if &ra.plain.data[0] != &rb.plain.data[0] || &ra.revealed.data[0] != &rb.revealed.data[0] {
		t.Fatal("the same bytes are held twice")
	}
}

// TestPreviousReleaseStaysLoaded: switching back to the release an
// environment just left reuses its loaded form.
func TestPreviousReleaseStaysLoaded(t *testing.T) {
	s := newInternalServer(t)
	a := releaseID(t, mustDo(t, s, http.StatusCreated, "POST", "/api/v1/releases", twoEnvs("8080")))
	b := releaseID(t, mustDo(t, s, http.StatusCreated, "POST", "/api/v1/releases", twoEnvs("9090")))
	set := func(id string) *loadedRelease {
		mustDo(t, s, http.StatusOK, "PUT", "/api/v1/environments/development/release", `{"release":"`+id+`"}`)
		return s.snap.Load().byName["development"].cfg.rel
	}
	first := set(a)
	set(b)
	if again := set(a); again != first {
		t.Fatal("the previous release was loaded again")
	}
	if got := mustDo(t, s, http.StatusOK, "GET", "/api/v1/environments/development/config", ""); !strings.Contains(got, "8080") {
		t.Fatalf("config after switching back: %s", got)
	}
}

func TestHubTrimsAfterManyStreamsEnd(t *testing.T) {
	h := newHub()
	trims := 0
	h.trim = func() { trims++ }
	var subs []*subscriber
	for range 3 * trimAfter {
		subs = append(subs, h.subscribe("development"))
	}
	for i, sub := range subs {
		h.unsubscribe("development", sub)
		// Half gone and at least trimAfter of them: one trim, then again
		// once half of the rest are gone.
		want := 0
		switch gone := i + 1; {
		case gone == 3*trimAfter: // the last one asks again
			want = 3
		case gone >= 3*trimAfter-trimAfter/2:
			want = 2
		case gone >= 3*trimAfter/2:
			want = 1
		}
		if trims != want {
			t.Fatalf("after %d ended: %d trims, want %d", i+1, trims, want)
		}
	}
}

// TestMemTrimDebounces: requests close together make one trim, after the
// last of them.
func TestMemTrimDebounces(t *testing.T) {
	var m memTrim
	for range 5 {
		m.soon()
		time.Sleep(trimDelay / 4)
	}
	m.mu.Lock()
	pending := !m.first.IsZero()
	m.mu.Unlock()
	if !pending {
		t.Fatal("the trim ran before the requests stopped")
	}
	time.Sleep(trimDelay + trimDelay/2)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.first.IsZero() {
		t.Fatal("no trim after the requests stopped")
	}
}
