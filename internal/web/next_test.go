package web

import "testing"

// TestSafeNext: after sign-in the browser goes only to a path of this
// server; anything a browser could read as another site goes to "/".
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/environments/staging": "/environments/staging",
		"/audit?action=x":       "/audit?action=x",
		"":                      "/",
		"https://evil.example/": "/",
		"//evil.example/":       "/",
		"/\\evil.example/":      "/",
		"/\t/evil.example/":     "/",
		"/\n/evil.example/":     "/",
		"/a\\b":                 "/",
		"javascript:alert(1)":   "/",
		"/%2F/evil.example":     "/%2F/evil.example", // stays a path on this server
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
