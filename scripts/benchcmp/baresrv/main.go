// Command baresrv is the comparison side of scripts/bench-compare-server: a
// bare net/http server that answers GET /config with fixed bytes, a fixed
// ETag and the same response headers envplane sends (If-None-Match → 304),
// and a minimal SSE server (GET /events, POST /publish fans one message out
// to every stream: the request body's bytes, or a small release event). It is what envplane's server is measured against; it does
// no authentication, routing beyond net/http's, logging or metrics.
package main

import (
	"bufio"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	bodyFile := flag.String("body", "", "file with the 200 body ('': empty; only SSE measured)")
	headerFile := flag.String("headers", "", "file of 'Name: value' lines sent on every config answer (ETag among them)")
	likeEnvplane := flag.Bool("envplane-timeouts", false, "use envplane serve's http.Server timeouts (read 2 min, idle 2 min, 64 KiB headers)")
	flag.Parse()
	var body []byte
	if *bodyFile != "" {
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			log.Fatal(err)
		}
		body = b
	}
	hdr := http.Header{}
	if *headerFile != "" {
		f, err := os.Open(*headerFile)
		if err != nil {
			log.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ": ")
			if ok {
				hdr[http.CanonicalHeaderKey(k)] = []string{strings.TrimSpace(v)}
			}
		}
		f.Close()
	}
	etag := hdr.Get("Etag")
	delete(hdr, "Content-Length")
	delete(hdr, "Date")
	length := []string{strconv.Itoa(len(body))}

	var mu sync.Mutex
	subs := map[chan []byte]struct{}{}
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
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan []byte, 16)
		mu.Lock()
		subs[ch] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(subs, ch)
			mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_, _ = w.Write([]byte("retry: 2000\n: connected\n\n"))
		_ = rc.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case msg := <-ch:
				if _, err := w.Write(msg); err != nil {
					return
				}
				if rc.Flush() != nil {
					return
				}
			}
		}
	})
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		// The body, when given, is the message (the bytes envplane sends
		// for the same change); else a small release event.
		msg, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if len(msg) == 0 {
			msg = []byte("event: release\ndata: {\"at\":" + strconv.FormatInt(time.Now().UnixNano(), 10) + "}\n\n")
		}
		mu.Lock()
		for ch := range subs {
			select {
			case ch <- msg:
			default:
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	hs := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if *likeEnvplane {
		hs.ReadTimeout, hs.IdleTimeout, hs.MaxHeaderBytes = 2*time.Minute, 2*time.Minute, 64<<10
	}
	log.Fatal(hs.ListenAndServe())
}
