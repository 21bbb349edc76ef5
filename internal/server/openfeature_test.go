package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	of "github.com/open-feature/go-sdk/openfeature"

	envplane "github.com/envplane/envplane/sdk"
	envof "github.com/envplane/envplane/sdk/openfeature"
)

// TestOpenFeatureProvider drives the standard OpenFeature client with the
// envplane provider against a real server: the five typed evaluations,
// reasons, error codes and a configuration-changed event.
func TestOpenFeatureProvider(t *testing.T) {
	h, _ := seeded(t)
	key, _ := h.token("app", "sdk", "development")
	c, err := envplane.New(h.hs.URL, key, "development")
	if err != nil {
		t.Fatal(err)
	}
	const domain = "envplane-provider-test"
	if err := of.SetNamedProviderAndWait(domain, envof.New(c, envplane.FlagsOptions{Getenv: func(string) string { return "" }})); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = of.SetNamedProviderAndWait(domain, of.NoopProvider{}) })
	client := of.NewClient(domain)
	changed := make(chan of.EventDetails, 4)
	onChange := func(d of.EventDetails) { changed <- d }
	client.AddHandler(of.ProviderConfigChange, &onChange)

	ctx := context.Background()
	ann := of.NewEvaluationContext("ann", map[string]any{"email": "ann@example.com"})
	type row struct {
		Value   any
		Variant string
		Reason  of.Reason
		Code    of.ErrorCode
	}
	got := map[string]row{}
	b, _ := client.BooleanValueDetails(ctx, "new-checkout", false, ann)
	got["boolean"] = row{b.Value, b.Variant, b.Reason, b.ErrorCode}
	s, _ := client.StringValueDetails(ctx, "banner", "x", ann)
	got["string"] = row{s.Value, s.Variant, s.Reason, s.ErrorCode}
	f, _ := client.FloatValueDetails(ctx, "ratio", 0, ann)
	got["float"] = row{f.Value, f.Variant, f.Reason, f.ErrorCode}
	o, _ := client.ObjectValueDetails(ctx, "theme", nil, ann)
	got["object"] = row{o.Value, o.Variant, o.Reason, o.ErrorCode}
	d, _ := client.BooleanValueDetails(ctx, "retired", true, ann)
	got["disabled"] = row{d.Value, d.Variant, d.Reason, d.ErrorCode}
	m, _ := client.BooleanValueDetails(ctx, "nope", true, ann)
	got["missing"] = row{m.Value, m.Variant, m.Reason, m.ErrorCode}
	x, _ := client.IntValueDetails(ctx, "banner", 3, ann)
	got["mismatch"] = row{x.Value, x.Variant, x.Reason, x.ErrorCode}
	k, _ := client.IntValueDetails(ctx, "page-size", 3, of.NewTargetlessEvaluationContext(nil))
	got["no targeting key"] = row{k.Value, k.Variant, k.Reason, k.ErrorCode}
	want := map[string]row{
		"boolean":          {true, "on", of.TargetingMatchReason, ""},
		"string":           {"Welcome", "plain", of.StaticReason, ""},
		"float":            {0.25, "low", of.StaticReason, ""},
		"object":           {map[string]any{"bg": "#000"}, "dark", of.StaticReason, ""},
		"disabled":         {true, "", of.DisabledReason, ""},
		"missing":          {true, "", of.ErrorReason, of.FlagNotFoundCode},
		"mismatch":         {int64(3), "", of.ErrorReason, of.TypeMismatchCode},
		"no targeting key": {int64(3), "", of.ErrorReason, of.TargetingKeyMissingCode},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	i, err := client.IntValueDetails(ctx, "page-size", 3, ann)
	if err != nil || (i.Value != 10 && i.Value != 50) || i.Reason != of.TargetingMatchReason {
		t.Errorf("integer: %+v %v", i, err)
	}

	files := shop(8080)
	files["flags.yaml"] = strings.Replace(shopFlags, "Welcome", "Hello", 1)
	h.setRelease("development", h.upload(files))
	select {
	case d := <-changed:
		if diff := cmp.Diff([]string{"banner"}, d.FlagChanges); diff != "" {
			t.Errorf("flag changes (-want +got):\n%s", diff)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no PROVIDER_CONFIGURATION_CHANGED within 2 s")
	}
	if v, _ := client.StringValue(ctx, "banner", "x", ann); v != "Hello" {
		t.Errorf("after the change: %q", v)
	}
}

// TestOpenFeatureProviderBadKey: a revoked key fails Init; the client then
// answers the code default with an error.
func TestOpenFeatureProviderBadKey(t *testing.T) {
	h, _ := seeded(t)
	c, _ := envplane.New(h.hs.URL, "ep_notarealkeynotarealkeynotarealkey00", "development")
	const domain = "envplane-provider-badkey"
	if err := of.SetNamedProviderAndWait(domain, envof.New(c, envplane.FlagsOptions{NoStream: true})); err == nil {
		t.Fatal("Init with an unknown key succeeded")
	}
	t.Cleanup(func() { _ = of.SetNamedProviderAndWait(domain, of.NoopProvider{}) })
	v, err := of.NewClient(domain).BooleanValue(context.Background(), "new-checkout", true, of.EvaluationContext{})
	if err == nil || !v {
		t.Errorf("value %v, err %v", v, err)
	}
}
