package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/lint"
	"github.com/envplane/envplane/internal/promote"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/resolve"
)

// runnerActor names the server in the audit log when the runner acts.
const runnerActor = "envplane (promotion runner)"

// maxOpenScanned bounds the open promotions one runner pass looks at.
const maxOpenScanned = 500

// RunPromotions advances promotions until ctx ends: every interval, and
// whenever a write Kicks it. Each step is its own serialized transaction
// that re-reads the promotion, and server-side checks are leased, so with
// several replicas every step happens once.
func (a *App) RunPromotions(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		next, err := a.stepPromotions(ctx)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("promotions: runner pass failed; will retry", "err", err)
		}
		// Wake at the next interval, or sooner when a wait timer or a
		// freeze ends before it.
		wait := every
		if !next.IsZero() {
			wait = min(every, max(next.Sub(a.now()), 10*time.Millisecond))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			a.promos.hooks.Wait()
			return
		case <-timer.C:
		case <-a.promos.kick:
		}
	}
}

// StepPromotions is one runner pass: run the server-side checks that are
// due (leased, so one replica runs each), then advance every open
// promotion whose timer or freeze may have ended.
func (a *App) StepPromotions(ctx context.Context) error {
	_, err := a.stepPromotions(ctx)
	return err
}

// stepPromotions is StepPromotions, also saying when the earliest wait
// timer or freeze of an approved promotion ends (zero: none).
func (a *App) stepPromotions(ctx context.Context) (next time.Time, _ error) {
	open, err := a.st.ListPromotions(ctx, domain.PromotionFilter{OpenOnly: true, Limit: maxOpenScanned})
	if err != nil {
		return next, err
	}
	due := func(t time.Time) {
		if t.After(a.now()) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	var first error
	keep := func(err error) {
		if err != nil && first == nil && !errs.Is(err, errs.Conflict) {
			first = err
		}
	}
	for _, pr := range open {
		if ctx.Err() != nil {
			return next, ctx.Err()
		}
		if pr.State == domain.PromotionChecking {
			for _, c := range pr.Checks {
				if serverSide(c.Type) && (c.Status == domain.CheckPending || (c.Status == domain.CheckRunning && !a.now().Before(c.LeaseUntil))) {
					keep(a.runCheck(ctx, pr.ID, c.Name))
				}
			}
		}
		if pr.State == domain.PromotionApproved {
			keep(a.advance(ctx, pr))
			due(pr.WaitUntil)
			if f, err := promote.FrozenAt(pr.Gates.Freeze, a.now()); err == nil && f != nil {
				due(f.Until)
			}
		}
	}
	return next, first
}

func serverSide(typ string) bool {
	return typ == domain.CheckPolicy || typ == domain.CheckReferences || typ == domain.CheckHTTP
}

// advance re-reads pr in a transaction and steps it (timers, freezes).
func (a *App) advance(ctx context.Context, cur domain.Promotion) error {
	if f, err := promote.FrozenAt(cur.Gates.Freeze, a.now()); err == nil && (f != nil || a.now().Before(cur.WaitUntil)) {
		return nil // nothing to do yet: no transaction
	}
	def, err := a.definitionIn(ctx, cur.Release, cur.Environment)
	if err != nil {
		return a.failOpen(ctx, cur.ID, "the release no longer defines the environment: "+msgOf(err))
	}
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		pr, err := t.GetPromotion(ctx, cur.ID)
		if err != nil || pr.State != domain.PromotionApproved {
			return err
		}
		return a.step(ctx, t, &pr, runnerActor, def)
	})
}

// failOpen ends an open promotion as failed.
func (a *App) failOpen(ctx context.Context, id, reason string) error {
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		pr, err := t.GetPromotion(ctx, id)
		if err != nil || !pr.State.Open() {
			return err
		}
		promote.Fail(&pr, reason, t.at)
		if err := t.UpdatePromotion(ctx, pr); err != nil {
			return err
		}
		if err := t.record(runnerActor, domain.ActionPromotionFail, pr.ID, map[string]any{"environment": pr.Environment, "release": pr.Release, "reason": reason}); err != nil {
			return err
		}
		a.notifyPromotion(t, pr, "promotion.failed")
		return nil
	})
}

