package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/flags"
)

// OFREP (OpenFeature Remote Evaluation Protocol, open-feature/protocol
// service/openapi.yaml): POST /ofrep/v1/evaluate/flags/{key} evaluates one
// flag for the request's context, POST /ofrep/v1/evaluate/flags every flag
// (with ETag / If-None-Match → 304), and GET /ofrep/v1/configuration says
// what this server supports. The environment is the key's: an sdk key, or
// any token scoped to exactly one environment that may read config there.

// ofrepBodyLimit bounds an evaluation request: a context, not a release.
const ofrepBodyLimit = 64 << 10

// ofrepMaxDepth bounds the nesting of a request body, checked before it is
// parsed: {"context":{…}} is two levels, a context attribute may nest the rest.
const ofrepMaxDepth = 16

// requestToken is the request's token: Authorization: Bearer T, else
// X-API-Key: T (OFREP's API key scheme).
func requestToken(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		return token, strings.EqualFold(scheme, "Bearer") && token != ""
	}
	token := r.Header.Get("X-API-Key")
	return token, token != ""
}

// ofrepEnv is the environment OFREP evaluates in for p.
func ofrepEnv(p *auth.Principal) (string, error) {
	if len(p.Environments) != 1 {
		return "", errs.E(errs.Forbidden, "OFREP takes the environment from the key: use an sdk key, or a token scoped to exactly one environment (this one has %d)", len(p.Environments))
	}
	env := p.Environments[0]
	if err := p.Can(auth.ReadConfig, env); err != nil {
		return "", err
	}
	return env, nil
}

// ofrepEval is one evaluation: a success (value omitted when the caller's
// code default applies: a disabled flag, or no variant chosen), or a
// failure (errorCode, errorDetails).
type ofrepEval struct {
	Key          string         `json:"key"`
	Value        any            `json:"value,omitzero"`
	Reason       flags.Reason   `json:"reason,omitempty"`
	Variant      string         `json:"variant,omitempty"`
	ErrorCode    string         `json:"errorCode,omitempty"`
	ErrorDetails string         `json:"errorDetails,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// ofrepBulk is the body of a bulk evaluation.
type ofrepBulk struct {
	Flags        []ofrepEval    `json:"flags"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	EventStreams []eventStream  `json:"eventStreams,omitempty"`
}

type eventStream struct {
	Type               string              `json:"type"`
	Endpoint           eventStreamEndpoint `json:"endpoint"`
	InactivityDelaySec int                 `json:"inactivityDelaySec,omitempty"`
}

type eventStreamEndpoint struct {
	RequestURI string `json:"requestUri"`
}

// ofrepFailure is a request-level failure (400 of either endpoint).
type ofrepFailure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// readOFREPBody reads the (bounded) request body into buf; no body is nil.
func readOFREPBody(r *http.Request, buf *bytes.Buffer) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, tooLarge(maxErr.Limit)
		}
		return nil, bodyError(err)
	}
	if buf.Len() == 0 {
		return []byte{}, nil // an empty body, not none
	}
	return buf.Bytes(), nil
}

