package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/flags"
)

// fastFlags has one flag of every kind the fast path prepares differently.
const fastFlags = `flags:
  static: {state: ENABLED, variants: {a: "A", b: "B"}, defaultVariant: a, metadata: {team: "x<y>&"}}
  disabled-split:
    state: DISABLED
    variants: {a: 1, b: 2}
    defaultVariant: a
    targeting: {fractional: [[a, 50], [b, 50]]}
  split: {state: ENABLED, variants: {a: 1.5, b: 2}, defaultVariant: a, targeting: {fractional: [[a, 50], [b, 50]]}}
  by-email:
    state: ENABLED
    variants: {"on": {x: [1, "two"]}, "off": null}
    defaultVariant: "off"
    targeting: {if: [{ends_with: [{var: email}, "@example.com"]}, "on", null]}
  no-default:
    state: ENABLED
    variants: {"on": true, "off": false}
    targeting: {if: [{"==": [{var: plan}, "pro"]}, "on", null]}
  by-var: {state: ENABLED, variants: {a: 1, b: 2}, defaultVariant: a, targeting: {var: choice}}
  numeric: {state: ENABLED, variants: {a: 1, b: 2}, defaultVariant: a, targeting: {if: [{">": [{var: n}, 10]}, "b", "a"]}}
  broken: {state: ENABLED, variants: {a: 1}, defaultVariant: nowhere}
  rollout: {default: false, rollout: {type: percentage, value: 50}}
`

// fastBodies are request bodies, valid and not: the fast path must answer
// the ones it accepts exactly as the general path does.
var fastBodies = []string{
	`{"context":{}}`,
	`{"context":{"targetingKey":"user-42","email":"ann@example.com","plan":"pro"}}`,
	` { "context" : { "targetingKey" : "u\u0031", "email" : "bob@other.org" } , "x" : [1, {"y": null}] } `,
	`{"context":{"email":"a\"b@example.com","n":12.5e1,"plan":"free","choice":"b"}}`,
	`{"context":{"choice":"zzz"}}`,
	`{"context":{"choice":"a","nested":{"a":[true,false,null,-0,0.5,"\ud83d\ude00"]}}}`,
	`{"context":{"n":1e400}}`,
	`{"context":{"targetingKey":7}}`,
	`{"context":{"targetingKey":7,"targetingKey":"u"}}`,
	`{"context":{"targetingKey":"u","targetingKey":null}}`,
	`{"context":{"targeting\u004bey":1}}`,
	`{"context":{"\b":0,"targeting\u004bey":"u"}}`,
	`{"Context":{"targetingKey":"u"}}`,
	`{"context":{"a":1},"context":{"b":2}}`,
	`{"CONTEXT":{},"context":{"a":1}}`,
	`{"context":{"a":1},"CONTEXT":{}}`,
	`{"context":null}`,
	`{"context":[]}`,
	`{"context":"x"}`,
	`{}`,
	`[]`,
	``,
	`{"context":{}} x`,
	`{"context":{"a":01}}`,
	`{"context":{"a":1.}}`,
	`{"context":{"a":tru}}`,
	`{"context":{"a":"\x"}}`,
	"{\"context\":{\"a\":\"\x01\"}}",
	`{"context":{"a":` + strings.Repeat(`[`, 14) + strings.Repeat(`]`, 14) + `}}`,
	`{"context":{"a":` + strings.Repeat(`[`, 15) + strings.Repeat(`]`, 15) + `}}`,
	`{"other":` + strings.Repeat(`[`, 16) + strings.Repeat(`]`, 16) + `,"context":{}}`,
	`{"context":{"a":{"b":{"c":"d"}},"dup":1,"dup":2}}`,
}

func fastSet(t testing.TB) *envFlags {
	t.Helper()
	doc := flags.Parse(flags.File{Name: "flags.yaml", Data: []byte(fastFlags)})
	return newEnvFlags("development", "r1", doc.Set("development"), nil)
}

