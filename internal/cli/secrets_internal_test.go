package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSecretValueStdin: a value from stdin is kept byte for byte, except
// one line ending; one that does not fit is refused, never cut short.
func TestSecretValueStdin(t *testing.T) {
	tests := []struct {
		stdin, want, err string
	}{
		{"s3cret\n", "s3cret", ""},
		{"s3cret\r\n", "s3cret", ""},
		{"s3cret", "s3cret", ""},
		{"s3cret\r", "s3cret\r", ""},
		{"s3cret\n\n", "s3cret\n", ""},
		{" spaced \t\n", " spaced \t", ""},
		{"caf\xe9\n", "caf\xe9", ""}, // kept as is; Opened.Set and the server refuse it
		{strings.Repeat("x", int(maxStdinValue)) + "\n", strings.Repeat("x", int(maxStdinValue)), ""},
		{strings.Repeat("x", int(maxStdinValue)+1), "", "the value on stdin is over 1048576 bytes (1 MiB); nothing changed"},
	}
	for _, tt := range tests {
		a := &app{stdin: strings.NewReader(tt.stdin)}
		got, err := a.secretValue([]string{"NAME"}, "")
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if diff := cmp.Diff(struct{ V, E string }{tt.want, tt.err}, struct{ V, E string }{got, gotErr}); diff != "" {
			t.Errorf("stdin %.20q (-want +got):\n%.400s", tt.stdin, diff)
		}
	}
}
