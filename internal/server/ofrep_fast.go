package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/envplane/envplane/internal/flags"
)

// The OFREP hot path. Every answer that does not depend on the context is
// rendered once per flag set (ofrepPrep, built with the snapshot), and so
// is every outcome of a flag with targeting (one body per variant it may
// choose): a request scans its body without allocating, evaluates when it
// must, and writes prepared bytes. Whatever the fast path does not accept
// exactly as encoding/json would — escapes in a top-level key, "Context"
// spelled otherwise, a targetingKey that is not a string, anything invalid
// or nested too deep — goes the general way (ofrepContextBytes), which says
// what is wrong; the two answer alike (TestOFREPFastPathMatchesGeneral).

// ofrepOut is one prepared answer of one flag.
type ofrepOut struct {
	status int
	body   []byte   // the single evaluation's body (writeJSON's bytes)
	frag   []byte   // the same without the newline: an element of a bulk answer
	lenHdr []string // Content-Length of body
}

// ofrepOutcome names a successful evaluation: its value is the variant's.
type ofrepOutcome struct {
	reason  flags.Reason
	variant string
}

type ofrepFlagPrep struct {
	static   *ofrepOut // non-nil: the answer for every context
	outcomes map[ofrepOutcome]*ofrepOut
}

// ofrepPrep is everything OFREP answers of one flag set prepared.
type ofrepPrep struct {
	digest  string
	flags   map[string]*ofrepFlagPrep
	dynamic int // flags whose answer depends on the context
	// A bulk answer is prefix, the flags' fragments joined by commas, suffix.
	bulkPrefix, bulkSuffix []byte
}

func newOFREPOut(ev ofrepEval) *ofrepOut {
	status := http.StatusOK
	if ev.ErrorCode != "" {
		status = http.StatusBadRequest
	}
	b, err := encodeJSON(ev)
	if err != nil {
		return nil // not reached: variants come from YAML/JSON; the general path answers
	}
	return &ofrepOut{status: status, body: b, frag: b[:len(b)-1], lenHdr: []string{strconv.Itoa(len(b))}}
}

// prepareOFREP renders set's context-free answers and possible outcomes.
func prepareOFREP(env string, set *flags.Set) *ofrepPrep {
	p := &ofrepPrep{digest: set.Digest(), flags: map[string]*ofrepFlagPrep{}}
	for _, in := range set.Flags() {
		fp := &ofrepFlagPrep{}
		if set.ContextFree(in.Key) && !set.NeedsTargetingKey(in.Key) {
			fp.static = newOFREPOut(evaluate(set, in.Key, nil))
		}
		if fp.static == nil {
			p.dynamic++
			fp.outcomes = map[ofrepOutcome]*ofrepOut{}
			add := func(reason flags.Reason, variant string, value any) {
				if o := newOFREPOut(ofrepResult(flags.Result{Key: in.Key, Value: value, Variant: variant, Reason: reason, Metadata: in.Metadata})); o != nil {
					fp.outcomes[ofrepOutcome{reason, variant}] = o
				}
			}
			for name, v := range in.Variants {
				add(flags.ReasonTargetingMatch, name, v)
			}
			if v, ok := in.Variants[in.DefaultVariant]; ok {
				add(flags.ReasonDefault, in.DefaultVariant, v)
			} else {
				add(flags.ReasonDefault, "", nil)
			}
		}
		p.flags[in.Key] = fp
	}
	if b, err := encodeJSON(ofrepBulk{Flags: []ofrepEval{}, Metadata: map[string]any{"environment": env}, EventStreams: eventStreams(env)}); err == nil {
		if i := bytes.Index(b, []byte("[]")); i > 0 {
			p.bulkPrefix, p.bulkSuffix = b[:i+1], b[i+1:]
		}
	}
	return p
}

// answer is the prepared answer of flag key for ctx (nil: evaluate it the
// general way). ctx is only read for flags whose answer depends on it.
func (p *ofrepPrep) answer(set *flags.Set, fp *ofrepFlagPrep, key string, ctx map[string]any) (*ofrepOut, ofrepEval) {
	if fp.static != nil {
		return fp.static, ofrepEval{}
	}
	ev := evaluate(set, key, ctx)
	if ev.ErrorCode == "" {
		if o := fp.outcomes[ofrepOutcome{ev.Reason, ev.Variant}]; o != nil {
			return o, ev
		}
	}
	return nil, ev
}

