package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/tree"
)

// handlerFunc is an API handler: it gets the authenticated principal (nil
// on public routes) and returns an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

// route is one registered pattern with what it takes to call it.
type route struct {
	s       *Server
	pattern string
	action  auth.Action // "" for public routes
	// scoped: action is about the environment in the {env} path value.
	scoped    bool
	bodyLimit int64
	// quiet routes (config polling, health probes) log successes at info
	// level up to quietLogRate lines a second and the rest at debug: at
	// thousands of requests per second they would drown the log.
	quiet   bool
	sampled *rate.Limiter
	h       handlerFunc
	obs     *routeMetrics
}

// Header values shared by every response; net/http only reads them.
var (
	hdrNosniff   = []string{"nosniff"}
	hdrDeny      = []string{"DENY"}
	hdrNoRef     = []string{"no-referrer"}
	hdrCSP       = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrNoStore   = []string{"no-store"}
	hdrJSON      = []string{"application/json"}
	hdrHSTS      = []string{"max-age=63072000"}
	hdrVaryAuth  = []string{"Authorization"}
	hdrRevalid   = []string{"private, no-cache"}
	hdrBearerErr = []string{`Bearer realm="envplane"`}
)

// securityHeaders go on every response. Assigning the canonical keys
// directly avoids allocating on the hot path.
func securityHeaders(h http.Header, tlsOn bool) {
	h["X-Content-Type-Options"] = hdrNosniff
	h["X-Frame-Options"] = hdrDeny
	h["Referrer-Policy"] = hdrNoRef
	h["Content-Security-Policy"] = hdrCSP
	h["Cache-Control"] = hdrNoStore // config responses relax it
	if tlsOn {
		h["Strict-Transport-Security"] = hdrHSTS
	}
}

// recorder captures what a handler wrote, for logs and metrics, and turns
// the mux's own plain-text 404/405 answers into the API's error body.
type recorder struct {
	http.ResponseWriter
	s         *Server
	req       *http.Request
	status    int
	bytes     int64
	route     *route
	principal *auth.Principal
	swallow   bool // the mux's plain-text body is being replaced
	replacing bool
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (w *recorder) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if w.route == nil && !w.replacing && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		// No route matched: the mux is answering. Answer with the error
		// body instead, and drop the mux's text.
		w.replacing = true
		var err error = errs.E(errs.NotFound, "no such API route: %s", w.req.URL.Path)
		if code == http.StatusMethodNotAllowed {
			err = methodNotAllowed{errs.E(errs.Invalid, "%s is not allowed on %s (allowed: %s)", w.req.Method, w.req.URL.Path, w.Header().Get("Allow"))}
		}
		w.s.writeError(w, w.req, err)
		w.swallow = true
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// methodNotAllowed keeps the mux's 405 status, the one answer outside the
// kind table, so that HTTP clients see it together with the Allow header.
type methodNotAllowed struct{ err *errs.Error }

func (m methodNotAllowed) Error() string { return m.err.Error() }
func (m methodNotAllowed) Unwrap() error { return m.err }

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(p), nil
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush and Unwrap keep http.ResponseController working (SSE).
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP is the outermost layer: security headers, routing, then one log
// line and the metrics of the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := recorders.Get().(*recorder)
	*rec = recorder{ResponseWriter: w, s: s, req: r}
	securityHeaders(w.Header(), r.TLS != nil)
	s.mux.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	d := time.Since(start)
	rt := rec.route
	if rt == nil {
		rt = s.unmatched
	}
	rt.obs.observe(rec.status, d)
	// Below info nothing is logged: the sampling limiter (a lock and a
	// clock read) is not asked.
	level := slog.LevelInfo
	logged := s.log.Enabled(r.Context(), level)
	if logged && rt.quiet && rec.status < 400 && !rt.sampled.Allow() {
		level = slog.LevelDebug
		logged = s.log.Enabled(r.Context(), level)
	}
	if logged {
		token := ""
		if rec.principal != nil {
			token = rec.principal.TokenID
		}
		// The path never holds secrets; the query is left out all the same.
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("route", rt.pattern),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", d),
			slog.Int64("bytes", rec.bytes),
			slog.String("token", token))
	}
	*rec = recorder{}
	recorders.Put(rec)
}

