package envplane_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	envplane "github.com/envplane/envplane/sdk"
)

// TestDo checks the general request method: authentication, the JSON body
// both ways, the status, and every error answer turned into an *Error.
func TestDo(t *testing.T) {
	type seen struct{ Method, Path, Query, Auth, ContentType, Body string }
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)}
		switch r.URL.Path {
		case "/api/v1/releases":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"rel_1","digest":"sha256:ab"}`)
		case "/api/v1/invalid":
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid","message":"the request is not valid","fields":[{"field":"name","message":"required"},{"field":"role","message":"unknown"}]}}`)
		case "/api/v1/plain":
			http.Error(w, "upstream gone", http.StatusBadGateway)
		case "/api/v1/empty":
			w.WriteHeader(http.StatusNotFound)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	c, err := envplane.NewAPI(srv.URL+"/", "ep_x")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var rel struct{ ID, Digest string }
	status, err := c.Do(ctx, "POST", "/api/v1/releases", url.Values{"a": {"b c"}}, map[string]string{"k": "v"}, &rel)
	if err != nil || status != http.StatusCreated || rel.ID != "rel_1" {
		t.Fatalf("Do = %d, %v, %+v", status, err, rel)
	}
	want := seen{"POST", "/api/v1/releases", "a=b+c", "Bearer ep_x", "application/json", `{"k":"v"}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	var raw json.RawMessage
	if _, err := c.Do(ctx, "GET", "/api/v1/x", nil, nil, &raw); err != nil || string(raw) != `{"ok":true}` || got.ContentType != "" {
		t.Errorf("raw: %s, %v, content type %q", raw, err, got.ContentType)
	}

	for _, tc := range []struct {
		path   string
		want   *envplane.Error
		target error
	}{
		{"/api/v1/invalid", &envplane.Error{Status: 400, Code: "invalid", Message: "the request is not valid",
			Fields: []envplane.FieldError{{Field: "name", Message: "required"}, {Field: "role", Message: "unknown"}}}, envplane.ErrInvalid},
		{"/api/v1/plain", &envplane.Error{Status: 502, Code: "internal", Message: "upstream gone"}, nil},
		{"/api/v1/empty", &envplane.Error{Status: 404, Code: "not_found", Message: "Not Found"}, envplane.ErrNotFound},
	} {
		status, err := c.Do(ctx, "GET", tc.path, nil, nil, nil)
		var e *envplane.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: want an *Error, got %v", tc.path, err)
		}
		if diff := cmp.Diff(tc.want, e); diff != "" || status != tc.want.Status {
			t.Errorf("%s: status %d, error (-want +got):\n%s", tc.path, status, diff)
		}
		if tc.target != nil && !errors.Is(err, tc.target) {
			t.Errorf("%s: errors.Is(%v, %v) = false", tc.path, err, tc.target)
		}
	}

	srv.Close()
	if _, err := c.Do(ctx, "GET", "/api/v1/x", nil, nil, nil); err == nil || !strings.HasPrefix(err.Error(), "cannot reach "+srv.URL+": ") {
		t.Errorf("closed server: %v", err)
	}
}

func TestNewAPIHasNoEnvironment(t *testing.T) {
	c, err := envplane.NewAPI("http://127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Config(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "no environment") {
		t.Errorf("Config: %v", err)
	}
	if err := c.Watch(context.Background(), "", func(*envplane.Config) {}); err == nil || !strings.Contains(err.Error(), "no environment") {
		t.Errorf("Watch: %v", err)
	}
	for _, u := range []string{"", "ftp://x", "http://"} {
		if _, err := envplane.NewAPI(u, ""); err == nil {
			t.Errorf("NewAPI(%q): want an error", u)
		}
	}
}