// etag is bulkETag(p.digest, context) as a header value, in one allocation.
func (p *ofrepPrep) etag(context []byte) []string {
	var buf [512]byte
	b := append(append(append(buf[:0], p.digest...), 0), context...)
	sum := sha256.Sum256(b)
	v := new(struct {
		hdr [1]string
		b   [34]byte
	})
	v.b[0], v.b[33] = '"', '"'
	hex.Encode(v.b[1:33], sum[:16])
	v.hdr[0] = unsafe.String(&v.b[0], len(v.b))
	return v.hdr[:]
}

// encodeJSON is writeJSON's encoding of v.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// bodyBufs holds OFREP request bodies between requests.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// scanOFREPBody checks a body {"context":{…}} the way the general path
// would accept it and returns the context's JSON text (a slice of data);
// with build it also decodes the context as encoding/json with UseNumber
// would, its strings pointing into data (which must not change afterwards).
// ok is false for everything the general path must look at.
func scanOFREPBody(data []byte, build bool) (ctx map[string]any, raw []byte, ok bool) {
	if !utf8.Valid(data) {
		return nil, nil, false
	}
	s := jsonScan{data: data}
	i := s.ws(0)
	if i >= len(data) || data[i] != '{' {
		return nil, nil, false
	}
	i = s.ws(i + 1)
	found := false
	if i < len(data) && data[i] == '}' {
		return nil, nil, false // no context
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, nil, false
		}
		end, esc, ok := s.str(i)
		if !ok || esc {
			return nil, nil, false
		}
		key := data[i+1 : end-1]
		i = s.ws(end)
		if i >= len(data) || data[i] != ':' {
			return nil, nil, false
		}
		i = s.ws(i + 1)
		if string(key) == "context" {
			if found || i >= len(data) || data[i] != '{' {
				return nil, nil, false // twice (the last counts), or not an object
			}
			found = true
			start := i
			var v any
			if v, i, ok = s.context(i, build); !ok {
				return nil, nil, false
			}
			raw = data[start:i]
			if build {
				ctx = v.(map[string]any)
				if tk, has := ctx["targetingKey"]; has {
					if _, isString := tk.(string); !isString {
						return nil, nil, false
					}
				}
			}
		} else {
			if foldsToContext(key) {
				return nil, nil, false // encoding/json matches field names case-insensitively
			}
			if _, i, ok = s.value(i, 1, false); !ok {
				return nil, nil, false
			}
		}
		i = s.ws(i)
		if i >= len(data) {
			return nil, nil, false
		}
		if data[i] == ',' {
			i = s.ws(i + 1)
			continue
		}
		if data[i] != '}' {
			return nil, nil, false
		}
		break
	}
	if s.ws(i+1) != len(data) || !found {
		return nil, nil, false
	}
	return ctx, raw, true
}

// foldsToContext reports whether a key might name the context field to
// encoding/json other than exactly: any case of it, or non-ASCII (which
// folds in ways not worth repeating here).
func foldsToContext(key []byte) bool {
	if len(key) != len("context") {
		for _, c := range key {
			if c >= 0x80 {
				return true
			}
		}
		return false
	}
	for i, c := range key {
		if c >= 0x80 {
			return true
		}
		if c|0x20 != "context"[i] {
			return false
		}
	}
	return true
}

// jsonScan validates (and with build decodes) JSON values in data. The
// whole body is valid UTF-8 (checked first). Nesting deeper than
// ofrepMaxDepth, the body's own object included, is refused.
type jsonScan struct{ data []byte }