// ofrepContext reads {"context":{…}} from data, the request body (nil for
// none): the context and its JSON text. What is not JSON is PARSE_ERROR;
// JSON without an object context, or with a targetingKey that is not a
// string, is INVALID_CONTEXT. This is the general path; scanOFREPBody
// answers the requests it accepts without allocating.
func ofrepContext(data []byte) (ctx map[string]any, raw []byte, failure *ofrepFailure) {
	fail := func(code, details string) (map[string]any, []byte, *ofrepFailure) {
		return nil, nil, &ofrepFailure{ErrorCode: code, ErrorDetails: details}
	}
	if data == nil {
		return fail(string(flags.ErrParse), `a JSON body {"context":{…}} is required`)
	}
	if !utf8.Valid(data) {
		return fail(string(flags.ErrParse), "the body is not valid UTF-8")
	}
	if d := jsonDepth(data); d > ofrepMaxDepth {
		return fail(string(flags.ErrInvalidContext), "the context nests deeper than 14 levels")
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return fail(string(flags.ErrParse), `the body must be a JSON object {"context":{…}}`)
		}
		return fail(string(flags.ErrParse), "the body is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	raw = bytes.TrimSpace(req.Context)
	ctx, failure = parseContext(raw)
	return ctx, raw, failure
}

// parseContext reads an evaluation context, the JSON object of
// {"context":{…}}: what is not an object, or has a targetingKey that is
// not a string, is INVALID_CONTEXT.
func parseContext(raw []byte) (map[string]any, *ofrepFailure) {
	fail := func(code, details string) (map[string]any, *ofrepFailure) {
		return nil, &ofrepFailure{ErrorCode: code, ErrorDetails: details}
	}
	if len(raw) == 0 || raw[0] != '{' {
		what := "missing"
		if len(raw) > 0 {
			what = "not an object"
		}
		return fail(string(flags.ErrInvalidContext), "context: "+what+"; send {\"context\":{\"targetingKey\":\"…\",…}}")
	}
	var ctx map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ctx); err != nil {
		return fail(string(flags.ErrParse), "context: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if tk, ok := ctx["targetingKey"]; ok {
		if _, isString := tk.(string); !isString {
			return fail(string(flags.ErrInvalidContext), "context.targetingKey: must be a string")
		}
	}
	return ctx, nil
}

// jsonDepth is the deepest nesting of arrays and objects in data, counted
// without parsing (strings skipped).
func jsonDepth(data []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// hasTargetingKey reports whether ctx carries a non-empty targeting key.
func hasTargetingKey(ctx map[string]any) bool {
	tk, _ := ctx["targetingKey"].(string)
	return tk != ""
}

// evaluate is flag key of set for ctx in OFREP's terms.
func evaluate(set *flags.Set, key string, ctx map[string]any) ofrepEval {
	if set.NeedsTargetingKey(key) && !hasTargetingKey(ctx) {
		return ofrepEval{Key: key, ErrorCode: string(flags.ErrTargetingKeyMissing),
			ErrorDetails: "flag " + key + " splits users by targetingKey; the context has none"}
	}
	return ofrepResult(set.Evaluate(key, flags.Any, nil, ctx))
}

func ofrepResult(res flags.Result) ofrepEval {
	if res.ErrorCode != "" {
		return ofrepEval{Key: res.Key, ErrorCode: string(res.ErrorCode), ErrorDetails: res.ErrorMessage, Metadata: res.Metadata}
	}
	return ofrepEval{Key: res.Key, Value: res.Value, Reason: res.Reason, Variant: res.Variant, Metadata: res.Metadata}
}

// ofrepEvaluate is POST /ofrep/v1/evaluate/flags/{key}: 200 with the
// evaluation, 404 FLAG_NOT_FOUND, 400 for a bad request or a failed
// evaluation (errorCode says which).
func (s *Server) ofrepEvaluate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env, err := ofrepEnv(p)
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer putBodyBuf(buf)
	data, err := readOFREPBody(r, buf)
	if err != nil {
		return err
	}
	f, _ := s.flagsOf(env)
	if f != nil && f.ofrep != nil {
		if fp := f.ofrep.flags[key]; fp != nil {
			var ctx map[string]any
			ok := true
			if fp.static != nil {
				_, _, ok = scanOFREPBody(data, false)
			} else {
				// The context's strings point into the body: a copy of
				// its own, as the buffer goes back to the pool.
				ctx, _, ok = scanOFREPBody(bytes.Clone(data), true)
			}
			if ok {
				out, ev := f.ofrep.answer(f.set, fp, key, ctx)
				if out == nil { // a failed evaluation
					status := http.StatusOK
					if ev.ErrorCode != "" {
						status = http.StatusBadRequest
					}
					return writeJSON(w, status, ev)
				}
				return writeOut(w, out.status, out.body, out.lenHdr)
			}
		}
	}
	ctx, _, failure := ofrepContext(data)
	if failure != nil {
		failure.Key = key
		return writeJSON(w, http.StatusBadRequest, failure)
	}
	set := s.ofrepSet(env)
	ev := evaluate(set, key, ctx)
	status := http.StatusOK
	switch {
	case ev.ErrorCode == string(flags.ErrFlagNotFound):
		status = http.StatusNotFound
		ev.ErrorDetails = "flag " + quoteJSON(key) + " was not found in environment " + quoteJSON(env)
	case ev.ErrorCode != "":
		status = http.StatusBadRequest
	}
	return writeJSON(w, status, ev)
}

// putBodyBuf returns a request body buffer to the pool unless it grew large.
func putBodyBuf(b *bytes.Buffer) {
	if b.Cap() <= 2*ofrepBodyLimit {
		b.Reset()
		bodyBufs.Put(b)
	}
}

// writeOut answers status with a prepared JSON body.
func writeOut(w http.ResponseWriter, status int, body []byte, lenHdr []string) error {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = lenHdr
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// ofrepSet is the flag set OFREP evaluates in env: empty for an environment
// the snapshot does not (yet) know.
func (s *Server) ofrepSet(env string) *flags.Set {
	if f, err := s.flagsOf(env); err == nil {
		return f.set
	}
	return noFlags.Set(env)
}

// ofrepBulkEvaluate is POST /ofrep/v1/evaluate/flags: every flag of the
// environment for one context. The ETag covers the flag set and the
// context, so If-None-Match with the same context answers 304 until the
// flags change.
func (s *Server) ofrepBulkEvaluate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env, err := ofrepEnv(p)
	if err != nil {
		return err
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer putBodyBuf(buf)
	data, err := readOFREPBody(r, buf)
	if err != nil {
		return err
	}
	if f, _ := s.flagsOf(env); f != nil && f.ofrep != nil {
		// The ETag is decided on a scan of the body that builds nothing:
		// a 304 costs reading, checking and hashing it.
		if _, raw, ok := scanOFREPBody(data, false); ok {
			return s.ofrepBulkFast(w, r, f, data, f.ofrep.etag(raw))
		}
	}
	ctx, raw, failure := ofrepContext(data)
	if failure != nil {
		return writeJSON(w, http.StatusBadRequest, failure)
	}
	set := s.ofrepSet(env)
	etag := bulkETag(set.Digest(), raw)
	h := w.Header()
	h["Cache-Control"] = hdrRevalid
	h["Vary"] = hdrVaryKey
	h["Etag"] = []string{etag}
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	keys := set.Keys()
	out := ofrepBulk{Flags: make([]ofrepEval, 0, len(keys)), Metadata: map[string]any{"environment": env},
		EventStreams: eventStreams(env)}
	for _, k := range keys {
		out.Flags = append(out.Flags, evaluate(set, k, ctx))
	}
	return writeJSON(w, http.StatusOK, out)
}

// ofrepBulkFast answers a bulk evaluation whose body scanOFREPBody
// accepted: 304 on a matching If-None-Match, else the prepared fragments of
// every flag (the context decoded only when a flag depends on it).
func (s *Server) ofrepBulkFast(w http.ResponseWriter, r *http.Request, f *envFlags, data []byte, etag []string) error {
	h := w.Header()
	h["Cache-Control"] = hdrRevalid
	h["Vary"] = hdrVaryKey
	h["Etag"] = etag
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatch(inm, etag[0]) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	prep := f.ofrep
	var ctx map[string]any
	if prep.dynamic > 0 {
		var ok bool
		if ctx, _, ok = scanOFREPBody(bytes.Clone(data), true); !ok {
			return errs.E(errs.Internal, "OFREP: a body accepted once was refused on the second scan") // not reached
		}
	}
	out := bodyBufs.Get().(*bytes.Buffer)
	defer putBodyBuf(out)
	out.Write(prep.bulkPrefix)
	for i, k := range f.set.Keys() {
		if i > 0 {
			out.WriteByte(',')
		}
		fp := prep.flags[k]
		if fp == nil {
			return errs.E(errs.Internal, "OFREP: flag %q was not prepared", k) // not reached
		}
		o, ev := prep.answer(f.set, fp, k, ctx)
		if o != nil {
			out.Write(o.frag)
			continue
		}
		b, err := encodeJSON(ev)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "encode response")
		}
		out.Write(b[:len(b)-1])
	}
	out.Write(prep.bulkSuffix)
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(out.Len())}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(out.Bytes())
	return err
}