// runCheck leases check name of promotion id, runs it outside any
// transaction and records its result (if the lease is still this
// replica's), advancing the promotion.
func (a *App) runCheck(ctx context.Context, id, name string) error {
	var leased domain.Promotion
	var check domain.CheckStatus
	err := a.write(ctx, func(ctx context.Context, t *txn) error {
		pr, err := t.GetPromotion(ctx, id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(pr.Checks, func(c domain.CheckStatus) bool { return c.Name == name })
		if pr.State != domain.PromotionChecking || i < 0 {
			return nil
		}
		c := &pr.Checks[i]
		if c.Status != domain.CheckPending && !(c.Status == domain.CheckRunning && !t.at.Before(c.LeaseUntil)) {
			return nil // another replica has it, or it is decided
		}
		c.Status, c.LeaseOwner, c.LeaseUntil = domain.CheckRunning, a.promos.replica, t.at.Add(checkLease)
		c.Attempts++
		if err := t.UpdatePromotion(ctx, pr); err != nil {
			return err
		}
		leased, check = pr, *c
		return nil
	})
	if err != nil || leased.ID == "" {
		return err
	}
	var def *domain.GateCheck
	for i := range leased.Gates.Checks {
		if leased.Gates.Checks[i].Name == name {
			def = &leased.Gates.Checks[i]
		}
	}
	status, message := domain.CheckFailed, "the check is not in the promotion's gates"
	if def != nil {
		status, message = a.check(ctx, leased, *def)
	}
	envDef, defErr := a.definitionIn(ctx, leased.Release, leased.Environment)
	return a.write(ctx, func(ctx context.Context, t *txn) error {
		pr, err := t.GetPromotion(ctx, id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(pr.Checks, func(c domain.CheckStatus) bool { return c.Name == name })
		if i < 0 || pr.State != domain.PromotionChecking || pr.Checks[i].Status != domain.CheckRunning || pr.Checks[i].LeaseOwner != a.promos.replica ||
			!pr.Checks[i].LeaseUntil.Equal(check.LeaseUntil) {
			return nil // the lease ran out and another replica took it over
		}
		c := &pr.Checks[i]
		c.Status, c.Message, c.LeaseOwner, c.LeaseUntil, c.By = status, message, "", time.Time{}, runnerActor
		if def != nil && def.Type == domain.CheckHTTP {
			c.URL = def.URL
		}
		pr.UpdatedAt = t.at
		if err := t.record(runnerActor, domain.ActionPromotionCheck, pr.ID, map[string]any{"environment": pr.Environment, "release": pr.Release,
			"check": name, "status": status, "message": message}); err != nil {
			return err
		}
		a.notifyPromotion(t, pr, "")
		if defErr != nil {
			promote.Fail(&pr, "the release no longer defines the environment: "+msgOf(defErr), t.at)
			if err := t.UpdatePromotion(ctx, pr); err != nil {
				return err
			}
			a.notifyPromotion(t, pr, "promotion.failed")
			return nil
		}
		return a.step(ctx, t, &pr, runnerActor, envDef)
	})
}

// maxCheckMessage bounds what a check says about itself.
const maxCheckMessage = 1000

// check runs one server-side check: policy (lint of the release resolved
// for the target with its server-side secrets), references (every ${…}
// resolves in the target), http (the URL answers the expected status).
func (a *App) check(ctx context.Context, pr domain.Promotion, c domain.GateCheck) (status, message string) {
	status, message = a.runOne(ctx, pr, c)
	if len(message) > maxCheckMessage {
		message = message[:maxCheckMessage] + "…"
	}
	return status, message
}

func (a *App) runOne(ctx context.Context, pr domain.Promotion, c domain.GateCheck) (string, string) {
	if c.Type == domain.CheckHTTP {
		return a.httpCheck(ctx, c)
	}
	lr, err := a.LoadRelease(ctx, pr.Release)
	if err != nil {
		return domain.CheckFailed, "the release does not load: " + msgOf(err)
	}
	comp := lr.Compiled
	// The target's secrets as the server resolves them: the release's
	// workspace secrets file (when the server's identity opens it), then
	// the server-side secrets.
	fileSecrets := lr.Secrets.For(pr.Environment)
	if err := ReleaseSecretsError(pr.Release, pr.Environment, fileSecrets); err != nil {
		msg := msgOf(err)
		for _, f := range fileSecrets.Fields() {
			msg += "; " + f.Message
		}
		return domain.CheckFailed, msg
	}
	serverSecrets, err := a.SecretValues(ctx, pr.Environment)
	if err != nil {
		return domain.CheckFailed, "the target's secrets cannot be read: " + msgOf(err)
	}
	secrets := release.Merge(fileSecrets.Values, serverSecrets)
	var problems []string
	switch c.Type {
	case domain.CheckPolicy:
		findings := lint.Run(comp.Resolver, comp.Policies, lint.Options{Environments: []string{pr.Environment},
			Secrets: func(env string) map[string]domain.Secret {
				if env == pr.Environment {
					return secrets
				}
				return nil
			}})
		for _, f := range findings {
			if f.Severity == lint.SeverityError && f.Rule != resolve.RuleUnresolved {
				problems = append(problems, fmt.Sprintf("%s: %s (%s)", f.Rule, f.Message, f.Source))
			}
		}
	case domain.CheckReferences:
		for _, svc := range append([]string{""}, comp.Workspace.Services...) {
			res := comp.Resolver.Resolve(resolve.Request{Env: pr.Environment, Service: svc, Secrets: secrets})
			for _, p := range res.Problems {
				if p.Rule == resolve.RuleUnresolved {
					problems = append(problems, p.Error())
				}
			}
		}
		slices.Sort(problems)
		problems = slices.Compact(problems)
	default:
		return domain.CheckFailed, "unknown check type " + c.Type
	}
	if len(problems) > 0 {
		msg := fmt.Sprintf("%d problem(s): %s", len(problems), strings.Join(problems, "; "))
		if fileSecrets.Skipped && c.Type == domain.CheckReferences {
			msg = SkippedSecretsHint(fileSecrets) + "; " + msg
		}
		return domain.CheckFailed, msg
	}
	return domain.CheckPassed, ""
}

// httpAttempts bounds the attempts of an HTTP check or a webhook delivery.
const httpAttempts = 4

// httpCheck GETs the check's URL until it answers the expected status, at
// most httpAttempts times with doubling backoff.
func (a *App) httpCheck(ctx context.Context, c domain.GateCheck) (string, string) {
	want := c.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	var last string
	delay := a.retry
	for i := range httpAttempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return domain.CheckFailed, ctx.Err().Error()
			case <-time.After(delay):
			}
			delay *= 2
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		req, err := http.NewRequestWithContext(actx, http.MethodGet, c.URL, nil)
		if err != nil {
			cancel()
			return domain.CheckFailed, "bad URL: " + err.Error()
		}
		resp, err := a.http.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == want {
				cancel()
				return domain.CheckPassed, fmt.Sprintf("%s answered %d", c.URL, resp.StatusCode)
			}
			last = fmt.Sprintf("%s answered %d, want %d", c.URL, resp.StatusCode, want)
		} else {
			last = fmt.Sprintf("%s: %v", c.URL, err)
		}
		cancel()
	}
	return domain.CheckFailed, fmt.Sprintf("after %d attempts: %s", httpAttempts, last)
}

