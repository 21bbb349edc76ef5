package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/cputime"
	"github.com/envplane/envplane/internal/server"
)

// The hot-path benchmarks drive the real handler through a real HTTP server
// on 127.0.0.1 from a raw keep-alive TCP client of a few lines (so that the
// client's own cost stays small and equal on both sides), and report CPU
// time per request (cpu-ns/op: the whole process, server and client) next
// to allocations. BenchmarkHotHTTP/bare-… serves the same bytes and headers
// from a bare net/http handler with a fixed ETag (what
// scripts/benchcmp/baresrv does): the difference of the two is what
// envplane's layers cost per request.
//
//	go test -run '^$' -bench 'Hot' -benchmem -count 6 ./internal/server/ | tee /tmp/hot.txt; benchstat /tmp/hot.txt

// rawClient sends prepared requests over one keep-alive connection and
// reads the responses.
type rawClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(b *testing.B, url string) *rawClient {
	b.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawClient{c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// do writes req and reads one response: its status, and the body into body.
func (rc *rawClient) do(req []byte, body *bytes.Buffer) (int, error) {
	if _, err := rc.c.Write(req); err != nil {
		return 0, err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		h, err := rc.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		if len(h) > 16 && bytes.EqualFold(h[:15], []byte("Content-Length:")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(h[15:])))
		}
	}
	body.Reset()
	if status != http.StatusNotModified && n > 0 {
		if _, err := io.CopyN(body, rc.r, int64(n)); err != nil {
			return 0, err
		}
	}
	return status, nil
}