func (s *jsonScan) ws(i int) int {
	for i < len(s.data) {
		switch s.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str scans the string starting at data[i] (a quote): the index after it,
// whether it holds escapes.
func (s *jsonScan) str(i int) (end int, escaped, ok bool) {
	d := s.data
	for i++; i < len(d); {
		switch c := d[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return 0, false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					return 0, false, false
				}
				for _, h := range d[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default:
			i++
		}
	}
	return 0, false, false
}

// text is the string data[i:end] (quotes included) decoded: a view of data
// when it holds no escapes.
func (s *jsonScan) text(i, end int, escaped bool) (string, bool) {
	if !escaped {
		if end-i == 2 {
			return "", true
		}
		return unsafe.String(&s.data[i+1], end-i-2), true
	}
	var out string
	if err := json.Unmarshal(s.data[i:end], &out); err != nil {
		return "", false
	}
	return out, true
}

// context scans the context object at data[i] (depth 2).
func (s *jsonScan) context(i int, build bool) (any, int, bool) {
	if build {
		return s.value(i, 1, true)
	}
	// Without building, the targetingKey is checked on the way: the last
	// one given counts, and it must be a string.
	d := s.data
	i = s.ws(i + 1)
	tkBad := false
	if i < len(d) && d[i] == '}' {
		return nil, i + 1, true
	}
	for {
		if i >= len(d) || d[i] != '"' {
			return nil, 0, false
		}
		end, esc, ok := s.str(i)
		if !ok {
			return nil, 0, false
		}
		isTK := string(d[i+1:end-1]) == "targetingKey"
		if esc { // it may still spell targetingKey (rare: decoding allocates)
			var key string
			if key, ok = s.text(i, end, true); !ok {
				return nil, 0, false
			}
			isTK = key == "targetingKey"
		}
		i = s.ws(end)
		if i >= len(d) || d[i] != ':' {
			return nil, 0, false
		}
		i = s.ws(i + 1)
		if isTK {
			tkBad = i >= len(d) || d[i] != '"'
		}
		if _, i, ok = s.value(i, 2, false); !ok {
			return nil, 0, false
		}
		i = s.ws(i)
		if i >= len(d) {
			return nil, 0, false
		}
		if d[i] == ',' {
			i = s.ws(i + 1)
			continue
		}
		if d[i] != '}' || tkBad {
			return nil, 0, false
		}
		return nil, i + 1, true
	}
}

// value scans the value at data[i], inside depth levels of nesting.
func (s *jsonScan) value(i, depth int, build bool) (any, int, bool) {
	d := s.data
	if i >= len(d) {
		return nil, 0, false
	}
	switch c := d[i]; {
	case c == '{':
		if depth+1 > ofrepMaxDepth {
			return nil, 0, false
		}
		var m map[string]any
		if build {
			m = make(map[string]any)
		}
		i = s.ws(i + 1)
		if i < len(d) && d[i] == '}' {
			return m, i + 1, true
		}
		for {
			if i >= len(d) || d[i] != '"' {
				return nil, 0, false
			}
			end, esc, ok := s.str(i)
			if !ok {
				return nil, 0, false
			}
			var key string
			if build {
				if key, ok = s.text(i, end, esc); !ok {
					return nil, 0, false
				}
			}
			i = s.ws(end)
			if i >= len(d) || d[i] != ':' {
				return nil, 0, false
			}
			var v any
			if v, i, ok = s.value(s.ws(i+1), depth+1, build); !ok {
				return nil, 0, false
			}
			if build {
				m[key] = v
			}
			i = s.ws(i)
			if i >= len(d) {
				return nil, 0, false
			}
			if d[i] == ',' {
				i = s.ws(i + 1)
				continue
			}
			if d[i] != '}' {
				return nil, 0, false
			}
			return m, i + 1, true
		}
	case c == '[':
		if depth+1 > ofrepMaxDepth {
			return nil, 0, false
		}
		var a []any
		if build {
			a = []any{}
		}
		i = s.ws(i + 1)
		if i < len(d) && d[i] == ']' {
			return a, i + 1, true
		}
		for {
			v, next, ok := s.value(i, depth+1, build)
			if !ok {
				return nil, 0, false
			}
			if build {
				a = append(a, v)
			}
			i = s.ws(next)
			if i >= len(d) {
				return nil, 0, false
			}
			if d[i] == ',' {
				i = s.ws(i + 1)
				continue
			}
			if d[i] != ']' {
				return nil, 0, false
			}
			return a, i + 1, true
		}
	case c == '"':
		end, esc, ok := s.str(i)
		if !ok {
			return nil, 0, false
		}
		if !build {
			return nil, end, true
		}
		t, ok := s.text(i, end, esc)
		return t, end, ok
	case c == 't':
		return true, i + 4, bytes.HasPrefix(d[i:], []byte("true"))
	case c == 'f':
		return false, i + 5, bytes.HasPrefix(d[i:], []byte("false"))
	case c == 'n':
		return nil, i + 4, bytes.HasPrefix(d[i:], []byte("null"))
	case c == '-' || '0' <= c && c <= '9':
		end, ok := s.number(i)
		if !ok || !build {
			return nil, end, ok
		}
		return json.Number(unsafe.String(&d[i], end-i)), end, true
	}
	return nil, 0, false
}

// number scans a JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func (s *jsonScan) number(i int) (int, bool) {
	d := s.data
	digits := func(i int) (int, bool) {
		j := i
		for j < len(d) && '0' <= d[j] && d[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if d[i] == '-' {
		i++
	}
	if i >= len(d) {
		return 0, false
	}
	if d[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	if i < len(d) && d[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return 0, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, false
		}
	}
	return i, true
}
