package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envplane/envplane/internal/auth"
)

// TestBrowserFlagChangeRequest: in restricted production an editor's toggle
// opens a change request and the flag's OFREP answer stays; an approver
// from one group approves it in the browser, one from the other group
// approves it too, and the first's open page follows live to applied; the
// OFREP answer changes. One browser, two sign-ins (the machine may be
// loaded: every extra Chromium costs seconds).
func TestBrowserFlagChangeRequest(t *testing.T) {
	ctx := browser(t)
	h := flaggedProduction(t)
	editor := h.token("ed", "editor", []string{"production"})
	ana := h.token("ana", "approver", nil, "devops")
	evaluate := chromedp.Tasks{
		chromedp.WaitVisible(`#eval-submit`, chromedp.ByID),
		chromedp.SetValue(`#eval-key`, "banner", chromedp.ByID),
		chromedp.SetValue(`#eval-context`, `{"targetingKey":"u1"}`, chromedp.ByID),
		chromedp.Click(`#eval-submit`, chromedp.ByID),
		chromedp.WaitVisible(`#evaluation`, chromedp.ByID),
	}
	var note, approvals, reason, id string
	var ok bool
	run(t, ctx, signInTasks(h.hs.URL, editor),
		chromedp.Navigate(h.hs.URL+"/environments/production/flags"),
		chromedp.Text(`#restricted-note`, &note, chromedp.ByID),
		chromedp.Click(`#flag-banner button[name="state"][value="DISABLED"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#changes .change`, chromedp.ByQuery),
		chromedp.Text(`#changes .change .approvals`, &approvals, chromedp.ByQuery),
		chromedp.AttributeValue(`#changes .change`, "id", &id, &ok, chromedp.ByQuery))
	if !strings.Contains(note, "restricted") || !strings.Contains(approvals, "0 of 2") || !ok {
		t.Fatalf("after the toggle: note %q, approvals %q", note, approvals)
	}
	screenshot(t, ctx, "change-requested")
	run(t, ctx, evaluate, chromedp.Text(`#eval-reason`, &reason, chromedp.ByID))
	if reason != "STATIC" {
		t.Fatalf("the change applied before its approvals: %q", reason)
	}

	run(t, ctx, chromedp.Click(`form[action="/logout"] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		signInTasks(h.hs.URL, ana),
		chromedp.Navigate(h.hs.URL+"/environments/production/flags"),
		chromedp.WaitVisible(`#changes form[action$="/approve"] button`, chromedp.ByQuery),
		chromedp.Click(`#changes form[action$="/approve"] button`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`#changes form[action$="/approve"] button`, chromedp.ByQuery),
		chromedp.Text(`#changes .change .approvals`, &approvals, chromedp.ByQuery))
	if !strings.Contains(approvals, "1 of 2") {
		t.Fatalf("after ana: %q", approvals)
	}
	screenshot(t, ctx, "change-approved-once")

	ben := &auth.Principal{TokenID: "tok_ben", Name: "ben", Role: auth.Approver, Groups: []string{"seniors"}}
	if _, err := h.app.ApproveFlagChange(context.Background(), ben, "production", id); err != nil {
		t.Fatal(err)
	}
	// Ana's open page follows the server's events.
	var state string
	run(t, ctx, chromedp.WaitVisible(`#recent-changes tr[id="`+id+`"]`, chromedp.ByQuery),
		chromedp.Text(`#recent-changes tr[id="`+id+`"] .state`, &state, chromedp.ByQuery))
	if !strings.HasPrefix(state, "applied") {
		t.Fatalf("state %q", state)
	}
	screenshot(t, ctx, "change-applied-live")
	run(t, ctx, evaluate, chromedp.Text(`#eval-reason`, &reason, chromedp.ByID))
	if reason != "DISABLED" {
		t.Fatalf("after the apply: %q", reason)
	}
}