// rawRequest is an HTTP/1.1 request as bytes.
func rawRequest(method, path string, header map[string]string, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n", method, path)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if body != "" || method == "POST" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// loop sends req b.N times and checks every status.
func loop(b *testing.B, url string, req []byte, want int) {
	b.Helper()
	rc := dialRaw(b, url)
	var body bytes.Buffer
	if st, err := rc.do(req, &body); err != nil || st != want {
		b.Fatalf("status %d (want %d), %v: %s", st, want, err, body.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	m := cputime.Start()
	for i := 0; i < b.N; i++ {
		if st, err := rc.do(req, &body); err != nil || st != want {
			b.Fatalf("status %d (want %d), %v", st, want, err)
		}
	}
	m.Report(b)
}

// bareConfig is baresrv's config handler: fixed headers, body and ETag.
func bareConfig(hdr http.Header, body []byte) http.Handler {
	etag := hdr.Get("Etag")
	length := []string{strconv.Itoa(len(body))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range hdr {
			h[k] = v
		}
		if r.Header.Get("If-None-Match") == etag {
			delete(h, "Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h["Content-Length"] = length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	return mux
}

func BenchmarkHotHTTP(b *testing.B) {
	h, _ := seeded(b, func(o *server.Options) { o.RateLimit = 1e9 })
	sdk, _ := h.token("app", "sdk", "development")
	const cfgPath = "/api/v1/environments/development/config?service=api"
	first := h.call("GET", cfgPath, adminToken, nil)
	if first.status != http.StatusOK {
		b.Fatalf("config: %d", first.status)
	}
	etag := first.header.Get("Etag")
	hdr := first.header.Clone()
	for _, k := range []string{"Date", "Content-Length"} {
		delete(hdr, k)
	}
	bare := httptest.NewServer(bareConfig(hdr, first.body))
	b.Cleanup(bare.Close)
	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	authINM := map[string]string{"Authorization": "Bearer " + adminToken, "If-None-Match": etag}

	b.Run("config-304", func(b *testing.B) {
		loop(b, h.hs.URL, rawRequest("GET", cfgPath, authINM, ""), http.StatusNotModified)
	})
	b.Run("bare-304", func(b *testing.B) {
		loop(b, bare.URL, rawRequest("GET", "/config", authINM, ""), http.StatusNotModified)
	})
	b.Run("config-200", func(b *testing.B) {
		loop(b, h.hs.URL, rawRequest("GET", cfgPath, auth, ""), http.StatusOK)
	})
	b.Run("bare-200", func(b *testing.B) {
		loop(b, bare.URL, rawRequest("GET", "/config", auth, ""), http.StatusOK)
	})

	const ctx = `{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"pro"}}`
	sdkAuth := map[string]string{"Authorization": "Bearer " + sdk}
	for _, flag := range []string{"banner", "new-checkout", "page-size"} {
		b.Run("ofrep-"+flag, func(b *testing.B) {
			loop(b, h.hs.URL, rawRequest("POST", "/ofrep/v1/evaluate/flags/"+flag, sdkAuth, ctx), http.StatusOK)
		})
	}
	bulk := h.call("POST", "/ofrep/v1/evaluate/flags", sdk, map[string]any{"context": map[string]any{
		"targetingKey": "user-42", "email": "ann@example.com", "plan": "pro"}})
	if bulk.status != http.StatusOK {
		b.Fatalf("bulk: %d", bulk.status)
	}
	b.Run("ofrep-bulk-200", func(b *testing.B) {
		loop(b, h.hs.URL, rawRequest("POST", "/ofrep/v1/evaluate/flags", sdkAuth, ctx), http.StatusOK)
	})
	bulkETag := etagOf(b, h, sdk, ctx)
	b.Run("ofrep-bulk-304", func(b *testing.B) {
		loop(b, h.hs.URL, rawRequest("POST", "/ofrep/v1/evaluate/flags",
			map[string]string{"Authorization": "Bearer " + sdk, "If-None-Match": bulkETag}, ctx), http.StatusNotModified)
	})
}

// etagOf is the bulk ETag the server gives body.
func etagOf(b *testing.B, h *harness, sdk, body string) string {
	req, _ := http.NewRequest("POST", h.hs.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+sdk)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("Etag")
}

// BenchmarkHotInProcess is the same requests through the handler without
// the network (httptest.ResponseRecorder): only envplane's own work.
func BenchmarkHotInProcess(b *testing.B) {
	h, _ := seeded(b, func(o *server.Options) { o.RateLimit = 1e9 })
	sdk, _ := h.token("app", "sdk", "development")
	handler := h.srv.Handler()
	const ctx = `{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"pro"}}`
	run := func(b *testing.B, method, path, token, inm, body string, want int) {
		runOn(b, handler, method, path, token, inm, body, want)
	}
	const cfgPath = "/api/v1/environments/development/config?service=api"
	first := h.call("GET", cfgPath, adminToken, nil)
	etag := first.header.Get("Etag")
	hdr := first.header.Clone()
	for _, k := range []string{"Date", "Content-Length"} {
		delete(hdr, k)
	}
	bare := bareConfig(hdr, first.body)
	b.Run("config-304", func(b *testing.B) { run(b, "GET", cfgPath, adminToken, etag, "", http.StatusNotModified) })
	b.Run("bare-304", func(b *testing.B) {
		runOn(b, bare, "GET", "/config", adminToken, etag, "", http.StatusNotModified)
	})
	b.Run("config-200", func(b *testing.B) { run(b, "GET", cfgPath, adminToken, "", "", http.StatusOK) })
	b.Run("bare-200", func(b *testing.B) { runOn(b, bare, "GET", "/config", adminToken, "", "", http.StatusOK) })
	for _, flag := range []string{"banner", "new-checkout", "page-size"} {
		b.Run("ofrep-"+flag, func(b *testing.B) {
			run(b, "POST", "/ofrep/v1/evaluate/flags/"+flag, sdk, "", ctx, http.StatusOK)
		})
	}
	b.Run("ofrep-bulk-200", func(b *testing.B) { run(b, "POST", "/ofrep/v1/evaluate/flags", sdk, "", ctx, http.StatusOK) })
	bulkETag := etagOf(b, h, sdk, ctx)
	b.Run("ofrep-bulk-304", func(b *testing.B) {
		run(b, "POST", "/ofrep/v1/evaluate/flags", sdk, bulkETag, ctx, http.StatusNotModified)
	})
}

// runOn measures method path through handler in-process.
func runOn(b *testing.B, handler http.Handler, method, path, token, inm, body string, want int) {
	serve := func() *httptest.ResponseRecorder {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		return w
	}
	if w := serve(); w.Code != want {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	m := cputime.Start()
	for i := 0; i < b.N; i++ {
		if w := serve(); w.Code != want {
			b.Fatalf("status %d", w.Code)
		}
	}
	m.Report(b)
}
