// Package server is envplane's HTTP API: releases, environments and their
// current release, resolved config (with ETag, explain and diff), server-side
// secrets, server-sent events, tokens, the audit log, health and metrics. Resolved configs are held
// in memory behind an atomic pointer, so reads keep being served while the
// store is unreachable; every write goes through one store transaction
// together with its audit entry.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"golang.org/x/time/rate"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/vault"
)

// Defaults for zero Options fields.
const (
	DefaultRateLimit    = 1000     // requests per second per token
	DefaultMaxBodyBytes = 32 << 20 // release uploads: 16 MiB of files plus JSON escaping
	DefaultHeartbeat    = 15 * time.Second
	// DefaultAuthFailLimit is store lookups of unknown tokens per second per
	// client address; DefaultAuthFailBurst of them may come at once.
	DefaultAuthFailLimit   = 5
	DefaultAuthFailBurst   = 50
	DefaultShutdownTimeout = 10 * time.Second
	// smallBody bounds every request body other than a release upload.
	smallBody = 1 << 20
)

// Options configure a Server. Only Store is required.
type Options struct {
	Store  store.Store
	Logger *slog.Logger     // nil: logs are discarded
	Clock  func() time.Time // nil: time.Now
	Rand   io.Reader        // token and ID randomness; nil: crypto/rand
	// BootstrapToken becomes the admin token when the store has no token yet.
	// Empty: one is generated and printed once on Stderr.
	BootstrapToken string
	Stderr         io.Writer // nil: io.Discard
	// RateLimit is requests per second per token: 0 means DefaultRateLimit,
	// a negative value turns the limit off. RateBurst defaults to twice it.
	RateLimit float64
	RateBurst int
	// AuthFailLimit bounds, per client address, the store lookups of tokens
	// that turn out unknown, per second (0: DefaultAuthFailLimit; negative:
	// no limit); AuthFailBurst (0: DefaultAuthFailBurst) may come at once.
	// A repeated unknown token is answered from memory and never counts.
	AuthFailLimit float64
	AuthFailBurst int
	// MaxBodyBytes bounds release uploads (0: DefaultMaxBodyBytes); other
	// bodies are bounded by the smaller of it and 1 MiB.
	MaxBodyBytes int64
	// Heartbeat is the interval of SSE keep-alive comments (0: 15 s).
	Heartbeat time.Duration
	// ShutdownTimeout bounds draining in-flight requests (0: 10 s).
	ShutdownTimeout time.Duration
	// TLSCertFile and TLSKeyFile, both set, make Serve speak HTTPS.
	TLSCertFile, TLSKeyFile string
	// Vault holds the master key of server-side secrets, for the App built
	// when App is nil. nil: the secrets routes answer 503 and configs
	// resolve without server-side secrets.
	Vault *vault.Vault
	// Audit configures the audit log of the App built when App is nil.
	Audit app.AuditOptions
	// AgeIdentities are the server's age identities, for the App built
	// when App is nil: they open the workspace secrets files of releases.
	AgeIdentities []age.Identity
	// App runs the use cases; nil: one over Store, Vault, Audit and
	// AgeIdentities.
	App *app.App
	// PromotionInterval is how often the promotion runner looks for
	// timers and freezes that ended and checks to run (0: 5 s); writes
	// wake it sooner.
	PromotionInterval time.Duration
}

// Server is one envplane API replica.
type Server struct {
	st       store.Store
	app      *app.App
	log      *slog.Logger
	opts     Options
	mux      *http.ServeMux
	patterns []string // every registered pattern, for the OpenAPI test
	// unmatched counts requests no route matches.
	unmatched *route

	snap     atomic.Pointer[snapshot]
	reloadMu sync.Mutex
	// dirty: the snapshot may be behind the store and a reload is due.
	dirty  atomic.Bool
	tokens principalCache
	// authFails limits unknown-token lookups per client address; nil: off.
	authFails *failLimiter
	// secretGens counts secret changes per environment, so that reload
	// re-resolves exactly the environments whose secrets changed.
	secretGens secretGens
	hub        *hub
	metrics    *metrics
	// uploads answers identical re-uploads of a release (releases.go).
	uploads uploadMemo
	// lastReleased is the last release replaced everywhere, kept loaded
	// (guarded by reloadMu); trim returns memory after large work (cache.go).
	lastReleased *loadedRelease
	trim         memTrim

	// stopping is closed when the server shuts down, ending SSE streams so
	// that draining in-flight requests can finish.
	stopping chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	notReady atomic.Bool  // set during shutdown
	ui       http.Handler // the web UI, mounted outside the API's paths (ui.go)
}

