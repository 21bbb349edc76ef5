package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserDiffTwoReleases: from an environment's releases to the diff
// of two releases, then the other way round with the diff page's form,
// then revealed by an admin.
func TestBrowserDiffTwoReleases(t *testing.T) {
	ctx := browser(t)
	h := seeded(t)
	rel2 := h.shop2()
	if _, err := h.app.SetRelease(t.Context(), h.sys, "development", rel2); err != nil {
		t.Fatal(err)
	}
	var summary, port string
	var shown bool
	run(t, ctx, signInTasks(h.hs.URL, adminToken),
		chromedp.Navigate(h.hs.URL+"/environments/development"),
		chromedp.WaitVisible(`#history a.release-diff`, chromedp.ByQuery),
		chromedp.Click(`#history a.release-diff`, chromedp.ByQuery),
		chromedp.WaitVisible(`#diff`, chromedp.ByID),
		chromedp.Text(`#diff-summary`, &summary, chromedp.ByID),
		chromedp.Text(`#diff tr[data-key="server.port"]`, &port, chromedp.ByQuery),
		chromedp.Evaluate(`document.body.innerText.includes("`+literal+`") || document.body.innerText.includes("`+literal2+`")`, &shown))
	if !strings.Contains(summary, "2 changes from release "+h.release+" to "+rel2+" in development") || !strings.Contains(port, "8080") || !strings.Contains(port, "9090") || shown {
		t.Fatalf("release diff: %q, port row %q, sensitive shown %v", summary, port, shown)
	}
	screenshot(t, ctx, "release-diff")

	// The form, the other way round; the new page is the one whose
	// summary names the releases (the old one stays visible meanwhile).
	run(t, ctx, chromedp.SetValue(`#ra`, rel2, chromedp.ByID),
		chromedp.SetValue(`#rb`, h.release, chromedp.ByID),
		chromedp.Click(`#diff-releases-submit`, chromedp.ByID),
		chromedp.WaitVisible(`#diff-summary[data-ra="`+rel2+`"]`, chromedp.ByQuery),
		chromedp.Text(`#diff-summary`, &summary, chromedp.ByID))
	if !strings.Contains(summary, "from release "+rel2+" to "+h.release) {
		t.Fatalf("the form's diff: %q", summary)
	}
	run(t, ctx, chromedp.Click(`#diff-reveal button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#revealed`, chromedp.ByID),
		chromedp.Evaluate(`document.body.innerText.includes("`+literal+`")`, &shown))
	if !shown {
		t.Fatal("the reveal does not show the values")
	}
	screenshot(t, ctx, "release-diff-revealed")
}

// TestBrowserEmergencyRollback: production's page, the confirmation step
// (a wrong name refused at the field), then the rollback applied at once.
func TestBrowserEmergencyRollback(t *testing.T) {
	ctx := browser(t)
	h, one, _ := gated(t)
	var problem, state string
	run(t, ctx, signInTasks(h.hs.URL, adminToken),
		chromedp.Navigate(h.hs.URL+"/environments/production"),
		chromedp.WaitVisible(`#emergency-link`, chromedp.ByID),
		chromedp.Click(`#emergency-link`, chromedp.ByID),
		chromedp.WaitVisible(`#emergency-form`, chromedp.ByID),
		chromedp.SendKeys(`#confirm`, "prod", chromedp.ByID),
		chromedp.Click(`#emergency-submit`, chromedp.ByID),
		chromedp.WaitVisible(`#confirm-error`, chromedp.ByID),
		chromedp.Text(`#confirm-error`, &problem, chromedp.ByID))
	if !strings.Contains(problem, "type production") {
		t.Fatalf("wrong confirmation: %q", problem)
	}
	screenshot(t, ctx, "emergency-confirm")
	run(t, ctx, chromedp.SendKeys(`#confirm`, "production", chromedp.ByID),
		chromedp.Click(`#emergency-submit`, chromedp.ByID),
		chromedp.WaitVisible(`section.promotion, #recent`, chromedp.ByQuery))
	h.waitRelease("production", one)
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/environments/production"),
		chromedp.WaitVisible(`#release`, chromedp.ByID),
		chromedp.Text(`#release`, &state, chromedp.ByID))
	if !strings.Contains(state, one) {
		t.Fatalf("production's release after the rollback: %q", state)
	}
	screenshot(t, ctx, "emergency-applied")
}

