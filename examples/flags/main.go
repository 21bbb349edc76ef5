// Command flags is the ARKA seed's FeatureFlagService.isEnabled (over
// LaunchDarkly) rewritten as OpenFeature calls against an
// envplane server, through the envplane provider.
//
//	ENVPLANE_SERVER=http://127.0.0.1:8080 ENVPLANE_TOKEN=ep_… (an sdk key) \
//	  go run ./examples/flags -env development -user u-42 -tenant acme new_rule_engine ai_rule_suggestions
//
// The flags come from examples/arka/config/feature-flags.yaml once a release
// of examples/arka is current in the environment. FEATURE_<FLAG> variables
// force boolean flags on or off, as with `envplane run`. The seed's
// getVariation<T> is client.StringValue, IntValue, FloatValue or ObjectValue.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/open-feature/go-sdk/openfeature"

	envplane "github.com/envplane/envplane/sdk"
	envof "github.com/envplane/envplane/sdk/openfeature"
)

// featureFlags is the seed's FeatureFlagService.
type featureFlags struct{ client *openfeature.Client }

// flagContext is the seed's { userId?, tenantId? }.
type flagContext struct{ UserID, TenantID string }

func (c flagContext) evaluation() openfeature.EvaluationContext {
	key := c.UserID
	if key == "" {
		key = "anonymous"
	}
	attrs := map[string]any{}
	if c.TenantID != "" {
		attrs["tenantId"] = c.TenantID
	}
	return openfeature.NewEvaluationContext(key, attrs)
}

// isEnabled is the seed's isEnabled(flag, {userId, tenantId}): false
// whenever the flag cannot be evaluated.
func (f featureFlags) isEnabled(ctx context.Context, flag string, c flagContext) bool {
	on, _ := f.client.BooleanValue(ctx, flag, false, c.evaluation())
	return on
}

func main() {
	env := flag.String("env", "development", "environment (the sdk key's)")
	user := flag.String("user", "", "userId")
	tenant := flag.String("tenant", "", "tenantId")
	flag.Parse()

	client, err := envplane.New(os.Getenv("ENVPLANE_SERVER"), os.Getenv("ENVPLANE_TOKEN"), *env)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := openfeature.SetProviderAndWait(envof.New(client, envplane.FlagsOptions{})); err != nil {
		fmt.Fprintln(os.Stderr, "envplane provider:", err)
		os.Exit(1)
	}
	defer openfeature.Shutdown()

	ff := featureFlags{client: openfeature.NewDefaultClient()}
	ctx := context.Background()
	for _, name := range flag.Args() {
		fmt.Printf("%s: %v\n", name, ff.isEnabled(ctx, name, flagContext{UserID: *user, TenantID: *tenant}))
	}
}
