package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	envplane "github.com/envplane/envplane/sdk"
)

// TestSDK drives the server with the Go SDK: config with ETag reuse,
// typed errors, and Watch seeing a release change.
func TestSDK(t *testing.T) {
	h, _ := seeded(t)
	key, _ := h.token("app", "sdk", "development")
	c, err := envplane.New(h.hs.URL, key, "development")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := c.Config(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if port, _ := cfg.Int("server.port"); port != 9000 {
		t.Fatalf("server.port = %d", port)
	}
	again, err := c.Config(ctx, "api")
	if err != nil || again != cfg {
		t.Fatalf("an unchanged config was not answered from the client's copy (%v)", err)
	}
	if _, err := c.Config(ctx, "nope"); !errors.Is(err, envplane.ErrInvalid) {
		t.Errorf("unknown service: %v", err)
	}
	other, _ := envplane.New(h.hs.URL, key, "staging")
	if _, err := other.Config(ctx, ""); !errors.Is(err, envplane.ErrForbidden) {
		t.Errorf("another environment: %v", err)
	}

	seen := make(chan int64, 10)
	go func() {
		_ = c.Watch(ctx, "", func(cfg *envplane.Config) {
			p, _ := cfg.Int("server.port")
			seen <- p
		})
	}()
	if p := <-seen; p != 8080 {
		t.Fatalf("first watch delivery: %d", p)
	}
	h.setRelease("development", h.upload(shop(8383)))
	select {
	case p := <-seen:
		if p != 8383 {
			t.Fatalf("after the change: %d", p)
		}
	case <-time.After(time.Second):
		t.Fatal("Watch did not see the change within 1 s")
	}
}
