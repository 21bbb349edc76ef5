package envplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Flag evaluation
//
// Flags evaluates the feature flags of the client's environment. Flag
// definitions stay on the server: the SDK asks the server's OFREP bulk
// endpoint for every flag's value for one evaluation context, keeps that
// answer in memory and serves every later evaluation for the same context
// from it, in-process. The server's event stream (events?ofrep=true) says
// when the flags change; the next evaluation of a context then revalidates
// its answer with If-None-Match (304 keeps it). Without the stream (refused,
// or down) each answer is revalidated at most every PollInterval.
//
// This design keeps the SDK free of the evaluator (the SDK imports nothing of
// the server) and targeting rules off the application's machines, at the
// cost of one request per new context and per change.

// Reasons and error codes of a FlagResult (OpenFeature's names).
const (
	ReasonStatic         = "STATIC"
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonDefault        = "DEFAULT"
	ReasonDisabled       = "DISABLED"
	ReasonError          = "ERROR"

	ErrFlagNotFound        = "FLAG_NOT_FOUND"
	ErrParse               = "PARSE_ERROR"
	ErrTypeMismatch        = "TYPE_MISMATCH"
	ErrTargetingKeyMissing = "TARGETING_KEY_MISSING"
	ErrInvalidContext      = "INVALID_CONTEXT"
	ErrGeneral             = "GENERAL"
)

// OverrideVariant is the variant of a flag forced by FEATURE_<KEY>.
const OverrideVariant = "override"

// FlagResult is one evaluation. Value is nil when the caller's default
// applies: the flag is disabled (DISABLED), chose no variant, or the
// evaluation failed (ErrorCode set, Reason ERROR). Numbers are json.Number.
type FlagResult struct {
	Key          string
	Value        any
	Variant      string
	Reason       string
	ErrorCode    string
	ErrorMessage string
	Metadata     map[string]any
}

// FlagsOptions configure Flags. The zero value is usable.
type FlagsOptions struct {
	// PollInterval bounds how long an answer is used without revalidation
	// while the event stream is not connected (0: 30 s).
	PollInterval time.Duration
	// MaxContexts bounds the contexts whose answers are kept (0: 1000);
	// past it the cache starts over.
	MaxContexts int
	// NoStream leaves the event stream closed: polling only.
	NoStream bool
	// Getenv reads FEATURE_<KEY> variables that force boolean flags
	// (nil: os.Getenv). Return "" to force nothing.
	Getenv func(string) string
}

// FlagsChange is a change the server announced.
type FlagsChange struct {
	Flags []string // the keys whose definitions changed; empty: unknown
	ETag  string
}

// Flags evaluates the client's environment's flags; see the package
// documentation above. Safe for concurrent use; Close stops its stream.
type Flags struct {
	c    *Client
	opts FlagsOptions

	mu        sync.Mutex
	gen       uint64 // bumped on every announced change
	streaming bool
	cache     map[string]*flagAnswer // by context JSON
	listeners []func(FlagsChange)

	cancel context.CancelFunc
	done   chan struct{}
	ready  chan struct{} // closed once the stream was open or refused
	once   sync.Once
}

// flagAnswer is the bulk answer for one context.
type flagAnswer struct {
	etag  string
	gen   uint64
	at    time.Time
	flags map[string]FlagResult
}

