package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/envplane/envplane/internal/server"
)

// benchConfig measures GET …/config through the handler, without the
// network: the part of a request the server controls.
func benchConfig(b *testing.B, etag bool) {
	// A limit no benchmark reaches, so the limiter's cost is measured.
	h, _ := seeded(b, func(o *server.Options) { o.RateLimit = 1e9 })
	handler := h.srv.Handler()
	req := httptest.NewRequest("GET", "/api/v1/environments/development/config?service=api", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := http.StatusOK
	if etag {
		req.Header.Set("If-None-Match", w.Header().Get("ETag"))
		want = http.StatusNotModified
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkConfigGet200(b *testing.B) { benchConfig(b, false) }
func BenchmarkConfigGet304(b *testing.B) { benchConfig(b, true) }
