package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
)

// scopedScan bounds the entries one scoped listing reads: a scoped admin's
// request costs the same whatever the log holds about other environments.
const scopedScan = 5000

// ListAudit returns entries after seq after, oldest first: every entry for
// an unscoped token, for a scoped one only entries about its environments.
// next is the seq to continue after: a scoped listing reads at most
// scopedScan entries, so it may return fewer than limit before the log ends.
func (a *App) ListAudit(ctx context.Context, p *auth.Principal, after int64, limit int) (entries []domain.AuditEntry, next int64, err error) {
	if err := p.Can(auth.ReadAudit, ""); err != nil {
		return nil, after, err
	}
	if len(p.Environments) == 0 {
		entries, err := a.st.ListAudit(ctx, after, limit)
		if err != nil {
			return nil, after, err
		}
		if len(entries) > 0 {
			after = entries[len(entries)-1].Seq
		}
		return entries, after, nil
	}
	next = after
	for scanned := 0; len(entries) < limit && scanned < scopedScan; {
		page, err := a.st.ListAudit(ctx, next, min(1000, scopedScan-scanned))
		if err != nil {
			return nil, after, err
		}
		for _, e := range page {
			next = e.Seq
			if envs := environmentsOf(e); len(envs) > 0 && coversAll(p, envs) {
				entries = append(entries, e)
				if len(entries) == limit {
					break
				}
			}
		}
		scanned += len(page)
		if len(page) == 0 || len(entries) == limit {
			break
		}
	}
	return entries, next, nil
}

// environmentsOf names the environments an entry is about: its details'
// "environment" and "environments", or the target of a set-release.
func environmentsOf(e domain.AuditEntry) []string {
	var d struct {
		Environment  string   `json:"environment"`
		Environments []string `json:"environments"`
	}
	if json.Unmarshal(e.Details, &d) != nil {
		return nil
	}
	envs := d.Environments
	if d.Environment != "" {
		envs = append(envs, d.Environment)
	}
	if len(envs) == 0 && e.Action == string(domain.ActionSetRelease) {
		envs = append(envs, e.Target)
	}
	return envs
}

// VerifyAudit checks the chain's links and MACs, and the log against the
// latest checkpoint this server knows and, when anchor is "SEQ:HEAD", an
// anchor the caller recorded.
func (a *App) VerifyAudit(ctx context.Context, p *auth.Principal, anchor string) (audit.Result, error) {
	if err := p.Can(auth.ReadAudit, ""); err != nil {
		return audit.Result{}, err
	}
	anchors := a.checkpoints.Anchors()
	if anchor != "" {
		cp, err := audit.ParseCheckpoint(anchor)
		if err != nil {
			return audit.Result{}, errs.Field("checkpoint", "must be SEQ:HEAD: a sequence number and the entry's 64-digit hex hash")
		}
		anchors = append(anchors, cp)
	}
	return a.chain.Verify(ctx, a.st, anchors...)
}

// MigrateAudit re-signs the audit chain under the current key when it is
// still unkeyed (written before the chain was keyed) or partly signed by a
// previous master key. An unkeyed chain is migrated only while no
// checkpoint was ever written: after that, an unkeyed chain was rewritten by
// someone without the key, and re-signing it would launder the rewrite. A
// chain that does not verify is left alone (logged) and reported by verify.
func (a *App) MigrateAudit(ctx context.Context) error {
	n, err := a.chain.Migrate(ctx, a.st, a.checkpoints.LegacyAllowed())
	switch {
	case errs.Is(err, errs.Conflict):
		a.log.Error("audit chain not re-signed under the audit key", "err", err)
	case err != nil:
		return fmt.Errorf("audit chain: %w", err)
	case n > 0:
		a.log.Info("audit chain re-signed under the audit key", "entries", n, "key", a.chain.KeyID())
	}
	return nil
}

// RunCheckpoints signs checkpoints of the log's head until ctx ends.
func (a *App) RunCheckpoints(ctx context.Context) { a.checkpoints.Run(ctx) }

// Reveal is one answer that showed secret or sensitive values.
type Reveal struct {
	Environment string
	Via         string   // config, explain, diff
	Service     string   // "" for the environment's own config
	Keys        []string // what was shown, never its value
}

// RecordReveal audits a reveal before its answer goes out: one entry per
// request, except for SDK keys, whose config reads (an application polling
// its own config) are summed per key and environment and written once per
// window by FlushReveals.
func (a *App) RecordReveal(ctx context.Context, p *auth.Principal, r Reveal) error {
	if len(r.Keys) == 0 {
		return nil // nothing secret was shown
	}
	if p.Role == auth.SDK {
		a.reveals.add(revealKey{actor: p.Actor(), env: r.Environment, via: r.Via, service: r.Service}, a.now())
		return nil
	}
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		details := map[string]any{"environment": r.Environment, "via": r.Via, "keys": r.Keys}
		if r.Service != "" {
			details["service"] = r.Service
		}
		return t.record(p.Actor(), domain.ActionConfigReveal, r.Environment, details)
	})
}

// FlushReveals writes the summed SDK reveals of the closed window (all of
// them when final), one audit entry per key and environment.
func (a *App) FlushReveals(ctx context.Context, final bool) error {
	counts, from := a.reveals.take(a.now(), a.window, final)
	if len(counts) == 0 {
		return nil
	}
	err := a.write(ctx, func(ctx context.Context, t *txn) error {
		for k, n := range counts {
			details := map[string]any{"environment": k.env, "via": k.via, "requests": n, "from": from.UTC(), "to": t.at}
			if k.service != "" {
				details["service"] = k.service
			}
			if err := t.record(k.actor, domain.ActionConfigReveal, k.env, details); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.reveals.putBack(counts, from) // retried with the next window
	}
	return err
}

// revealTally sums SDK reveals until their window closes.
type revealTally struct {
	mu     sync.Mutex
	counts map[revealKey]int
	since  time.Time
}

type revealKey struct{ actor, env, via, service string }

func (r *revealTally) init() { r.counts = map[revealKey]int{} }

func (r *revealTally) add(k revealKey, now time.Time) {
	r.mu.Lock()
	if len(r.counts) == 0 {
		r.since = now
	}
	r.counts[k]++
	r.mu.Unlock()
}

// take returns and clears the counts once the window since the first of
// them has passed (or at once when final).
func (r *revealTally) take(now time.Time, window time.Duration, final bool) (map[revealKey]int, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.counts) == 0 || (!final && now.Sub(r.since) < window) {
		return nil, time.Time{}
	}
	out, since := r.counts, r.since
	r.counts = map[revealKey]int{}
	return out, since
}

func (r *revealTally) putBack(counts map[revealKey]int, since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, n := range counts {
		r.counts[k] += n
	}
	if r.since.IsZero() || since.Before(r.since) {
		r.since = since
	}
}
