package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestListFlags(t *testing.T) {
	h, _ := seeded(t)
	type flag struct {
		Key, Type, State, DefaultVariant string
		NeedsTargetingKey                bool
	}
	list := func(env string) []flag {
		t.Helper()
		var out struct {
			Environment string
			Flags       []flag
		}
		r := h.must(200, "GET", "/api/v1/environments/"+env+"/flags", adminToken, nil)
		if err := json.Unmarshal(r.body, &out); err != nil || out.Environment != env {
			t.Fatalf("%v: %s", err, r.body)
		}
		return out.Flags
	}
	want := []flag{
		{"banner", "string", "ENABLED", "plain", false},
		{"new-checkout", "boolean", "ENABLED", "off", false},
		{"page-size", "integer", "ENABLED", "small", true},
		{"ratio", "float", "ENABLED", "low", false},
		{"retired", "boolean", "DISABLED", "on", false},
		{"theme", "object", "ENABLED", "dark", false},
	}
	if diff := cmp.Diff(want, list("development")); diff != "" {
		t.Errorf("development (-want +got):\n%s", diff)
	}
	// Per environment: staging's ratio defaults to high.
	want[3].DefaultVariant = "high"
	if diff := cmp.Diff(want, list("staging")); diff != "" {
		t.Errorf("staging (-want +got):\n%s", diff)
	}
	// No release: no flags.
	if got := list("production"); len(got) != 0 {
		t.Errorf("production: %v", got)
	}
	r := h.must(200, "GET", "/api/v1/environments/development/flags", adminToken, nil)
	h.must(304, "GET", "/api/v1/environments/development/flags", adminToken, nil, "If-None-Match", r.header.Get("ETag"))
	runCases(t, h, []apiCase{
		{name: "unknown environment", method: "GET", path: "/api/v1/environments/nope/flags", status: 404, code: "not_found"},
	})
}

// ofrep posts an OFREP request with an sdk key given as X-API-Key or
// Authorization.
func ofrep(h *harness, path, key string, body any, headers ...string) response {
	h.t.Helper()
	return h.call("POST", path, "", body, append([]string{"X-API-Key", key}, headers...)...)
}

