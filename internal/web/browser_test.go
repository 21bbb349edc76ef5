package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the browser, or skips the test saying why.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ENVPLANE_TEST_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("no Chromium found (install chromium or set ENVPLANE_TEST_CHROMIUM): skipping the browser test")
	return ""
}

// browser starts a headless Chromium with a fresh profile; every action
// of the test is bounded by one deadline.
func browser(t *testing.T) context.Context {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still be writing the
	// profile for a moment after the browser is gone, which would fail the
	// test's cleanup. Removed last (cleanups run in reverse), with retries.
	profile, err := os.MkdirTemp("", "envplane-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	// Generous: on a shared machine at a load of dozens per core a page
	// takes seconds; a test that hangs still ends.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Run(bctx); err != nil {
		t.Skipf("Chromium does not start here (%v): skipping the browser test", err)
	}
	return bctx
}

// screenshot saves the page under t.TempDir(), or kept under
// $ENVPLANE_TEST_SCREENSHOTS/<test> when that is set, and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := t.TempDir()
	if keep := os.Getenv("ENVPLANE_TEST_SCREENSHOTS"); keep != "" {
		dir = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func signInTasks(base, token string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(base + "/"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.SendKeys(`#token`, token, chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`section.env`, chromedp.ByQuery),
	}
}

func run(t *testing.T, ctx context.Context, tasks ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, tasks...); err != nil {
		t.Errorf("browser: %v", err) // before the screenshot, which may fail too
		screenshot(t, ctx, "failure")
		t.FailNow()
	}
}

func TestBrowserProvenanceMatrixAndDiff(t *testing.T) {
	ctx := browser(t)
	h := seeded(t)
	var overview, source, chain, diffSummary string
	var rows int
	run(t, ctx, signInTasks(h.hs.URL, adminToken),
		chromedp.Text(`main`, &overview, chromedp.ByQuery))
	if !strings.Contains(overview, "staging") || !strings.Contains(overview, "differ from") {
		t.Fatalf("overview: %s", overview)
	}
	screenshot(t, ctx, "overview")

	// The matrix: a value's source on hover, its chain one click away.
	var title string
	var ok bool
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/matrix"),
		chromedp.WaitVisible(`#matrix`, chromedp.ByID),
		chromedp.AttributeValue(`tr[data-key="logging.level"] td[data-env="staging"] a`, "title", &title, &ok, chromedp.ByQuery))
	if !strings.Contains(title, "config/staging.yaml") {
		t.Fatalf("hover text %q", title)
	}
	run(t, ctx, chromedp.Click(`tr[data-key="logging.level"] td[data-env="staging"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#explain`, chromedp.ByID),
		chromedp.Text(`#source`, &source, chromedp.ByID),
		chromedp.Text(`#chain`, &chain, chromedp.ByID))
	if !strings.Contains(source, "config/staging.yaml") || !strings.Contains(chain, "config/default.yaml") {
		t.Fatalf("provenance: source %q chain %q", source, chain)
	}
	screenshot(t, ctx, "explain")

	// Filter to differences with the form (no script needed).
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/matrix"),
		chromedp.WaitVisible(`#matrix`, chromedp.ByID),
		chromedp.Click(`input[name="diff"]`, chromedp.ByQuery),
		chromedp.Submit(`input[name="key"]`, chromedp.ByQuery),
		// The old page's #matrix is visible until the new one loads: wait
		// for the filtered page's.
		chromedp.WaitVisible(`#matrix[data-diff="1"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#matrix tbody tr").length`, &rows),
		chromedp.Evaluate(`document.querySelectorAll("#matrix tbody tr:not(.differs)").length === 0 && location.search.includes("diff=1")`, &ok))
	if rows == 0 || !ok {
		t.Fatalf("only differences: %d rows, all differing and in the URL: %v", rows, ok)
	}
	screenshot(t, ctx, "matrix-differences")

	// Diff two environments.
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/diff"),
		chromedp.SetValue(`select[name="a"]`, "development", chromedp.ByQuery),
		chromedp.SetValue(`select[name="b"]`, "staging", chromedp.ByQuery),
		chromedp.Submit(`select[name="a"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#diff`, chromedp.ByID),
		chromedp.Text(`#diff-summary`, &diffSummary, chromedp.ByID))
	var secret bool
	run(t, ctx, chromedp.Evaluate(`document.body.innerText.includes("`+canary+`")`, &secret))
	if !strings.Contains(diffSummary, "from development to staging") || secret {
		t.Fatalf("diff: %q, secret shown: %v", diffSummary, secret)
	}
	screenshot(t, ctx, "diff")
}

