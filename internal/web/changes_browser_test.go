package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserFlagChangeRequest: in restricted production an editor's toggle
// opens a change request and the flag's OFREP answer stays; two approvers
// from the groups approve it in their own browsers; the editor's open page
// follows live, and the OFREP answer changes.
func TestBrowserFlagChangeRequest(t *testing.T) {
	ctx := browser(t)
	h := flaggedProduction(t)
	editor := h.token("ed", "editor", []string{"production"})
	ana := h.token("ana", "approver", nil, "devops")
	ben := h.token("ben", "approver", nil, "seniors")
	evaluate := chromedp.Tasks{
		chromedp.WaitVisible(`#eval-submit`, chromedp.ByID),
		chromedp.SetValue(`#eval-key`, "banner", chromedp.ByID),
		chromedp.SetValue(`#eval-context`, `{"targetingKey":"u1"}`, chromedp.ByID),
		chromedp.Click(`#eval-submit`, chromedp.ByID),
		chromedp.WaitVisible(`#evaluation`, chromedp.ByID),
	}
	var note, approvals, reason string
	run(t, ctx, signInTasks(h.hs.URL, editor),
		chromedp.Navigate(h.hs.URL+"/environments/production/flags"),
		chromedp.Text(`#restricted-note`, &note, chromedp.ByID),
		chromedp.Click(`#flag-banner button[name="state"][value="DISABLED"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#changes .change`, chromedp.ByQuery),
		chromedp.Text(`#changes .change .approvals`, &approvals, chromedp.ByQuery))
	if !strings.Contains(note, "restricted") || !strings.Contains(approvals, "0 of 2") {
		t.Fatalf("after the toggle: note %q, approvals %q", note, approvals)
	}
	screenshot(t, ctx, "change-requested")
	run(t, ctx, evaluate, chromedp.Text(`#eval-reason`, &reason, chromedp.ByID))
	if reason != "STATIC" {
		t.Fatalf("the change applied before its approvals: %q", reason)
	}
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/environments/production/flags"), chromedp.WaitVisible(`#changes .change`, chromedp.ByQuery))

	for i, tok := range []string{ana, ben} {
		actx := browser(t)
		run(t, actx, signInTasks(h.hs.URL, tok),
			chromedp.Navigate(h.hs.URL+"/environments/production/flags"),
			chromedp.WaitVisible(`#changes form[action$="/approve"] button`, chromedp.ByQuery),
			chromedp.Click(`#changes form[action$="/approve"] button`, chromedp.ByQuery),
			chromedp.WaitVisible(`#changes`, chromedp.ByID))
		if i == 0 {
			run(t, actx, chromedp.Text(`#changes .change .approvals`, &approvals, chromedp.ByQuery))
			if !strings.Contains(approvals, "1 of 2") {
				t.Fatalf("after ana: %q", approvals)
			}
			screenshot(t, actx, "change-approved-once")
		}
	}
	// The editor's open page follows the server's events.
	var state string
	run(t, ctx, chromedp.WaitVisible(`#recent-changes tr`, chromedp.ByQuery),
		chromedp.Text(`#recent-changes tr .state`, &state, chromedp.ByQuery))
	if !strings.HasPrefix(state, "applied") {
		t.Fatalf("state %q", state)
	}
	screenshot(t, ctx, "change-applied-live")
	run(t, ctx, evaluate, chromedp.Text(`#eval-reason`, &reason, chromedp.ByID))
	if reason != "DISABLED" {
		t.Fatalf("after the apply: %q", reason)
	}
}
