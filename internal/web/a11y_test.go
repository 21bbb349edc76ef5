package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// unnamedControls lists the form controls and links of the page without
// an accessible name (label, aria-label, aria-labelledby, title, text).
const unnamedControls = `(() => {
  const out = [];
  for (const el of document.querySelectorAll("main a, header a, button, input:not([type=hidden]), select, textarea, summary")) {
    const text = (el.textContent || el.value || "").trim();
    const labelled = el.labels && el.labels.length > 0 && Array.from(el.labels).some(l => l.textContent.trim() !== "");
    const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.getAttribute("title");
    const isInput = el.matches("input, select, textarea");
    if (isInput ? !(labelled || named) : !(text || named)) {
      out.push(el.outerHTML.slice(0, 120));
    }
  }
  return out;
})()`

// TestBrowserAccessibleResponsiveDark: on every page a user reaches, every
// control has an accessible name; at a phone's width (375 px) nothing but
// the tables' own scrolling boxes is wider than the screen; the first Tab
// reaches "Skip to content"; with prefers-color-scheme: dark the page is
// dark.
func TestBrowserAccessibleResponsiveDark(t *testing.T) {
	ctx := browser(t)
	h := flagged(t)
	id := h.openProduction()
	rel2 := h.shop2()
	pages := []string{"/", "/matrix", "/explain?env=staging&key=logging.level", "/diff",
		"/diff?ra=" + h.release + "&rb=" + rel2 + "&env=development",
		"/environments/staging", "/environments/development/flags", "/environments/staging/secrets",
		"/promotions", "/audit"}
	run(t, ctx, signInTasks(h.hs.URL, adminToken))
	// One pass at a phone's width (names do not depend on it).
	run(t, ctx, emulation.SetDeviceMetricsOverride(375, 800, 1, false))
	for _, p := range pages {
		var unnamed []string
		var overflow int64
		run(t, ctx, chromedp.Navigate(h.hs.URL+p),
			chromedp.WaitVisible(`main`, chromedp.ByQuery),
			chromedp.Evaluate(unnamedControls, &unnamed),
			chromedp.Evaluate(`document.documentElement.scrollWidth - window.innerWidth`, &overflow))
		if len(unnamed) > 0 {
			t.Errorf("%s: controls without an accessible name:\n%s", p, strings.Join(unnamed, "\n"))
		}
		if overflow > 0 {
			t.Errorf("%s at 375 px: the page is %d px wider than the screen", p, overflow)
		}
	}
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/environments/development/flags"), chromedp.WaitVisible(`#flags`, chromedp.ByID))
	screenshot(t, ctx, "phone-flags")
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/audit"), chromedp.WaitVisible(`#audit`, chromedp.ByID))
	screenshot(t, ctx, "phone-audit")
	run(t, ctx, chromedp.Navigate(h.hs.URL+"/promotions"), chromedp.WaitVisible(`#`+id, chromedp.ByQuery))
	screenshot(t, ctx, "phone-promotions")

	// Keyboard: the first Tab reaches the skip link, and it moves focus
	// to the content.
	var focused string
	run(t, ctx, emulation.SetDeviceMetricsOverride(1280, 900, 1, false),
		chromedp.Navigate(h.hs.URL+"/matrix"), chromedp.WaitVisible(`#matrix`, chromedp.ByID),
		chromedp.KeyEvent("\t"),
		chromedp.Evaluate(`document.activeElement.textContent`, &focused))
	if focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}

	// Dark.
	var bg string
	run(t, ctx, emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}),
		chromedp.Navigate(h.hs.URL+"/matrix"), chromedp.WaitVisible(`#matrix`, chromedp.ByID),
		chromedp.Evaluate(`getComputedStyle(document.body).backgroundColor`, &bg))
	var r, g, b int
	if _, err := fmt.Sscanf(bg, "rgb(%d, %d, %d)", &r, &g, &b); err != nil || r+g+b > 150 {
		t.Errorf("with prefers-color-scheme: dark the background is %q", bg)
	}
	screenshot(t, ctx, "dark-matrix")
}
