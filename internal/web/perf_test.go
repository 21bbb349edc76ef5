package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
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
		if med := ds[len(ds)/2]; med > 50*time.Millisecond {
			t.Errorf("GET %s: median %v, want ≤ 50 ms", path, med)
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

func BenchmarkARKAOverview(b *testing.B) { benchPage(b, "/") }
func BenchmarkARKAMatrix(b *testing.B)   { benchPage(b, "/matrix") }

func benchPage(b *testing.B, path string) {
	h, cookies := arkaUI(b)
	handler := h.srv.Handler()
	serve(b, handler, path, cookies)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, handler, path, cookies)
	}
}