// ServeHTTP runs one matched route: authenticate, rate-limit, authorize,
// bound the body, call the handler, and write any error it returns.
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec, ok := w.(*recorder)
	if !ok { // called outside Server.ServeHTTP (never in practice)
		rec = &recorder{ResponseWriter: w, s: rt.s, req: r}
	}
	rec.route = rt
	defer func() {
		// A bug in one handler answers 500 with the error body instead of
		// dropping the connection; the stack goes to the log.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			rt.s.log.Error("handler panicked", "route", rt.pattern, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			rt.s.writeError(rec, r, errs.E(errs.Internal, "internal error"))
		}
	}()
	if err := rt.serve(rec, r); err != nil {
		rt.s.writeError(rec, r, err)
	}
}

func (rt *route) serve(w *recorder, r *http.Request) error {
	s := rt.s
	var p *auth.Principal
	if rt.action != "" {
		e, err := s.authenticate(r)
		if err != nil {
			var ra *retryAfter
			if errors.As(err, &ra) {
				w.Header().Set("Retry-After", strconv.Itoa(ra.secs))
			}
			return err
		}
		p = &e.p
		w.principal = p
		if e.limiter != nil && !e.limiter.Allow() {
			secs := 1
			if lim := float64(e.limiter.Limit()); lim > 0 {
				secs = max(1, int(math.Ceil(1/lim)))
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			return errs.E(errs.RateLimited, "too many requests for this token; retry after %d s", secs)
		}
		env := ""
		if rt.scoped {
			env = r.PathValue("env")
		}
		if err := p.Can(rt.action, env); err != nil {
			return err
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.bodyLimit {
			return tooLarge(rt.bodyLimit)
		}
		// An HTTP/1 body of a declared length is already bounded by it
		// (net/http reads no further); others are bounded here. The
		// underlying writer lets net/http close the connection after an
		// oversized body.
		if r.ContentLength < 0 || r.ProtoMajor != 1 {
			r.Body = http.MaxBytesReader(w.ResponseWriter, r.Body, rt.bodyLimit)
		}
	}
	return rt.h(w, r, p)
}

func tooLarge(limit int64) error {
	return errs.E(errs.TooLarge, "request body is larger than %d bytes", limit)
}

// errorBody is the one error shape of the API.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  []errs.FieldError `json:"fields,omitempty"`
}

// writeError is the only way errors reach clients: the client-safe part of
// err with the status of its kind. Internal causes go to the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind, msg, fields := errs.Public(err)
	route := ""
	if rec, ok := w.(*recorder); ok {
		if rec.route != nil {
			route = rec.route.pattern
		}
		if rec.status != 0 {
			// The response has begun (an SSE stream); only the log is left.
			s.log.Warn("error after response began", "route", route, "err", err)
			return
		}
	}
	switch kind {
	case errs.Internal, errs.Unavailable:
		s.log.Error("request failed", "method", r.Method, "route", route, "kind", kind.String(), "err", err)
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	delete(h, "Etag")
	if kind == errs.Unauthorized {
		h["Www-Authenticate"] = hdrBearerErr
	}
	status := kind.Status()
	if errors.As(err, new(methodNotAllowed)) {
		status = http.StatusMethodNotAllowed
	}
	w.WriteHeader(status)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(errorBody{Error: errorDetail{Code: kind.Code(), Message: msg, Fields: fields}})
	_, _ = w.Write(b.Bytes())
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return errs.Wrap(errs.Internal, err, "encode response")
	}
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	_, err := w.Write(b.Bytes())
	return err
}

// decodeJSON reads exactly one JSON object into dst, refusing unknown
// fields, and explains what is wrong in field errors.
func decodeJSON(r *http.Request, dst any) error {
	return decodeBody(r, dst, false)
}

// decodeBody reads the whole (bounded) body first: encoding/json turns
// invalid UTF-8 into U+FFFD, and a name or secret must never be altered
// silently. quiet leaves syntax details out of errors, for bodies holding
// secrets (a JSON error quotes characters of the body).
func decodeBody(r *http.Request, dst any, quiet bool) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeBytes(data, dst, quiet)
}

// readBody reads the whole (bounded) request body.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, errs.Field("body", "a JSON object is required")
	}
	var b bytes.Buffer
	// A declared length (already checked against the route's bound) is
	// read into one buffer instead of growing one by doubling.
	if n := r.ContentLength; n > 0 && n <= DefaultMaxBodyBytes {
		b.Grow(int(n) + bytes.MinRead)
	}
	if _, err := b.ReadFrom(r.Body); err != nil {
		return nil, bodyError(err)
	}
	return b.Bytes(), nil
}