// autoPromote opens, in the same transaction, the promotion of release
// into every environment whose promotion block says `from: env, auto:
// true`, and steps it (it applies once its gates pass).
func (a *App) autoPromote(ctx context.Context, t *txn, env, release string) error {
	envs, err := t.ListEnvironments(ctx)
	if err != nil {
		return err
	}
	for _, e := range envs {
		if e.Gates == nil || !e.Gates.Auto || e.Gates.From != env || e.Release == release {
			continue
		}
		def, err := a.definitionIn(ctx, release, e.Name)
		if err != nil {
			a.log.Info("auto-promotion skipped: the release does not define the environment", "environment", e.Name, "release", release)
			continue
		}
		id, err := a.newID("pro_")
		if err != nil {
			return err
		}
		relRow, err := t.GetRelease(ctx, release)
		if err != nil {
			return err
		}
		relRow.Files = nil
		pr := promote.Open(id, relRow, e.Name, *e.Gates, runnerActor, "", false, false, t.at)
		pr.Auto = true
		if err := t.InsertPromotion(ctx, pr); err != nil {
			return err
		}
		if err := t.record(runnerActor, domain.ActionPromotionCreate, pr.ID, map[string]any{"environment": e.Name, "release": release,
			"from": env, "auto": true, "digest": pr.Digest}); err != nil {
			return err
		}
		a.notifyPromotion(t, pr, "promotion.created")
		if err := a.step(ctx, t, &pr, runnerActor, def); err != nil {
			return err
		}
		t.after = append(t.after, a.Kick)
	}
	return nil
}