// Flags starts evaluating the flags of the client's environment: it opens
// the environment's event stream in the background (unless opts.NoStream).
func (c *Client) Flags(opts FlagsOptions) (*Flags, error) {
	if c.env == "" {
		return nil, errNoEnvironment
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 30 * time.Second
	}
	if opts.MaxContexts <= 0 {
		opts.MaxContexts = 1000
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Flags{c: c, opts: opts, cache: map[string]*flagAnswer{}, cancel: cancel,
		done: make(chan struct{}), ready: make(chan struct{})}
	if opts.NoStream {
		close(f.ready)
		close(f.done)
		return f, nil
	}
	go f.follow(ctx)
	return f, nil
}

// WaitStream waits until the event stream is open (true) or was given up
// for polling (false), or ctx ends.
func (f *Flags) WaitStream(ctx context.Context) bool {
	select {
	case <-f.ready:
	case <-ctx.Done():
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streaming
}

// OnChange calls fn after every change of the flags the server announces.
func (f *Flags) OnChange(fn func(FlagsChange)) {
	f.mu.Lock()
	f.listeners = append(f.listeners, fn)
	f.mu.Unlock()
}

// Close stops the event stream.
func (f *Flags) Close() {
	f.once.Do(func() {
		f.cancel()
		<-f.done
	})
}

// Evaluate evaluates flag key for evalCtx (JSON-like values; the targeting
// key is evalCtx["targetingKey"]). A failure to reach the server is an
// error result (GENERAL) and the error; a stale answer is used instead
// when there is one.
func (f *Flags) Evaluate(ctx context.Context, key string, evalCtx map[string]any) (FlagResult, error) {
	a, err := f.answer(ctx, evalCtx)
	if a == nil {
		var e *Error
		code := ErrGeneral
		if errors.As(err, &e) && e.Code != "" && strings.ToUpper(e.Code) == e.Code {
			code = e.Code // an OFREP failure code (INVALID_CONTEXT, PARSE_ERROR)
		}
		return FlagResult{Key: key, Reason: ReasonError, ErrorCode: code, ErrorMessage: err.Error()}, err
	}
	r, ok := a.flags[key]
	if !ok {
		return FlagResult{Key: key, Reason: ReasonError, ErrorCode: ErrFlagNotFound,
			ErrorMessage: fmt.Sprintf("flag %q was not found in environment %q", key, f.c.env)}, nil
	}
	return r, nil
}

// Bool evaluates a boolean flag: def when the result has no boolean value.
// FEATURE_<KEY>=true|false forces it (STATIC, variant "override").
func (f *Flags) Bool(ctx context.Context, key string, def bool, evalCtx map[string]any) (bool, FlagResult) {
	if v, ok := f.forced(key); ok {
		return v, FlagResult{Key: key, Value: v, Variant: OverrideVariant, Reason: ReasonStatic}
	}
	r, _ := f.Evaluate(ctx, key, evalCtx)
	return typed(r, def, func(v any) (bool, bool) { b, ok := v.(bool); return b, ok })
}

// String evaluates a string flag: def when the result has no string value.
func (f *Flags) String(ctx context.Context, key, def string, evalCtx map[string]any) (string, FlagResult) {
	r, _ := f.Evaluate(ctx, key, evalCtx)
	return typed(r, def, func(v any) (string, bool) { s, ok := v.(string); return s, ok })
}

// Int evaluates an integer flag: def when the result has no integer value.
func (f *Flags) Int(ctx context.Context, key string, def int64, evalCtx map[string]any) (int64, FlagResult) {
	r, _ := f.Evaluate(ctx, key, evalCtx)
	return typed(r, def, func(v any) (int64, bool) {
		n, ok := v.(json.Number)
		if !ok {
			return 0, false
		}
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		x, err := n.Float64() // 1e3, 10.0
		if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	})
}

// Float evaluates a number flag: def when the result has no number value.
func (f *Flags) Float(ctx context.Context, key string, def float64, evalCtx map[string]any) (float64, FlagResult) {
	r, _ := f.Evaluate(ctx, key, evalCtx)
	return typed(r, def, func(v any) (float64, bool) {
		n, ok := v.(json.Number)
		if !ok {
			return 0, false
		}
		x, err := n.Float64()
		return x, err == nil
	})
}

// Object evaluates an object flag: def when the result has no object value.
func (f *Flags) Object(ctx context.Context, key string, def map[string]any, evalCtx map[string]any) (map[string]any, FlagResult) {
	r, _ := f.Evaluate(ctx, key, evalCtx)
	return typed(r, def, func(v any) (map[string]any, bool) { m, ok := v.(map[string]any); return m, ok })
}

// typed is r's value as a T, or def: with no value (disabled, no variant,
// an error) r is kept; a value of another type is TYPE_MISMATCH.
func typed[T any](r FlagResult, def T, conv func(any) (T, bool)) (T, FlagResult) {
	if r.ErrorCode != "" || r.Value == nil {
		return def, r
	}
	v, ok := conv(r.Value)
	if !ok {
		return def, FlagResult{Key: r.Key, Reason: ReasonError, ErrorCode: ErrTypeMismatch,
			ErrorMessage: fmt.Sprintf("flag %q has a value of another type (%T)", r.Key, r.Value), Metadata: r.Metadata}
	}
	return v, r
}

// forced reads FEATURE_<KEY>: the key upper-cased, other characters than
// letters and digits as _.
func (f *Flags) forced(key string) (bool, bool) {
	b := []byte("FEATURE_" + key)
	for i := len("FEATURE_"); i < len(b); i++ {
		c := b[i]
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			b[i] = '_'
		}
	}
	switch strings.ToLower(f.opts.Getenv(string(b))) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// answer returns the bulk answer for evalCtx: from memory while it is
// current, else revalidated or fetched.
func (f *Flags) answer(ctx context.Context, evalCtx map[string]any) (*flagAnswer, error) {
	if evalCtx == nil {
		evalCtx = map[string]any{}
	}
	key, err := json.Marshal(evalCtx) // map keys sorted: one text per context
	if err != nil {
		return nil, &Error{Status: 0, Code: ErrInvalidContext, Message: "envplane: the evaluation context is not JSON: " + err.Error()}
	}
	f.mu.Lock()
	a, gen, streaming := f.cache[string(key)], f.gen, f.streaming
	f.mu.Unlock()
	if a != nil && a.gen == gen && (streaming || time.Since(a.at) < f.opts.PollInterval) {
		return a, nil
	}
	next, err := f.fetch(ctx, key, a)
	if err != nil {
		if a != nil {
			return a, err // stale beats nothing
		}
		return nil, err
	}
	next.gen = gen
	f.mu.Lock()
	if len(f.cache) >= f.opts.MaxContexts {
		clear(f.cache)
	}
	f.cache[string(key)] = next
	f.mu.Unlock()
	return next, nil
}

// fetch asks the OFREP bulk endpoint; prev's ETag lets it answer 304.
func (f *Flags) fetch(ctx context.Context, evalCtx []byte, prev *flagAnswer) (*flagAnswer, error) {
	body := append(append([]byte(`{"context":`), evalCtx...), '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.c.endpoint("/ofrep/v1/evaluate/flags", nil), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if prev != nil {
		req.Header.Set("If-None-Match", prev.etag)
	}
	resp, err := f.c.do(req)
	if err != nil {
		return nil, fmt.Errorf("envplane: cannot reach %s: %w", f.c.base.Redacted(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && prev != nil {
		return &flagAnswer{etag: prev.etag, at: time.Now(), flags: prev.flags}, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusBadRequest {
		var fail struct{ ErrorCode, ErrorDetails string }
		if json.Unmarshal(data, &fail) == nil && fail.ErrorCode != "" {
			return nil, &Error{Status: resp.StatusCode, Code: fail.ErrorCode, Message: fail.ErrorDetails}
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, readError(&http.Response{StatusCode: resp.StatusCode, Body: io.NopCloser(bytes.NewReader(data))})
	}
	var out struct {
		Flags []struct {
			Key          string         `json:"key"`
			Value        any            `json:"value"`
			Reason       string         `json:"reason"`
			Variant      string         `json:"variant"`
			ErrorCode    string         `json:"errorCode"`
			ErrorDetails string         `json:"errorDetails"`
			Metadata     map[string]any `json:"metadata"`
		} `json:"flags"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("envplane: unexpected OFREP answer: %w", err)
	}
	a := &flagAnswer{etag: resp.Header.Get("ETag"), at: time.Now(), flags: make(map[string]FlagResult, len(out.Flags))}
	for _, fl := range out.Flags {
		r := FlagResult{Key: fl.Key, Value: fl.Value, Variant: fl.Variant, Reason: fl.Reason,
			ErrorCode: fl.ErrorCode, ErrorMessage: fl.ErrorDetails, Metadata: fl.Metadata}
		if r.ErrorCode != "" {
			r.Reason, r.Value = ReasonError, nil
		}
		a.flags[fl.Key] = r
	}
	return a, nil
}

// follow keeps the OFREP event stream open until Close: every message
// marks the answers stale. A refused stream (401, 403, 404) leaves polling.
func (f *Flags) follow(ctx context.Context) {
	defer close(f.done)
	readyOnce := sync.Once{}
	ready := func() { readyOnce.Do(func() { close(f.ready) }) }
	defer ready()
	backoff := 100 * time.Millisecond
	for {
		err := f.stream(ctx, ready)
		f.setStreaming(false)
		if ctx.Err() != nil {
			return
		}
		var e *Error
		if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusNotFound) {
			return
		}
		ready() // polling meanwhile
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Flags) setStreaming(on bool) {
	f.mu.Lock()
	f.streaming = on
	if on {
		f.gen++ // what changed while the stream was closed is unknown
	}
	f.mu.Unlock()
}

func (f *Flags) stream(ctx context.Context, opened func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.c.endpoint("/api/v1/environments/"+url.PathEscape(f.c.env)+"/events", url.Values{"ofrep": {"true"}}), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if f.c.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.c.token)
	}
	h := *f.c.http
	h.Timeout = 0 // the stream stays open: only ctx ends it
	resp, err := h.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	f.setStreaming(true)
	opened()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" && data.Len() > 0:
			f.changed(data.String())
			data.Reset()
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// changed applies one OFREP message: {"type":"refetchEvaluation",…}.
func (f *Flags) changed(data string) {
	var msg struct {
		Type  string   `json:"type"`
		ETag  string   `json:"etag"`
		Flags []string `json:"flags"`
	}
	if json.Unmarshal([]byte(data), &msg) != nil || msg.Type != "refetchEvaluation" {
		return // unknown types are ignored, as OFREP asks
	}
	f.mu.Lock()
	f.gen++
	listeners := slices.Clone(f.listeners)
	f.mu.Unlock()
	for _, fn := range listeners {
		fn(FlagsChange{Flags: msg.Flags, ETag: msg.ETag})
	}
}