// New connects a server to its store: it creates the bootstrap admin token
// on first start, loads every environment's current release into memory and
// follows the store's change events until ctx ends or Close is called.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("server: a store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateBurst <= 0 {
		o.RateBurst = max(1, int(2*o.RateLimit))
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return nil, errors.New("server: TLS needs both a certificate and a key file")
	}
	if o.App == nil {
		a, err := app.New(app.Options{Store: o.Store, Vault: o.Vault, Logger: o.Logger, Clock: o.Clock, Rand: o.Rand, Audit: o.Audit, AgeIdentities: o.AgeIdentities})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		o.App = a
	}
	s := &Server{
		st:       o.Store,
		app:      o.App,
		log:      o.Logger,
		opts:     o,
		mux:      http.NewServeMux(),
		hub:      newHub(),
		metrics:  newMetrics(),
		stopping: make(chan struct{}),
	}
	s.tokens.init()
	s.hub.trim = s.trim.soon
	if o.AuthFailLimit == 0 {
		o.AuthFailLimit = DefaultAuthFailLimit
	}
	if o.AuthFailBurst <= 0 {
		o.AuthFailBurst = DefaultAuthFailBurst
	}
	if o.AuthFailLimit > 0 {
		s.authFails = &failLimiter{limit: rate.Limit(o.AuthFailLimit), burst: o.AuthFailBurst, m: map[string]*rate.Limiter{}}
	}
	s.opts = o
	s.snap.Store(emptySnapshot())
	s.registerRoutes()

	if err := s.app.MigrateAudit(ctx); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	// A wrong master key stops the start, rather than every secret read.
	if err := s.app.VerifyMasterKey(ctx); err != nil {
		return nil, fmt.Errorf("server: master key: %w", err)
	}
	s.app.OnCommit(s.committed)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	// Subscribe before the first load, so no change falls between them.
	events, err := s.st.Subscribe(bg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("server: subscribe to store events: %w", err)
	}
	if err := s.reload(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("server: load environments: %w", err)
	}
	s.bg.Add(5)
	go func() {
		defer s.bg.Done()
		s.watchStreams(bg)
	}()
	go func() {
		defer s.bg.Done()
		s.app.RunPromotions(bg, s.opts.PromotionInterval)
	}()
	go func() {
		defer s.bg.Done()
		s.follow(bg, events)
	}()
	go func() {
		defer s.bg.Done()
		s.app.RunCheckpoints(bg)
	}()
	go func() {
		defer s.bg.Done()
		s.flushReveals(bg)
	}()
	context.AfterFunc(ctx, s.stopStreams)
	return s, nil
}

// Close ends SSE streams, stops following store events and records the
// SDK reveals summed so far. It does not close the store. Serve calls it
// once in-flight requests have drained, so their reveals are counted.
func (s *Server) Close() error {
	s.stopStreams()
	s.bg.Wait()
	if err := s.app.FlushReveals(context.Background(), true); err != nil {
		s.log.Error("audit: SDK reveals could not be recorded at shutdown", "err", err)
	}
	return nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler() }

// Run listens on addr and serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends. Shutting down stops accepting
// connections, ends SSE streams, drains in-flight requests for up to
// ShutdownTimeout and then closes what is left.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a 32 MiB upload on a slow link
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// No WriteTimeout: it would cut SSE streams; those set per-write deadlines.
	hs.RegisterOnShutdown(s.stopStreams)
	tlsOn := s.opts.TLSCertFile != ""
	if tlsOn {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if tlsOn {
			err = hs.ServeTLS(ln, s.opts.TLSCertFile, s.opts.TLSKeyFile)
		} else {
			err = hs.Serve(ln)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	s.notReady.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown: closing connections that did not drain in time", "err", err)
		_ = hs.Close()
	}
	<-done
	_ = s.Close()
	return nil
}

// stopStreams ends every SSE stream and stops following store events;
// called when shutdown begins.
func (s *Server) stopStreams() {
	s.stopOnce.Do(func() {
		s.notReady.Store(true)
		close(s.stopping)
		s.hub.stop()
		if s.cancel != nil {
			s.cancel()
		}
	})
}

// bootstrap creates the first admin token when the store holds none.
func (s *Server) bootstrap(ctx context.Context) error {
	token, created, err := s.app.Bootstrap(ctx, s.opts.BootstrapToken)
	if errs.Is(err, errs.Invalid) {
		return fmt.Errorf("server: ENVPLANE_BOOTSTRAP_TOKEN: %w", err)
	}
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if created && s.opts.BootstrapToken == "" {
		// The only time this token is ever shown.
		fmt.Fprintf(s.opts.Stderr, "envplane: bootstrap admin token: %s\n", token)
	}
	if created {
		s.log.Info("bootstrap admin token created", "generated", s.opts.BootstrapToken == "")
	}
	return nil
}

// flushReveals writes SDK keys' summed config reveals to the audit log once
// a minute; Close records what is left.
func (s *Server) flushReveals(ctx context.Context) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := s.app.FlushReveals(ctx, false); err != nil {
				s.log.Warn("audit: SDK reveals not recorded yet; will retry", "err", err)
			}
		}
	}
}