// queueHooks schedules, after commit, the deliveries of event to the
// webhooks of pr's gates that asked for it.
func (a *App) queueHooks(t *txn, pr domain.Promotion, event string) {
	for _, h := range pr.Gates.Webhooks {
		if len(h.Events) > 0 && !slices.Contains(h.Events, event) {
			continue
		}
		id, err := a.newID("dlv_")
		if err != nil {
			continue
		}
		body, _ := json.Marshal(map[string]any{"event": event, "promotion": pr.ID, "environment": pr.Environment, "release": pr.Release,
			"digest": pr.Digest, "state": pr.State, "from": pr.From, "rollback": pr.Rollback, "requestedBy": pr.RequestedBy, "at": t.at})
		h := h
		a.promos.hooks.Add(1)
		t.after = append(t.after, func() {
			go func() {
				defer a.promos.hooks.Done()
				a.deliver(context.Background(), pr.Environment, h, event, id, body)
			}()
		})
	}
}

// deliver POSTs one webhook body, signed under the environment's secret,
// retrying with doubling backoff; it never blocks a promotion.
func (a *App) deliver(ctx context.Context, env string, h domain.PromotionHook, event, id string, body []byte) {
	secrets, err := a.SecretValues(ctx, env)
	if err != nil {
		a.log.Warn("webhook not sent: the environment's secrets cannot be read", "url", h.URL, "event", event, "err", err)
		return
	}
	s, ok := secrets[h.Secret]
	if !ok {
		a.log.Warn("webhook not sent: its signing secret is not set on the server", "url", h.URL, "secret", h.Secret, "environment", env)
		return
	}
	mac := hmac.New(sha256.New, []byte(s.Value))
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	delay := a.retry
	for i := range httpAttempts {
		if i > 0 {
			time.Sleep(delay)
			delay *= 2
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		req, err := http.NewRequestWithContext(actx, http.MethodPost, h.URL, bytes.NewReader(body))
		if err != nil {
			cancel()
			a.log.Warn("webhook not sent: bad URL", "url", h.URL, "err", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "envplane-webhook")
		req.Header.Set("X-Envplane-Event", event)
		req.Header.Set("X-Envplane-Delivery", id)
		req.Header.Set("X-Envplane-Signature", sig)
		resp, err := a.http.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			cancel()
			if resp.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		cancel()
		a.log.Warn("webhook delivery failed", "url", h.URL, "event", event, "delivery", id, "attempt", i+1, "err", err)
	}
}

// WaitHooks waits for webhook deliveries in flight (tests, shutdown).
func (a *App) WaitHooks() { a.promos.hooks.Wait() }
