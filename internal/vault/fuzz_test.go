package vault_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/envplane/envplane/internal/vault"
)

// FuzzJSONValue: whatever JSONValue accepts, it decoded without repairs:
// every U+FFFD in the result was in the input, literally or as an escape.
func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud83d\udd11"`, `"\ud800"`, "\"\xff\"", `"\\ud800"`, `"\ufffd"`, `"�"`, `"\\\ud800"`, `12`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v vault.JSONValue
		if err := v.UnmarshalJSON(b); err != nil {
			return
		}
		var plain string
		if err := json.Unmarshal(b, &plain); err != nil || plain != string(v) {
			t.Fatalf("JSONValue %q, encoding/json %q (%v)", v, plain, err)
		}
		in := strings.Count(string(b), "\ufffd") + strings.Count(strings.ToLower(string(b)), `\ufffd`)
		if out := strings.Count(string(v), "\ufffd"); out > in {
			t.Fatalf("%q decoded to %q: %d replacement characters, %d in the input", b, v, out, in)
		}
	})
}
