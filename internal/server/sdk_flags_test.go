package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	envplane "github.com/envplane/envplane/sdk"
)

// countingTransport counts OFREP evaluation requests.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/ofrep/") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestSDKFlags drives the SDK's flag evaluation against a real server:
// every type, reasons and error codes, answers kept in memory per context,
// FEATURE_ overrides, and a change announced on the stream.
func TestSDKFlags(t *testing.T) {
	h, _ := seeded(t)
	key, _ := h.token("app", "sdk", "development")
	tr := &countingTransport{}
	c, err := envplane.New(h.hs.URL, key, "development", envplane.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FEATURE_RETIRED": "true"}
	f, err := c.Flags(envplane.FlagsOptions{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !f.WaitStream(ctx) {
		t.Fatal("the event stream did not open")
	}
	ann := map[string]any{"targetingKey": "ann", "email": "ann@example.com"}
	type got struct {
		Value                    any
		Variant, Reason, ErrCode string
	}
	g := func(v any, r envplane.FlagResult) got { return got{v, r.Variant, r.Reason, r.ErrorCode} }
	results := map[string]got{}
	results["bool"] = g(f.Bool(ctx, "new-checkout", false, ann))
	results["string"] = g(f.String(ctx, "banner", "x", ann))
	results["float"] = g(f.Float(ctx, "ratio", 0, ann))
	results["object"] = g(f.Object(ctx, "theme", nil, ann))
	results["forced"] = g(f.Bool(ctx, "retired", false, ann))
	results["missing"] = g(f.Bool(ctx, "nope", true, ann))
	results["mismatch"] = g(f.Int(ctx, "banner", 7, ann))
	size, r := f.Int(ctx, "page-size", 1, ann)
	if (size != 10 && size != 50) || r.Reason != envplane.ReasonTargetingMatch {
		t.Errorf("page-size: %d %+v", size, r)
	}
	want := map[string]got{
		"bool":     {true, "on", "TARGETING_MATCH", ""},
		"string":   {"Welcome", "plain", "STATIC", ""},
		"float":    {0.25, "low", "STATIC", ""},
		"object":   {map[string]any{"bg": "#000"}, "dark", "STATIC", ""},
		"forced":   {true, "override", "STATIC", ""},
		"missing":  {true, "", "ERROR", "FLAG_NOT_FOUND"},
		"mismatch": {int64(7), "", "ERROR", "TYPE_MISMATCH"},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := tr.n.Load(); n != 1 {
		t.Errorf("%d OFREP requests for one context, want 1", n)
	}
	noKey := map[string]any{"plan": "pro"}
	if v, r := f.Int(ctx, "page-size", 1, noKey); v != 1 || r.ErrorCode != envplane.ErrTargetingKeyMissing {
		t.Errorf("no targeting key: %d %+v", v, r)
	}
	if v, r := f.Bool(ctx, "new-checkout", true, noKey); v || r.Reason != envplane.ReasonDefault {
		t.Errorf("no email: %v %+v", v, r)
	}

	changes := make(chan envplane.FlagsChange, 4)
	f.OnChange(func(c envplane.FlagsChange) { changes <- c })
	files := shop(8080)
	files["flags.yaml"] = strings.Replace(shopFlags, "Welcome", "Hello", 1)
	h.setRelease("development", h.upload(files))
	select {
	case c := <-changes:
		if diff := cmp.Diff([]string{"banner"}, c.Flags); diff != "" {
			t.Errorf("changed flags (-want +got):\n%s", diff)
		}
	case <-time.After(time.Second):
		t.Fatal("no change within 1 s")
	}
	if v, _ := f.String(ctx, "banner", "x", ann); v != "Hello" {
		t.Errorf("after the change: %q", v)
	}
}

// TestSDKFlagsPolling: without the stream, answers are revalidated every
// PollInterval (304 while nothing changed).
func TestSDKFlagsPolling(t *testing.T) {
	h, _ := seeded(t)
	key, _ := h.token("app", "sdk", "development")
	c, _ := envplane.New(h.hs.URL, key, "development")
	f, err := c.Flags(envplane.FlagsOptions{NoStream: true, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	if v, _ := f.String(ctx, "banner", "x", nil); v != "Welcome" {
		t.Fatalf("banner %q", v)
	}
	files := shop(8080)
	files["flags.yaml"] = strings.Replace(shopFlags, "Welcome", "Hello", 1)
	h.setRelease("development", h.upload(files))
	deadline := time.Now().Add(2 * time.Second)
	for {
		if v, _ := f.String(ctx, "banner", "x", nil); v == "Hello" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("polling did not see the change")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
