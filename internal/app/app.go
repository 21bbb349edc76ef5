// Package app is envplane's application layer: the use cases — releases,
// environments, secrets, tokens, the audit log and reveals — each one store
// transaction together with its audit entry, authorized by its effect on
// environments, not only by the route that asked. The HTTP API, the CLI's
// offline admin commands and the coming web UI are thin adapters over it;
// they never write to the store or the audit log themselves.
package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/vault"
)

// Options configure an App. Only Store is required.
type Options struct {
	Store  store.Store
	Vault  *vault.Vault     // nil: server-side secrets are off
	Logger *slog.Logger     // nil: discarded
	Clock  func() time.Time // nil: time.Now
	Rand   io.Reader        // token and ID randomness; nil: crypto/rand
	// RevealWindow is how long SDK keys' config reveals are summed up
	// before one audit entry records them (0: a minute).
	RevealWindow time.Duration
	Audit        AuditOptions
	// HTTPClient makes HTTP checks and webhook deliveries (nil: one with
	// the check's timeout). RetryDelay is the first backoff between their
	// attempts (0: a second), doubling.
	HTTPClient *http.Client
	RetryDelay time.Duration
	// AgeIdentities are the server's own age identities: the workspace
	// secrets files of releases that list one of their recipients are
	// opened with them (DESIGN §8). nil: such files are skipped.
	AgeIdentities []age.Identity
}

// AuditOptions configure the audit log.
type AuditOptions struct {
	// Chain signs and verifies the log. nil: the chain keyed by Vault's
	// master key. One of the two is required: an unkeyed chain proves
	// nothing (tests pass a chain with a fixed test key).
	Chain *audit.Chain
	// Checkpoints configure the signed checkpoints of the log's head (file,
	// frequency); the zero value logs them only.
	Checkpoints audit.CheckpointOptions
}

// App runs the use cases against one store.
type App struct {
	st     store.Store
	vault  *vault.Vault
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader
	window time.Duration
	chain  *audit.Chain
	// checkpoints anchor the log's head; verify honours the latest.
	checkpoints *audit.Checkpointer

	// committed is told of the events of every transaction this App
	// commits, so its own replica can apply them before answering.
	committed atomic.Pointer[func(context.Context, []domain.Event)]
	// uploaded is the release most recently validated by an upload, so
	// that making it current does not load it a second time.
	uploaded atomic.Pointer[compiledRelease]

	reveals revealTally
	promos  promotions
	http    *http.Client
	retry   time.Duration
	// validating bounds the uploads validated at once (CPU work of up to
	// release.ValidationBudget each) to the cores there are.
	validating chan struct{}
	// ids are the server's age identities (Options.AgeIdentities).
	ids []age.Identity
}

type compiledRelease struct {
	id  string
	c   *config.Compiled
	sec *release.Secrets
}

// New returns an App over o.Store.
func New(o Options) (*App, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("app: a store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.RevealWindow <= 0 {
		o.RevealWindow = time.Minute
	}
	chain := o.Audit.Chain
	if chain == nil && o.Vault != nil {
		var err error
		if chain, err = o.Vault.AuditChain(); err != nil {
			return nil, fmt.Errorf("audit chain: %w", err)
		}
	}
	if chain == nil {
		return nil, fmt.Errorf("an audit chain key is required: give the server a master key")
	}
	if o.Audit.Checkpoints.Clock == nil {
		o.Audit.Checkpoints.Clock = o.Clock
	}
	checkpoints, err := audit.NewCheckpointer(chain, o.Store, o.Logger, o.Audit.Checkpoints)
	if err != nil {
		return nil, err
	}
	a := &App{st: o.Store, vault: o.Vault, log: o.Logger, now: o.Clock, rand: o.Rand, window: o.RevealWindow,
		chain: chain, checkpoints: checkpoints, validating: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
	a.reveals.init()
	a.ids = o.AgeIdentities
	a.http, a.retry = o.HTTPClient, o.RetryDelay
	if a.http == nil {
		a.http = &http.Client{}
	}
	if a.retry <= 0 {
		a.retry = time.Second
	}
	a.promos.kick = make(chan struct{}, 1)
	if a.promos.replica, err = a.newID("replica-"); err != nil {
		return nil, err
	}
	return a, nil
}

// OnCommit sets what learns of the events of each committed transaction
// (the server's snapshot); other replicas learn of them through the store.
func (a *App) OnCommit(fn func(context.Context, []domain.Event)) { a.committed.Store(&fn) }

// SecretsOn reports whether server-side secrets are available.
func (a *App) SecretsOn() bool { return a.vault != nil }

// txn is one write transaction of a use case: store writes, their audit
// entries and the events they cause.
type txn struct {
	store.Tx
	ctx    context.Context
	chain  *audit.Chain
	at     time.Time
	events []domain.Event
	// after runs once the transaction committed (webhook deliveries).
	after []func()
}

// record appends an audit entry inside the transaction.
func (t *txn) record(actor string, action domain.AuditAction, target string, details any) error {
	_, err := t.chain.Append(t.ctx, t.Tx, t.at, audit.Record{Actor: actor, Action: string(action), Target: target, Details: details})
	return err
}

// notify queues an event, delivered after commit.
func (t *txn) notify(ev domain.Event) {
	t.Tx.Notify(ev)
	t.events = append(t.events, ev)
}

// write runs fn in one store transaction and tells OnCommit's function of
// its events once it committed.
func (a *App) write(ctx context.Context, fn func(ctx context.Context, t *txn) error) error {
	var events []domain.Event
	var after []func()
	err := a.st.WithTx(ctx, func(tx store.Tx) error {
		t := &txn{Tx: tx, ctx: ctx, chain: a.chain, at: a.now().UTC().Truncate(time.Microsecond)}
		if err := fn(ctx, t); err != nil {
			return err
		}
		events, after = t.events, t.after
		return nil
	})
	if err != nil {
		return err
	}
	for _, fn := range after {
		fn()
	}
	if fn := a.committed.Load(); fn != nil && len(events) > 0 {
		(*fn)(context.WithoutCancel(ctx), events)
	}
	return nil
}

// newID returns prefix plus 16 random hex digits.
func (a *App) newID(prefix string) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(a.rand, b[:]); err != nil {
		return "", errs.Wrap(errs.Internal, err, "random id")
	}
	return fmt.Sprintf("%s%x", prefix, b), nil
}