func TestOFREPFastPathMatchesGeneral(t *testing.T) {
	f := fastSet(t)
	if f.ofrep.flags["static"].static == nil || f.ofrep.flags["broken"].static == nil || f.ofrep.flags["disabled-split"].static == nil {
		t.Fatal("context-free flags were not prepared as such")
	}
	accepted := 0
	for _, body := range fastBodies {
		data := []byte(body)
		if body == "" {
			data = nil
		}
		gctx, graw, failure := ofrepContext(data)
		_, sraw, sok := scanOFREPBody(data, false)
		fctx, fraw, fok := scanOFREPBody(bytes.Clone(data), true)
		if sok != fok || !bytes.Equal(sraw, fraw) {
			t.Errorf("%s: scanning alone says %v %q, building says %v %q", body, sok, sraw, fok, fraw)
		}
		if !fok {
			continue
		}
		accepted++
		if failure != nil {
			t.Errorf("%s: the fast path accepts what the general path refuses: %+v", body, failure)
			continue
		}
		if !bytes.Equal(graw, fraw) {
			t.Errorf("%s: context text %q, general %q", body, fraw, graw)
		}
		if diff := cmp.Diff(gctx, fctx); diff != "" {
			t.Errorf("%s: context (-general +fast)\n%s", body, diff)
		}
		for _, key := range f.set.Keys() {
			want, _ := encodeJSON(evaluate(f.set, key, gctx))
			out, ev := f.ofrep.answer(f.set, f.ofrep.flags[key], key, fctx)
			got, _ := encodeJSON(ev)
			if out != nil {
				got = out.body
				if wantStatus := map[bool]int{true: 200, false: 400}[ev.ErrorCode == ""]; out.status != wantStatus && out != f.ofrep.flags[key].static {
					t.Errorf("%s %s: status %d", body, key, out.status)
				}
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s %s: answer (-general +fast)\n%s", body, key, diff)
			}
		}
		// Bulk: the prepared fragments joined make the general answer.
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/ofrep/v1/evaluate/flags", nil)
		if err := (&Server{}).ofrepBulkFast(w, r, f, data, f.ofrep.etag(fraw)); err != nil {
			t.Fatal(err)
		}
		out := ofrepBulk{Metadata: map[string]any{"environment": "development"}, EventStreams: eventStreams("development")}
		for _, k := range f.set.Keys() {
			out.Flags = append(out.Flags, evaluate(f.set, k, gctx))
		}
		want, _ := encodeJSON(out)
		if diff := cmp.Diff(string(want), w.Body.String()); diff != "" {
			t.Errorf("%s: bulk (-general +fast)\n%s", body, diff)
		}
		if got, want := w.Header().Get("Etag"), bulkETag(f.set.Digest(), graw); got != want {
			t.Errorf("%s: ETag %s, general %s", body, got, want)
		}
	}
	if accepted < 10 {
		t.Errorf("the fast path accepted only %d bodies", accepted)
	}
}

// TestOFREPStaticStatus: a flag that did not load answers 400 PARSE_ERROR
// from its prepared body, as evaluating it does.
func TestOFREPStaticStatus(t *testing.T) {
	f := fastSet(t)
	if got := f.ofrep.flags["broken"].static.status; got != http.StatusBadRequest {
		t.Errorf("broken: status %d", got)
	}
	if got := f.ofrep.flags["static"].static.status; got != http.StatusOK {
		t.Errorf("static: status %d", got)
	}
}

// FuzzOFREPScan: whatever the fast scanner accepts, the general path
// accepts with the same context.
func FuzzOFREPScan(f *testing.F) {
	for _, b := range fastBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > ofrepBodyLimit {
			return
		}
		_, sraw, sok := scanOFREPBody(data, false)
		fctx, fraw, fok := scanOFREPBody(bytes.Clone(data), true)
		if sok != fok || !bytes.Equal(sraw, fraw) {
			t.Fatalf("scanning alone says %v %q, building says %v %q", sok, sraw, fok, fraw)
		}
		if !fok {
			return
		}
		gctx, graw, failure := ofrepContext(data)
		if failure != nil {
			t.Fatalf("fast path accepts what the general path refuses: %+v", failure)
		}
		if !bytes.Equal(graw, fraw) {
			t.Fatalf("context text %q, general %q", fraw, graw)
		}
		if diff := cmp.Diff(gctx, fctx); diff != "" {
			t.Fatalf("context (-general +fast)\n%s", diff)
		}
	})
}
