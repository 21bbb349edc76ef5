package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAuthorization walks every registered route with no token, an unknown
// token, an admin token scoped to another environment and a token of each
// role, and checks 401 / 403 / 2xx. A route missing from the table fails.
func TestAuthorization(t *testing.T) {
	h, rel := seeded(t)
	tokens := map[string]string{"unknown": "ep_unknownunknownunknownunknownunknown"}
	for _, role := range []string{"viewer", "editor", "approver", "admin"} {
		tokens[role], _ = h.token(role, role)
	}
	tokens["sdk"], _ = h.token("sdk", "sdk", "development")
	tokens["other"], _ = h.token("staging admin", "admin", "staging") // scoped to another environment

	type req struct {
		method, path string
		body         any
	}
	fixed := func(method, path string, body any) func(*testing.T) req {
		return func(*testing.T) req { return req{method, path, body} }
	}
	h.must(http.StatusOK, "PUT", "/api/v1/environments/development/secrets/DB_PASSWORD", adminToken, map[string]string{"value": "s3cret"})
	// Production (restricted) runs rel, so that its flags change through
	// change requests; promotions into it promote rel2.
	h.promoteProd(rel, h.groupToken("first approver", "approver"))
	rel2 := h.upload(shop(8081))
	h.setRelease("staging", rel2)
	change := func(action string) func(*testing.T) req {
		return func(t *testing.T) req {
			id := h.requestChange(tokens["editor"], "banner", map[string]any{"state": "DISABLED"})["id"].(string)
			if action == "" {
				return req{"GET", changes + id, nil}
			}
			return req{"POST", changes + id + "/" + action, nil}
		}
	}
	people := []string{"viewer", "editor", "approver", "admin"}
	doomed := 0
	readers := []string{"viewer", "editor", "approver", "admin", "other"} // global reads
	envReaders := []string{"viewer", "editor", "approver", "admin", "sdk"}
	oneEnv := []string{"sdk", "other"}
	ofrepBody := map[string]any{"context": map[string]any{"targetingKey": "u1"}}
	everyone := []string{"none", "unknown", "viewer", "editor", "approver", "admin", "sdk", "other"}
	cases := map[string]struct {
		req   func(*testing.T) req
		allow []string // who gets 2xx; other tokens get 403, no token 401
	}{
		"POST /api/v1/releases":     {fixed("POST", "/api/v1/releases", map[string]any{"files": shop(8080)}), []string{"editor", "admin", "other"}},
		"GET /api/v1/releases":      {fixed("GET", "/api/v1/releases", nil), readers},
		"GET /api/v1/releases/{id}": {fixed("GET", "/api/v1/releases/"+rel, nil), readers},
		"GET /api/v1/environments":  {fixed("GET", "/api/v1/environments", nil), readers},
		"PUT /api/v1/environments/{env}/release": {fixed("PUT", "/api/v1/environments/development/release",
			map[string]string{"release": rel}), []string{"admin"}},
		"GET /api/v1/environments/{env}/config":       {fixed("GET", "/api/v1/environments/development/config", nil), envReaders},
		"GET /api/v1/environments/{env}/explain":      {fixed("GET", "/api/v1/environments/development/explain?key=server.port", nil), envReaders},
		"GET /api/v1/environments/{env}/diff/{other}": {fixed("GET", "/api/v1/environments/development/diff/staging", nil), []string{"viewer", "editor", "approver", "admin"}},
		"GET /api/v1/environments/{env}/events":       {fixed("GET", "/api/v1/environments/development/events", nil), envReaders},
		"GET /api/v1/environments/{env}/flags":        {fixed("GET", "/api/v1/environments/development/flags", nil), envReaders},
		"PATCH /api/v1/environments/{env}/flags/{key}": {fixed("PATCH", "/api/v1/environments/development/flags/banner",
			map[string]any{"defaultVariant": "loud"}), []string{"editor", "admin"}},
		// Change requests of production's flags, each opened by the editor:
		// only the editor (the requester) and admins cancel it.
		"GET /api/v1/environments/{env}/flags/changes":               {fixed("GET", changes[:len(changes)-1], nil), people},
		"GET /api/v1/environments/{env}/flags/changes/{id}":          {change(""), people},
		"POST /api/v1/environments/{env}/flags/changes/{id}/approve": {change("approve"), []string{"approver", "admin"}},
		"POST /api/v1/environments/{env}/flags/changes/{id}/reject":  {change("reject"), []string{"approver", "admin"}},
		"POST /api/v1/environments/{env}/flags/changes/{id}/cancel":  {change("cancel"), []string{"editor", "admin"}},
		"POST /api/v1/environments/{env}/data-operations": {fixed("POST", "/api/v1/environments/development/data-operations",
			map[string]any{"kind": "seed", "phase": "start", "tables": []string{"customers"}, "digest": "sha256:" + strings.Repeat("ab", 32)}), []string{"editor", "admin"}},
		// OFREP takes the environment from the token: sdk keys and tokens
		// scoped to one environment only.
		"POST /ofrep/v1/evaluate/flags/{key}":    {fixed("POST", "/ofrep/v1/evaluate/flags/banner", ofrepBody), oneEnv},
		"POST /ofrep/v1/evaluate/flags":          {fixed("POST", "/ofrep/v1/evaluate/flags", ofrepBody), oneEnv},
		"GET /ofrep/v1/configuration":            {fixed("GET", "/ofrep/v1/configuration", nil), oneEnv},
		"GET /api/v1/environments/{env}/secrets": {fixed("GET", "/api/v1/environments/development/secrets", nil), envReaders},
		// Reading metadata is for envReaders (see TestSecretPermissions); the value is for these.
		"GET /api/v1/environments/{env}/secrets/{name}": {fixed("GET", "/api/v1/environments/development/secrets/DB_PASSWORD?reveal=true", nil), []string{"admin", "sdk"}},
		"PUT /api/v1/environments/{env}/secrets/{name}": {fixed("PUT", "/api/v1/environments/development/secrets/API_KEY", map[string]string{"value": "k"}),
			[]string{"editor", "admin"}},
		"DELETE /api/v1/environments/{env}/secrets/{name}": {func(t *testing.T) req {
			doomed++
			name := "DOOMED_" + itoa(doomed)
			h.must(http.StatusOK, "PUT", "/api/v1/environments/development/secrets/"+name, adminToken, map[string]string{"value": "x"})
			return req{"DELETE", "/api/v1/environments/development/secrets/" + name, nil}
		}, []string{"editor", "admin"}},
		"POST /api/v1/promotions": {fixed("POST", "/api/v1/promotions", map[string]string{"release": rel2, "environment": "production"}),
			[]string{"editor", "approver", "admin"}},
		"GET /api/v1/promotions": {fixed("GET", "/api/v1/promotions", nil), readers},
		"GET /api/v1/promotions/{id}": {func(t *testing.T) req {
			return req{"GET", "/api/v1/promotions/" + h.openPromotion(rel2), nil}
		}, []string{"viewer", "editor", "approver", "admin"}},
		"POST /api/v1/promotions/{id}/approve": {func(t *testing.T) req {
			return req{"POST", "/api/v1/promotions/" + h.openPromotion(rel2) + "/approve", nil}
		}, []string{"approver", "admin"}},
		"POST /api/v1/promotions/{id}/reject": {func(t *testing.T) req {
			return req{"POST", "/api/v1/promotions/" + h.openPromotion(rel2) + "/reject", map[string]string{"reason": "no"}}
		}, []string{"approver", "admin"}},
		// Opened by the bootstrap admin: only an admin cancels another's.
		"POST /api/v1/promotions/{id}/cancel": {func(t *testing.T) req {
			return req{"POST", "/api/v1/promotions/" + h.openPromotion(rel2) + "/cancel", nil}
		}, []string{"admin"}},
		"PUT /api/v1/promotions/{id}/checks/{name}": {func(t *testing.T) req {
			return req{"PUT", "/api/v1/promotions/" + h.openPromotion(rel2) + "/checks/smoke", map[string]string{"status": "passed"}}
		}, []string{"editor", "approver", "admin"}},
		"PUT /api/v1/promotions/{id}/checklist/{index}": {func(t *testing.T) req {
			return req{"PUT", "/api/v1/promotions/" + h.openPromotion(rel2) + "/checklist/0", map[string]bool{"done": true}}
		}, []string{"editor", "approver", "admin"}},
		"POST /api/v1/tokens": {fixed("POST", "/api/v1/tokens", map[string]any{"name": "t", "role": "viewer", "environments": []string{"development"}}),
			[]string{"admin"}},
		"GET /api/v1/tokens": {fixed("GET", "/api/v1/tokens", nil), []string{"admin", "other"}},
		"DELETE /api/v1/tokens/{id}": {func(t *testing.T) req {
			_, id := h.token("doomed", "viewer")
			return req{"DELETE", "/api/v1/tokens/" + id, nil}
		}, []string{"admin"}},
		"GET /api/v1/audit":        {fixed("GET", "/api/v1/audit", nil), []string{"admin", "other"}},
		"GET /api/v1/audit/verify": {fixed("GET", "/api/v1/audit/verify", nil), []string{"admin", "other"}},
		"GET /health/live":         {fixed("GET", "/health/live", nil), everyone},
		"GET /health/ready":        {fixed("GET", "/health/ready", nil), everyone},
		"GET /metrics":             {fixed("GET", "/metrics", nil), everyone},
		"GET /api/v1/openapi.json": {fixed("GET", "/api/v1/openapi.json", nil), everyone},
	}
	patterns := h.srv.Patterns()
	for p := range cases {
		if !slices.Contains(patterns, p) {
			t.Errorf("the table has %q, which is not a route", p)
		}
	}
	for _, pattern := range patterns {
		c, ok := cases[pattern]
		if !ok {
			t.Errorf("route %q has no authorization case", pattern)
			continue
		}
		for _, who := range everyone {
			t.Run(pattern+"/"+who, func(t *testing.T) {
				rq := c.req(t)
				want := http.StatusForbidden
				switch {
				case slices.Contains(c.allow, who):
					want = 0 // any 2xx
				case who == "none" || who == "unknown":
					want = http.StatusUnauthorized
				}
				status, body := send(t, h, rq.method, rq.path, tokens[who], rq.body)
				switch {
				case want == 0 && (status < 200 || status > 299):
					t.Errorf("%s: status %d, want 2xx: %s", who, status, body)
				case want != 0 && status != want:
					t.Errorf("%s: status %d, want %d: %s", who, status, want, body)
				case want != 0:
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
						t.Errorf("%s: no error body: %s", who, body)
					}
				}
			})
		}
	}
}

// send makes one request and reads at most the start of the body, so that
// event streams answer too.
func send(t *testing.T, h *harness, method, path, token string, body any) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequestWithContext(ctx, method, h.hs.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}
