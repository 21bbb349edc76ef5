// Package openfeature is the envplane provider for the OpenFeature Go SDK
// (github.com/open-feature/go-sdk): applications evaluate envplane flags
// through the standard OpenFeature API.
//
//	client, _ := envplane.New(server, sdkKey, "production")
//	openfeature.SetProviderAndWait(envof.New(client, envplane.FlagsOptions{}))
//	on, _ := openfeature.NewDefaultClient().BooleanValue(ctx, "new-checkout", false,
//		openfeature.NewEvaluationContext(userID, map[string]any{"tenantId": tenant}))
//
// Evaluation goes through the SDK's Flags (OFREP bulk answers kept per
// context, refreshed when the server's event stream announces a change);
// each change is a PROVIDER_CONFIGURATION_CHANGED event naming the flags.
package openfeature

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	envplane "github.com/envplane/envplane/sdk"
)

// Name is the provider's name in OpenFeature metadata.
const Name = "envplane"

// Provider evaluates envplane flags for OpenFeature. It implements
// of.FeatureProvider, of.StateHandler and of.EventHandler.
type Provider struct {
	client *envplane.Client
	opts   envplane.FlagsOptions
	// InitTimeout bounds Init: opening the stream and a first evaluation
	// (0: 10 s).
	InitTimeout time.Duration

	mu     sync.Mutex
	flags  *envplane.Flags
	events chan of.Event
}

var (
	_ of.FeatureProvider = (*Provider)(nil)
	_ of.StateHandler    = (*Provider)(nil)
	_ of.EventHandler    = (*Provider)(nil)
)

// New returns a provider for the environment of client (made with
// envplane.New, an sdk key or a token scoped to that one environment).
func New(client *envplane.Client, opts envplane.FlagsOptions) *Provider {
	return &Provider{client: client, opts: opts, events: make(chan of.Event, 64)}
}

// Metadata names the provider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks are none.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel carries PROVIDER_CONFIGURATION_CHANGED events.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init opens the event stream and evaluates once, so that a wrong key or
// an unreachable server fails here (the provider is then in ERROR state).
func (p *Provider) Init(of.EvaluationContext) error {
	timeout := p.InitTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f, err := p.client.Flags(p.opts)
	if err != nil {
		return err
	}
	f.WaitStream(ctx)
	if _, err := f.Evaluate(ctx, "", map[string]any{}); err != nil {
		f.Close()
		var e *envplane.Error
		if errors.As(err, &e) && (errors.Is(err, envplane.ErrUnauthorized) || errors.Is(err, envplane.ErrForbidden)) {
			return &of.ProviderInitError{ErrorCode: of.ProviderFatalCode, Message: e.Message}
		}
		return fmt.Errorf("envplane provider: %w", err)
	}
	f.OnChange(func(c envplane.FlagsChange) {
		ev := of.Event{ProviderName: Name, EventType: of.ProviderConfigChange,
			ProviderEventDetails: of.ProviderEventDetails{Message: "flags changed", FlagChanges: c.Flags,
				EventMetadata: map[string]any{"etag": c.ETag}}}
		select {
		case p.events <- ev:
		default: // the SDK reads events as they come; never block the stream
		}
	})
	p.mu.Lock()
	p.flags = f
	p.mu.Unlock()
	return nil
}

// Shutdown closes the event stream.
func (p *Provider) Shutdown() {
	p.mu.Lock()
	f := p.flags
	p.flags = nil
	p.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

func (p *Provider) current() *envplane.Flags {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flags
}

var errNotReady = of.NewProviderNotReadyResolutionError("the envplane provider is not initialized (use openfeature.SetProviderAndWait)")

// BooleanEvaluation evaluates a boolean flag.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, def bool, fc of.FlattenedContext) of.BoolResolutionDetail {
	f := p.current()
	if f == nil {
		return of.BoolResolutionDetail{Value: def, ProviderResolutionDetail: notReady()}
	}
	v, r := f.Bool(ctx, flag, def, fc)
	return of.BoolResolutionDetail{Value: v, ProviderResolutionDetail: detail(r)}
}

// StringEvaluation evaluates a string flag.
func (p *Provider) StringEvaluation(ctx context.Context, flag string, def string, fc of.FlattenedContext) of.StringResolutionDetail {
	f := p.current()
	if f == nil {
		return of.StringResolutionDetail{Value: def, ProviderResolutionDetail: notReady()}
	}
	v, r := f.String(ctx, flag, def, fc)
	return of.StringResolutionDetail{Value: v, ProviderResolutionDetail: detail(r)}
}

// FloatEvaluation evaluates a number flag.
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, def float64, fc of.FlattenedContext) of.FloatResolutionDetail {
	f := p.current()
	if f == nil {
		return of.FloatResolutionDetail{Value: def, ProviderResolutionDetail: notReady()}
	}
	v, r := f.Float(ctx, flag, def, fc)
	return of.FloatResolutionDetail{Value: v, ProviderResolutionDetail: detail(r)}
}

// IntEvaluation evaluates an integer flag.
func (p *Provider) IntEvaluation(ctx context.Context, flag string, def int64, fc of.FlattenedContext) of.IntResolutionDetail {
	f := p.current()
	if f == nil {
		return of.IntResolutionDetail{Value: def, ProviderResolutionDetail: notReady()}
	}
	v, r := f.Int(ctx, flag, def, fc)
	return of.IntResolutionDetail{Value: v, ProviderResolutionDetail: detail(r)}
}

// ObjectEvaluation evaluates an object flag: its value is a map[string]any
// (numbers as json.Number).
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, def any, fc of.FlattenedContext) of.InterfaceResolutionDetail {
	f := p.current()
	if f == nil {
		return of.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: notReady()}
	}
	r, _ := f.Evaluate(ctx, flag, fc)
	if r.ErrorCode == "" && r.Value != nil {
		if m, ok := r.Value.(map[string]any); ok {
			return of.InterfaceResolutionDetail{Value: m, ProviderResolutionDetail: detail(r)}
		}
		r = envplane.FlagResult{Key: flag, Reason: envplane.ReasonError, ErrorCode: envplane.ErrTypeMismatch,
			ErrorMessage: fmt.Sprintf("flag %q is not an object", flag)}
	}
	return of.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: detail(r)}
}

func notReady() of.ProviderResolutionDetail {
	return of.ProviderResolutionDetail{Reason: of.ErrorReason, ResolutionError: errNotReady}
}

// detail is r in OpenFeature's terms.
func detail(r envplane.FlagResult) of.ProviderResolutionDetail {
	d := of.ProviderResolutionDetail{Reason: of.Reason(r.Reason), Variant: r.Variant, FlagMetadata: of.FlagMetadata(r.Metadata)}
	if r.ErrorCode == "" {
		return d
	}
	d.Reason = of.ErrorReason
	switch r.ErrorCode {
	case envplane.ErrFlagNotFound:
		d.ResolutionError = of.NewFlagNotFoundResolutionError(r.ErrorMessage)
	case envplane.ErrParse:
		d.ResolutionError = of.NewParseErrorResolutionError(r.ErrorMessage)
	case envplane.ErrTypeMismatch:
		d.ResolutionError = of.NewTypeMismatchResolutionError(r.ErrorMessage)
	case envplane.ErrTargetingKeyMissing:
		d.ResolutionError = of.NewTargetingKeyMissingResolutionError(r.ErrorMessage)
	case envplane.ErrInvalidContext:
		d.ResolutionError = of.NewInvalidContextResolutionError(r.ErrorMessage)
	default:
		d.ResolutionError = of.NewGeneralResolutionError(r.ErrorMessage)
	}
	return d
}