var hdrVaryKey = []string{"Authorization, X-API-Key"}

// bulkETag identifies a bulk answer: the flag set's digest and the context.
func bulkETag(digest string, context []byte) string {
	h := sha256.New()
	h.Write([]byte(digest))
	h.Write([]byte{0})
	h.Write(context)
	var sum [sha256.Size]byte
	return `"` + hex.EncodeToString(h.Sum(sum[:0])[:16]) + `"`
}

// eventStreams advertises the environment's event stream in OFREP's form:
// with ofrep=true it carries only flag changes, as OFREP's
// {"type":"refetchEvaluation"} messages.
func eventStreams(env string) []eventStream {
	return []eventStream{{Type: "sse", InactivityDelaySec: 120,
		Endpoint: eventStreamEndpoint{RequestURI: "/api/v1/environments/" + url.PathEscape(env) + "/events?ofrep=true"}}}
}

// ofrepStreamMessage turns a message of an environment's stream into what
// an OFREP stream sends: flag changes as unnamed (message) events, nothing
// else.
func ofrepStreamMessage(msg []byte) []byte {
	rest, ok := bytes.CutPrefix(msg, []byte("event: flags\n"))
	if !ok {
		return nil
	}
	return rest
}

// ofrepConfiguration is GET /ofrep/v1/configuration, the provider
// configuration of OFREP 0.1 (dropped from later versions of the
// specification, still read by some providers): the environment, the
// supported types, polling and the event stream.
func (s *Server) ofrepConfiguration(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	env, err := ofrepEnv(p)
	if err != nil {
		return err
	}
	type polling struct {
		Enabled              bool `json:"enabled"`
		MinPollingIntervalMs int  `json:"minPollingIntervalMs"`
	}
	out := map[string]any{
		"name":        "envplane",
		"environment": env,
		"capabilities": map[string]any{
			"cacheInvalidation": map[string]any{"polling": polling{Enabled: true, MinPollingIntervalMs: 1000}},
			"flagEvaluation":    map[string]any{"supportedTypes": []string{"boolean", "string", "int", "float", "object"}},
		},
		"eventStreams": eventStreams(env),
	}
	return writeJSON(w, http.StatusOK, out)
}