// TestBrowserEditTargetingChangesEvaluation: a refused rule shown at its
// field, a rule saved and the OFREP answer following it, the override
// removed and the answer back.
func TestBrowserEditTargetingChangesEvaluation(t *testing.T) {
	ctx := browser(t)
	h := flagged(t)
	editor := h.token("ed", "editor", []string{"development"})
	var variant, reason, problem string
	evaluate := chromedp.Tasks{
		chromedp.WaitVisible(`#eval-submit`, chromedp.ByID),
		chromedp.SetValue(`#eval-key`, "banner", chromedp.ByID),
		chromedp.SetValue(`#eval-context`, `{"targetingKey":"u1","plan":"pro"}`, chromedp.ByID),
		chromedp.Click(`#eval-submit`, chromedp.ByID),
		chromedp.WaitVisible(`#evaluation`, chromedp.ByID),
		chromedp.Text(`#eval-variant`, &variant, chromedp.ByID),
		chromedp.Text(`#eval-reason`, &reason, chromedp.ByID),
	}
	edit := func(rule string) chromedp.Tasks {
		return chromedp.Tasks{
			chromedp.WaitVisible(`#flag-banner details.targeting summary`, chromedp.ByQuery),
			chromedp.Click(`#flag-banner details.targeting summary`, chromedp.ByQuery),
			chromedp.WaitVisible(`#targeting-banner`, chromedp.ByID),
			chromedp.SetValue(`#targeting-banner`, rule, chromedp.ByID),
			chromedp.Click(`#flag-banner .targeting-form button`, chromedp.ByQuery),
		}
	}
	run(t, ctx, signInTasks(h.hs.URL, editor),
		chromedp.Navigate(h.hs.URL+"/environments/development/flags"), evaluate)
	if variant != "plain" || reason != "STATIC" {
		t.Fatalf("before: %q %q", variant, reason)
	}
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/environments/development/flags"),
		edit(`{"nope": [1]}`),
		chromedp.WaitVisible(`#targeting-banner-error`, chromedp.ByID),
		chromedp.Text(`#targeting-banner-error`, &problem, chromedp.ByID))
	if !strings.Contains(problem, "nope") {
		t.Fatalf("the refused rule's problem: %q", problem)
	}
	screenshot(t, ctx, "targeting-refused")
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/environments/development/flags"),
		edit(`{"if": [{"==": [{"var": "plan"}, "pro"]}, "loud", null]}`),
		chromedp.WaitVisible(`#flag-banner form[action$="/clear"]`, chromedp.ByQuery),
		evaluate)
	if variant != "loud" || reason != "TARGETING_MATCH" {
		t.Fatalf("after the rule: %q %q", variant, reason)
	}
	screenshot(t, ctx, "targeting-saved")
	run(t, ctx, chromedp.Click(`#flag-banner form[action$="/clear"] button`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`#flag-banner form[action$="/clear"]`, chromedp.ByQuery),
		evaluate)
	if variant != "plain" || reason != "STATIC" {
		t.Fatalf("after removing the override: %q %q", variant, reason)
	}
	screenshot(t, ctx, "targeting-removed")
}

// TestBrowserSessionOnSecondReplica: signed in on one replica, the same
// browser is signed in on the other (one PostgreSQL); signing out there
// signs it out of both.
func TestBrowserSessionOnSecondReplica(t *testing.T) {
	a, b := replicas(t)
	ctx := browser(t)
	a.release = a.upload(shop("8080"), nil)
	if _, err := a.app.SetRelease(t.Context(), a.sys, "development", a.release); err != nil {
		t.Fatal(err)
	}
	b.waitRelease("development", a.release)
	var who string
	run(t, ctx, signInTasks(a.hs.URL, adminToken),
		chromedp.Navigate(b.hs.URL+"/matrix"),
		chromedp.WaitVisible(`#matrix`, chromedp.ByID),
		chromedp.Text(`header .who`, &who, chromedp.ByQuery))
	if !strings.Contains(who, "bootstrap") {
		t.Fatalf("replica b's header: %q", who)
	}
	screenshot(t, ctx, "second-replica")
	run(t, ctx, chromedp.Click(`header .who form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Navigate(a.hs.URL+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByID))
	screenshot(t, ctx, "signed-out-of-both")
}