// decodeBytes is decodeBody of a body already read.
func decodeBytes(data []byte, dst any, quiet bool) error {
	if !utf8.Valid(data) {
		return errs.Field("body", fmt.Sprintf("not valid UTF-8 (at byte %d); envplane stores text exactly and will not replace bytes", tree.InvalidUTF8At(data)))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var syntax *json.SyntaxError
		if quiet && errors.As(err, &syntax) {
			return errs.Field("body", "not valid JSON at byte "+strconv.FormatInt(syntax.Offset, 10))
		}
		return bodyError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		if err == nil || quiet {
			return errs.Field("body", "the body must hold one JSON object and nothing after it")
		}
		return bodyError(err)
	}
	return nil
}

func bodyError(err error) error {
	var maxErr *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var kinded *errs.Error
	switch {
	case errors.As(err, &kinded): // a field's own decoder said what is wrong
		return kinded
	case errors.As(err, &maxErr):
		return tooLarge(maxErr.Limit)
	case errors.Is(err, io.EOF):
		return errs.Field("body", "a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.Field("body", "the JSON body ends early")
	case errors.As(err, &syntax):
		return errs.Field("body", fmt.Sprintf("not valid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: ")))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return errs.Field(field, fmt.Sprintf("must be %s, not %s", jsonType(typ.Type), typ.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return errs.Field(name, "unknown field")
	}
	return errs.Wrap(errs.Invalid, err, "the body is not valid")
}

// jsonType names a Go type the way a JSON user thinks of it.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// queryValue returns the first value of key in a raw query string. It does
// not allocate unless the value is escaped: config reads parse it on the hot
// path.
func queryValue(raw, key string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			uk, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = uk
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return "", false
			}
			v = uv
		}
		return v, true
	}
	return "", false
}

// boolQuery parses an optional boolean query parameter.
func boolQuery(r *http.Request, key string, fe *errs.FieldErrors) bool {
	v, ok := queryValue(r.URL.RawQuery, key)
	if !ok || v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		fe.Add(key, "must be true or false, not %q", v)
	}
	return b
}

// principalEntry is a cached, authenticated token.
type principalEntry struct {
	p       auth.Principal
	sum     [sha256.Size]byte // of the token, to check it again (SSE)
	limiter *rate.Limiter     // nil: unlimited
}

// principalCache maps token hashes to principals, so authenticating a known
// token costs no store round trip (and works while the store is down), and
// remembers hashes the store did not know, so that a client repeating an
// unknown or revoked token costs none either. It is emptied on every token
// change: a token created meanwhile is never refused from it.
//
// Reads take no lock (every request authenticates, on every core): they
// look in an immutable snapshot (read). Entries added since go to dirty, a
// copy of read plus them, under mu; once lookups have missed read as many
// times as dirty holds entries, dirty becomes the snapshot (sync.Map's
// scheme, with typed keys: no allocation per lookup).
type principalCache struct {
	read atomic.Pointer[principalSnap]
	gen  atomic.Uint64

	mu     sync.Mutex
	dirty  *principalSnap // nil: read is complete
	misses int
	// changes is closed (and replaced) when the cache is cleared, telling
	// SSE streams to check that their token still exists.
	changes chan struct{}
}

// principalSnap is one state of the cache; a published one never changes.
type principalSnap struct {
	m       map[[sha256.Size]byte]*principalEntry
	unknown map[[sha256.Size]byte]struct{} // at most maxUnknownTokens
}

func newPrincipalSnap() *principalSnap {
	return &principalSnap{m: map[[sha256.Size]byte]*principalEntry{}, unknown: map[[sha256.Size]byte]struct{}{}}
}

// maxUnknownTokens bounds the negative cache: a client sending ever new
// tokens empties it, and meets the per-address limit on failed lookups.
const maxUnknownTokens = 4096

func (c *principalCache) init() {
	c.read.Store(newPrincipalSnap())
	c.changes = make(chan struct{})
}

// changed is closed at the next token change.
func (c *principalCache) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changes
}

