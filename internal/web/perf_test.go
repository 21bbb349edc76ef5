package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"testing"
	"time"
)

// arkaUI is a server with the ARKA example current in development (and
// staging, which promotes automatically) and a signed-in admin's cookies.
func arkaUI(t testing.TB) (*harness, []*http.Cookie) {
	h := start(t)
	rel := h.upload(arka(t), map[string]string{"git.sha": "0f1e2d3"})
	if _, err := h.app.SetRelease(context.Background(), h.sys, "development", rel); err != nil {
		t.Fatal(err)
	}
	h.waitRelease("staging", rel)
	u := h.signIn(adminToken)
	req, _ := http.NewRequest("GET", h.hs.URL+"/", nil)
	return h, u.c.Jar.Cookies(req.URL)
}

func serve(t testing.TB, h http.Handler, path string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	return w
}

// TestARKAPagesAreFastAndLight: the overview and the matrix of the ARKA
// example render in at most 50 ms server side (median of several), and
// the overview with its assets weighs at most 100 KB.
func TestARKAPagesAreFastAndLight(t *testing.T) {
	h, cookies := arkaUI(t)
	handler := h.srv.Handler()
	for _, path := range []string{"/", "/matrix"} {
		serve(t, handler, path, cookies) // warm: the first resolve of a config
		var ds []time.Duration
		for range 7 {
			start := time.Now()
			serve(t, handler, path, cookies)
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		cpu0 := cpuTime()
		for range 7 {
			serve(t, handler, path, cookies)
		}
		cpu := (cpuTime() - cpu0) / 7
		t.Logf("GET %s: median %v wall, %v CPU per render", path, ds[len(ds)/2].Round(time.Microsecond), cpu.Round(time.Microsecond))
		// CPU time is what the goal bounds on a loaded machine; the wall
		// median is checked with room for waiting on a core.
		if cpu > 50*time.Millisecond {
			t.Errorf("GET %s: %v of CPU per render, want ≤ 50 ms", path, cpu)
		}
		if med := ds[len(ds)/2]; med > 250*time.Millisecond {
			t.Errorf("GET %s: median %v wall, want ≤ 50 ms (250 ms allowed for a loaded machine)", path, med)
		}
	}
	weight := 0
	for _, path := range []string{"/", "/static/app.css", "/static/app.js"} {
		weight += serve(t, handler, path, cookies).Body.Len()
	}
	t.Logf("overview with its assets: %d bytes", weight)
	if weight > 100<<10 {
		t.Errorf("overview weighs %d bytes with its assets, want ≤ 100 KB", weight)
	}
	if m := serve(t, handler, "/matrix", cookies).Body.String(); len(m) < 1000 {
		t.Fatalf("the ARKA matrix is nearly empty: %s", m)
	}
}

func BenchmarkARKAOverview(b *testing.B) { benchPage(b, func(*harness) string { return "/" }) }
func BenchmarkARKAMatrix(b *testing.B)   { benchPage(b, func(*harness) string { return "/matrix" }) }

// BenchmarkARKAReleaseDiff: the diff of two ARKA releases resolved for
// production (both releases read and compiled per request).
func BenchmarkARKAReleaseDiff(b *testing.B) {
	benchPage(b, func(h *harness) string {
		files := arka(b)
		files["envplane.yaml"] = append(files["envplane.yaml"], "\n# second release\n"...)
		two := h.upload(files, nil)
		return "/diff?" + url.Values{"ra": {h.environment("development").Release}, "rb": {two}, "env": {"production"}}.Encode()
	})
}

// benchPage renders the page at path(h), reporting CPU time per render
// (cpu-ns/op) beside wall time: the machine is shared and loaded.
func benchPage(b *testing.B, path func(*harness) string) {
	h, cookies := arkaUI(b)
	handler := h.srv.Handler()
	p := path(h)
	serve(b, handler, p, cookies)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		serve(b, handler, p, cookies)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