func TestOFREPEvaluate(t *testing.T) {
	h, _ := seeded(t)
	sdk, _ := h.token("app", "sdk", "development")
	stagingViewer, _ := h.token("staging viewer", "viewer", "staging")
	viewer, _ := h.token("viewer", "viewer")
	ctx := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"context": m}
	}
	cases := []struct {
		name   string
		key    string
		token  string // default sdk
		body   any
		status int
		want   map[string]any // the whole body; nil: not compared
	}{
		{"string, static", "banner", "", ctx("targetingKey", "u1"), 200,
			map[string]any{"key": "banner", "value": "Welcome", "reason": "STATIC", "variant": "plain"}},
		{"boolean, targeting match", "new-checkout", "", ctx("targetingKey", "u1", "email", "ann@example.com"), 200,
			map[string]any{"key": "new-checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on"}},
		{"boolean, targeting null", "new-checkout", "", ctx("email", "bob@other.org"), 200,
			map[string]any{"key": "new-checkout", "value": false, "reason": "DEFAULT", "variant": "off"}},
		{"float", "ratio", "", ctx(), 200,
			map[string]any{"key": "ratio", "value": 0.25, "reason": "STATIC", "variant": "low"}},
		{"float in staging (a token scoped to it)", "ratio", stagingViewer, ctx(), 200,
			map[string]any{"key": "ratio", "value": 0.75, "reason": "STATIC", "variant": "high"}},
		{"object", "theme", "", ctx(), 200,
			map[string]any{"key": "theme", "value": map[string]any{"bg": "#000"}, "reason": "STATIC", "variant": "dark"}},
		{"disabled: the code default, no value", "retired", "", ctx(), 200,
			map[string]any{"key": "retired", "reason": "DISABLED"}},
		{"integer split", "page-size", "", ctx("targetingKey", "user-7"), 200, nil},
		{"split without a targeting key", "page-size", "", ctx("plan", "pro"), 400,
			map[string]any{"key": "page-size", "errorCode": "TARGETING_KEY_MISSING", "errorDetails": "flag page-size splits users by targetingKey; the context has none"}},
		{"no such flag", "nope", "", ctx(), 404,
			map[string]any{"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": `flag "nope" was not found in environment "development"`}},
		{"not JSON", "banner", "", `{"context":`, 400, nil},
		{"no context", "banner", "", map[string]any{}, 400, nil},
		{"context not an object", "banner", "", map[string]any{"context": []int{1}}, 400, nil},
		{"targetingKey not a string", "banner", "", ctx("targetingKey", 7), 400, nil},
		{"context too deep", "banner", "", `{"context":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, 400, nil},
		{"unscoped token", "banner", viewer, ctx(), 403, nil},
	}
	codes := map[string]string{"not JSON": "PARSE_ERROR", "no context": "INVALID_CONTEXT", "context not an object": "INVALID_CONTEXT",
		"targetingKey not a string": "INVALID_CONTEXT", "context too deep": "INVALID_CONTEXT"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hh := *h
			hh.t = t
			token := c.token
			if token == "" {
				token = sdk
			}
			r := ofrep(&hh, "/ofrep/v1/evaluate/flags/"+c.key, token, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.status == 403 {
				return
			}
			got := r.json(t)
			if code, ok := codes[c.name]; ok {
				if got["errorCode"] != code || got["key"] != c.key || got["errorDetails"] == "" {
					t.Errorf("want errorCode %s for key %s: %v", code, c.key, got)
				}
			}
			if c.want != nil {
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
			if c.name == "integer split" {
				if v := got["value"]; got["reason"] != "TARGETING_MATCH" || (v != 10.0 && v != 50.0) {
					t.Errorf("split: %v", got)
				}
			}
		})
	}
	// The same through Authorization: Bearer.
	r := h.must(200, "POST", "/ofrep/v1/evaluate/flags/banner", sdk, ctx())
	if r.json(t)["value"] != "Welcome" {
		t.Errorf("bearer: %s", r.body)
	}
}

func TestOFREPBulk(t *testing.T) {
	h, _ := seeded(t)
	sdk, _ := h.token("app", "sdk", "development")
	body := map[string]any{"context": map[string]any{"targetingKey": "u1", "email": "ann@example.com"}}
	r := ofrep(h, "/ofrep/v1/evaluate/flags", sdk, body)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var got struct {
		Flags        []map[string]any
		Metadata     map[string]any
		EventStreams []map[string]any
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]any{}
	for _, f := range got.Flags {
		byKey[f["key"].(string)] = f["value"]
	}
	pageSize := byKey["page-size"]
	want := map[string]any{"banner": "Welcome", "new-checkout": true, "page-size": pageSize, "ratio": 0.25,
		"retired": nil, "theme": map[string]any{"bg": "#000"}}
	if diff := cmp.Diff(want, byKey); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if pageSize != 10.0 && pageSize != 50.0 {
		t.Errorf("page-size %v", pageSize)
	}
	wantStreams := []map[string]any{{"type": "sse", "inactivityDelaySec": 120.0,
		"endpoint": map[string]any{"requestUri": "/api/v1/environments/development/events?ofrep=true"}}}
	if diff := cmp.Diff(wantStreams, got.EventStreams); diff != "" {
		t.Errorf("eventStreams (-want +got):\n%s", diff)
	}
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if r := ofrep(h, "/ofrep/v1/evaluate/flags", sdk, body, "If-None-Match", etag); r.status != 304 {
		t.Errorf("same context: %d, want 304", r.status)
	}
	other := map[string]any{"context": map[string]any{"targetingKey": "u2"}}
	if r := ofrep(h, "/ofrep/v1/evaluate/flags", sdk, other, "If-None-Match", etag); r.status != 200 {
		t.Errorf("another context: %d, want 200", r.status)
	}
	// Without a targeting key the split flag fails alone.
	r = ofrep(h, "/ofrep/v1/evaluate/flags", sdk, map[string]any{"context": map[string]any{}})
	if !strings.Contains(string(r.body), `{"key":"page-size","errorCode":"TARGETING_KEY_MISSING"`) {
		t.Errorf("no targeting key: %s", r.body)
	}
	// A bad context fails the request.
	r = ofrep(h, "/ofrep/v1/evaluate/flags", sdk, map[string]any{"context": "x"})
	if r.status != 400 || r.json(t)["errorCode"] != "INVALID_CONTEXT" {
		t.Errorf("bad context: %d %s", r.status, r.body)
	}
	// A new release that changes the flags changes the ETag.
	files := shop(8080)
	files["flags.yaml"] = strings.Replace(shopFlags, "Welcome", "Hello", 1)
	h.setRelease("development", h.upload(files))
	if r := ofrep(h, "/ofrep/v1/evaluate/flags", sdk, body, "If-None-Match", etag); r.status != 200 || !strings.Contains(string(r.body), "Hello") {
		t.Errorf("after a flag change: %d %s", r.status, r.body)
	}
	c := h.must(200, "GET", "/ofrep/v1/configuration", sdk, nil).json(t)
	if c["environment"] != "development" || c["name"] != "envplane" {
		t.Errorf("configuration: %v", c)
	}
}

// TestFlagEvents: a release that changes flags sends "event: flags" naming
// the changed keys; one that changes only config does not; the OFREP form
// of the stream carries only those, as unnamed refetch messages.
func TestFlagEvents(t *testing.T) {
	h, _ := seeded(t)
	sdk, _ := h.token("app", "sdk", "development")
	open := func(query string) <-chan string {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.hs.URL+"/api/v1/environments/development/events"+query, nil)
		req.Header.Set("X-API-Key", sdk)
		resp, err := h.hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("events: %d", resp.StatusCode)
		}
		lines := make(chan string, 100)
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if l := sc.Text(); l != "" && !strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "retry:") {
					lines <- l
				}
			}
			close(lines)
		}()
		return lines
	}
	next := func(lines <-chan string) string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(2 * time.Second):
			t.Fatal("no event within 2s")
		}
		return ""
	}
	plain, ofrepStream := open(""), open("?ofrep=true")
	time.Sleep(50 * time.Millisecond) // both streams subscribed

	h.setRelease("development", h.upload(shop(9999))) // config only
	if l := next(plain); l != "event: release" {
		t.Fatalf("got %q, want the release event", l)
	}
	next(plain) // its data
	files := shop(9999)
	files["flags.yaml"] = strings.Replace(shopFlags, "defaultVariant: dark", "defaultVariant: light", 1)
	h.setRelease("development", h.upload(files))
	var got []string
	for range 4 {
		got = append(got, next(plain))
	}
	if got[0] != "event: release" || got[2] != "event: flags" {
		t.Fatalf("events %q", got)
	}
	var ev struct {
		Type, Environment string
		Flags             []string
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(got[3], "data: ")), &ev); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(struct {
		Type, Environment string
		Flags             []string
	}{"refetchEvaluation", "development", []string{"theme"}}, ev); diff != "" {
		t.Errorf("flags event (-want +got):\n%s", diff)
	}
	// The OFREP stream saw only the flag change, as an unnamed message.
	if l := next(ofrepStream); !strings.HasPrefix(l, `data: {"type":"refetchEvaluation"`) {
		t.Errorf("ofrep stream: %q", l)
	}
}