func TestBrowserApproveAsTwoUsersLive(t *testing.T) {
	ctx := browser(t)
	h := seeded(t)
	id := h.openProduction()
	ana := h.token("ana", "approver", nil, "devops")
	ben := h.token("ben", "approver", nil, "seniors")
	sel := `#` + id

	// Ana ticks the checklist and approves.
	run(t, ctx, signInTasks(h.hs.URL, ana),
		chromedp.Navigate(h.hs.URL+"/promotions"),
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Click(sel+` button[aria-label^="Tick"]`, chromedp.ByQuery),
		chromedp.WaitNotPresent(sel+` button[aria-label^="Tick"]`, chromedp.ByQuery),
		chromedp.Click(sel+` form[action$="/approve"] button`, chromedp.ByQuery),
		chromedp.WaitVisible(sel+` .approvals .tag`, chromedp.ByQuery))
	var approvals string
	run(t, ctx, chromedp.Text(sel+` .approvals`, &approvals, chromedp.ByQuery))
	if !strings.Contains(approvals, "1 of 2") {
		t.Fatalf("after ana: %q", approvals)
	}
	screenshot(t, ctx, "approved-once")

	// Ben, in another browser profile's session, approves; Ana's page
	// would update live, Ben's shows it applied.
	ctx2 := browser(t)
	run(t, ctx2, signInTasks(h.hs.URL, ben),
		chromedp.Navigate(h.hs.URL+"/promotions"),
		chromedp.WaitVisible(sel+` form[action$="/approve"] button`, chromedp.ByQuery),
		chromedp.Click(sel+` form[action$="/approve"] button`, chromedp.ByQuery))
	h.waitRelease("production", h.release)
	// Ana's open page follows the server's events and shows it applied.
	run(t, ctx, chromedp.WaitVisible(`#recent tr[id="`+id+`"]`, chromedp.ByQuery))
	var state string
	run(t, ctx, chromedp.Text(`#recent tr[id="`+id+`"] .state`, &state, chromedp.ByQuery))
	if !strings.HasPrefix(state, "applied") {
		t.Fatalf("state %q", state)
	}
	screenshot(t, ctx, "applied-live")

	// The audit entry, as an admin.
	ctx3 := browser(t)
	var log, verify string
	run(t, ctx3, signInTasks(h.hs.URL, adminToken),
		chromedp.Navigate(h.hs.URL+"/audit"),
		chromedp.WaitVisible(`#audit`, chromedp.ByID),
		chromedp.Text(`#verify`, &verify, chromedp.ByID),
		chromedp.Text(`#audit`, &log, chromedp.ByID))
	if !strings.Contains(verify, "Chain verified") || !strings.Contains(log, "promotion.apply") || !strings.Contains(log, "ben (token") {
		t.Fatalf("audit: %q\n%s", verify, log)
	}
	screenshot(t, ctx3, "audit")
}

func TestBrowserToggleFlagChangesEvaluation(t *testing.T) {
	ctx := browser(t)
	h := flagged(t)
	editor := h.token("ed", "editor", []string{"development"})
	evaluate := chromedp.Tasks{
		chromedp.WaitVisible(`#eval-submit`, chromedp.ByID),
		chromedp.SetValue(`#eval-key`, "banner", chromedp.ByID),
		chromedp.SetValue(`#eval-context`, `{"targetingKey":"u1"}`, chromedp.ByID),
		chromedp.Click(`#eval-submit`, chromedp.ByID),
		chromedp.WaitVisible(`#evaluation`, chromedp.ByID),
	}
	var value, reason string
	run(t, ctx, signInTasks(h.hs.URL, editor),
		chromedp.Navigate(h.hs.URL+"/environments/development/flags"),
		evaluate,
		chromedp.Text(`#eval-value`, &value, chromedp.ByID),
		chromedp.Text(`#eval-reason`, &reason, chromedp.ByID))
	if value != `"Welcome"` || reason != "STATIC" {
		t.Fatalf("before: value %q reason %q", value, reason)
	}
	screenshot(t, ctx, "flag-evaluated")

	run(t, ctx, chromedp.Click(`#flag-banner button[name="state"][value="DISABLED"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#flag-banner button[name="state"][value="ENABLED"]`, chromedp.ByQuery),
		evaluate,
		chromedp.Text(`#eval-value`, &value, chromedp.ByID),
		chromedp.Text(`#eval-reason`, &reason, chromedp.ByID))
	if reason != "DISABLED" || !strings.Contains(value, "code default") {
		t.Fatalf("after disabling: value %q reason %q", value, reason)
	}
	screenshot(t, ctx, "flag-disabled")
}

// TestBrowserEnvironmentPromoteAndRollback: from the top navigation to
// production's page, a refused rollback shown with its reason, then the
// prefilled promotion opened and shown on the promotions page.
func TestBrowserEnvironmentPromoteAndRollback(t *testing.T) {
	ctx := browser(t)
	h := seeded(t)
	var refusal, state, values string
	run(t, ctx, signInTasks(h.hs.URL, adminToken),
		chromedp.Click(`header nav a.nav-env[href="/environments/staging"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#config`, chromedp.ByID),
		chromedp.Text(`#config`, &values, chromedp.ByID))
	if !strings.Contains(values, "db.staging") || strings.Contains(values, canary) {
		t.Fatalf("staging's config: %s", values)
	}
	screenshot(t, ctx, "environment")
	run(t, ctx, chromedp.Click(`header nav a.nav-env[href="/environments/production"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#rollback-form button`, chromedp.ByQuery),
		chromedp.Click(`#rollback-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#refusal`, chromedp.ByID),
		chromedp.Text(`#refusal`, &refusal, chromedp.ByID))
	if !strings.Contains(refusal, "no previous release") {
		t.Fatalf("refusal: %q", refusal)
	}
	screenshot(t, ctx, "rollback-refused")
	run(t, ctx, chromedp.Click(`#promote-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`section.promotion`, chromedp.ByQuery),
		chromedp.Text(`section.promotion .state`, &state, chromedp.ByQuery))
	if state == "" || !strings.Contains(h.must(t, "/promotions"), h.release[:16]) {
		t.Fatalf("promotion state %q", state)
	}
	screenshot(t, ctx, "promotion-opened")
}

func (h *harness) must(t *testing.T, path string) string {
	t.Helper()
	return h.signIn(adminToken).must(path)
}