// get returns the cached principal of k, whether k is known to be unknown,
// and the cache's generation (read first: an answer found after a clear
// began is one the store gave before it).
func (c *principalCache) get(k [sha256.Size]byte) (e *principalEntry, unknown bool, gen uint64) {
	gen = c.gen.Load()
	if e, unknown = c.read.Load().lookup(k); e != nil || unknown {
		return e, unknown, gen
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dirty == nil { // promoted meanwhile, or nothing was added
		e, unknown = c.read.Load().lookup(k)
		return e, unknown, gen
	}
	e, unknown = c.dirty.lookup(k)
	if c.misses++; c.misses >= len(c.dirty.m)+len(c.dirty.unknown) {
		c.read.Store(c.dirty)
		c.dirty, c.misses = nil, 0
	}
	return e, unknown, gen
}

func (p *principalSnap) lookup(k [sha256.Size]byte) (*principalEntry, bool) {
	if e := p.m[k]; e != nil {
		return e, false
	}
	_, unknown := p.unknown[k]
	return nil, unknown
}

// writable is dirty, made from read when there is none; mu is held.
func (c *principalCache) writable() *principalSnap {
	if c.dirty == nil {
		r := c.read.Load()
		c.dirty = &principalSnap{m: maps.Clone(r.m), unknown: maps.Clone(r.unknown)}
	}
	return c.dirty
}

// put caches e unless the cache was cleared since gen was read: the token
// may have been revoked meanwhile.
func (c *principalCache) put(k [sha256.Size]byte, e *principalEntry, gen uint64) {
	c.mu.Lock()
	if c.gen.Load() == gen {
		c.writable().m[k] = e
	}
	c.mu.Unlock()
}

// putUnknown remembers that the store knows no token k, unless the cache
// was cleared since gen was read: the token may have been created meanwhile.
func (c *principalCache) putUnknown(k [sha256.Size]byte, gen uint64) {
	c.mu.Lock()
	if c.gen.Load() == gen {
		d := c.writable()
		if len(d.unknown) >= maxUnknownTokens {
			d.unknown = map[[sha256.Size]byte]struct{}{}
		}
		d.unknown[k] = struct{}{}
	}
	c.mu.Unlock()
}

func (c *principalCache) clear() {
	c.mu.Lock()
	c.gen.Add(1)
	c.read.Store(newPrincipalSnap())
	c.dirty, c.misses = nil, 0
	close(c.changes)
	c.changes = make(chan struct{})
	c.mu.Unlock()
}

// failLimiter bounds the store lookups of tokens that turn out unknown, per
// client address: a client guessing tokens gets 429 instead of a database
// query per guess. Tokens already cached (valid or unknown) never meet it.
type failLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter // at most maxFailAddrs
}

const maxFailAddrs = 10000

// allow reports whether addr may have one more unknown token looked up.
func (f *failLimiter) allow(addr string) bool {
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.m[addr]
	return l == nil || l.Tokens() >= 1
}

// failed counts a lookup of addr that found no token.
func (f *failLimiter) failed(addr string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.m[addr]
	if l == nil {
		if len(f.m) >= maxFailAddrs {
			clear(f.m)
		}
		l = rate.NewLimiter(f.limit, f.burst)
		f.m[addr] = l
	}
	l.Allow()
}

// clientAddr is the request's peer address without its port. Forwarding
// headers are not trusted: anyone can set them.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate finds the principal of the request's bearer token.
func (s *Server) authenticate(r *http.Request) (*principalEntry, error) {
	token, ok := requestToken(r) // Authorization: Bearer, else X-API-Key (ofrep.go)
	if !ok {
		return nil, errs.E(errs.Unauthorized, "a bearer token is required (Authorization: Bearer ep_…)")
	}
	if !strings.HasPrefix(token, auth.TokenPrefix) {
		return nil, errUnknownToken
	}
	sum := auth.Sum(token)
	e, unknown, gen := s.tokens.get(sum)
	if e != nil {
		return e, nil
	}
	if unknown {
		return nil, errUnknownToken
	}
	addr := clientAddr(r)
	if !s.authFails.allow(addr) {
		secs := max(1, int(math.Ceil(1/float64(s.authFails.limit))))
		return nil, &retryAfter{secs: secs, err: errs.E(errs.RateLimited, "too many unknown tokens from this address; retry after %d s", secs)}
	}
	e, err := s.lookupToken(r.Context(), sum, gen)
	if errs.Is(err, errs.Unauthorized) {
		s.authFails.failed(addr)
	}
	return e, err
}

var errUnknownToken = errs.E(errs.Unauthorized, "unknown or revoked token")

// retryAfter is a RateLimited error with the Retry-After it asks for.
type retryAfter struct {
	secs int
	err  error
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// lookupToken asks the store for the token with hash sum and caches the
// answer, known or unknown, unless the cache changed since generation gen.
func (s *Server) lookupToken(ctx context.Context, sum [sha256.Size]byte, gen uint64) (*principalEntry, error) {
	p, err := s.app.Authenticate(ctx, hex.EncodeToString(sum[:]))
	if errs.Is(err, errs.Unauthorized) {
		s.tokens.putUnknown(sum, gen)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	e := &principalEntry{p: p, sum: sum}
	if s.opts.RateLimit > 0 {
		e.limiter = rate.NewLimiter(rate.Limit(s.opts.RateLimit), s.opts.RateBurst)
	}
	s.tokens.put(sum, e, gen)
	return e, nil
}
