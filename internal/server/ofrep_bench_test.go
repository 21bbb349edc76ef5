package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/server"
)

// benchOFREP measures an OFREP evaluation through the handler, without the
// network: authentication, decoding the context, evaluating, encoding.
func benchOFREP(b *testing.B, path string, etag bool) {
	h, _ := seeded(b, func(o *server.Options) { o.RateLimit = 1e9 })
	sdk, _ := h.token("app", "sdk", "development")
	handler := h.srv.Handler()
	const body = `{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"pro"}}`
	serve := func(inm string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sdk)
		req.Header.Set("Content-Type", "application/json")
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		return w
	}
	w := serve("")
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	inm, want := "", http.StatusOK
	if etag {
		inm, want = w.Header().Get("ETag"), http.StatusNotModified
	}
	b.ReportAllocs()
	for b.Loop() {
		if w := serve(inm); w.Code != want {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkOFREPEvaluate(b *testing.B) {
	benchOFREP(b, "/ofrep/v1/evaluate/flags/new-checkout", false)
}
func BenchmarkOFREPBulk200(b *testing.B) { benchOFREP(b, "/ofrep/v1/evaluate/flags", false) }
func BenchmarkOFREPBulk304(b *testing.B) { benchOFREP(b, "/ofrep/v1/evaluate/flags", true) }
