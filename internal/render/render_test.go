package render_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/tree"
)

func cfg(t *testing.T, src string) *tree.Value {
	t.Helper()
	v, errs := tree.ParseYAML("c.yaml", []byte(src))
	if errs != nil {
		t.Fatal(errs)
	}
	return v
}

func sensitive(p string) bool { return strings.Contains(strings.ToLower(p), "secret") }

func TestFormats(t *testing.T) {
	src := "server:\n  port: 8080\n  grpc-port: 9090\nsecurity:\n  jwtSecret: \"it's\"\nhosts: [a, b]\nnodes:\n  - {host: n1}\nratio: 1.0\nnote: \"a b#c\"\n"
	tests := []struct {
		format string
		reveal bool
		want   string
	}{
		{"json", false, `{
  "server": {
    "port": 8080,
    "grpc-port": 9090
  },
  "security": {
    "jwtSecret": "<redacted>"
  },
  "hosts": [
    "a",
    "b"
  ],
  "nodes": [
    {
      "host": "n1"
    }
  ],
  "ratio": 1,
  "note": "a b#c"
}
`},
		{"yaml", false, "server:\n  port: 8080\n  grpc-port: 9090\nsecurity:\n  jwtSecret: <redacted>\nhosts:\n  - a\n  - b\nnodes:\n  - host: n1\nratio: 1.0\nnote: a b#c\n"},
		{"dotenv", true, "HOSTS=a,b\nNODES_0_HOST=n1\nNOTE=\"a b#c\"\nRATIO=1\nSECURITY_JWTSECRET=\"it's\"\nSERVER_GRPCPORT=9090\nSERVER_PORT=8080\n"},
		{"shell", true, "export HOSTS='a,b'\nexport NODES_0_HOST='n1'\nexport NOTE='a b#c'\nexport RATIO='1'\nexport SECURITY_JWTSECRET='it'\\''s'\nexport SERVER_GRPCPORT='9090'\nexport SERVER_PORT='8080'\n"},
		{"properties", false, "server.port=8080\nserver.grpc-port=9090\nsecurity.jwtSecret=<redacted>\nhosts[0]=a\nhosts[1]=b\nnodes[0].host=n1\nratio=1\nnote=a b#c\n"},
		{"k8s", false, `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-dev
data:
  HOSTS: "a,b"
  NODES_0_HOST: "n1"
  NOTE: "a b#c"
  RATIO: "1"
  SERVER_GRPCPORT: "9090"
  SERVER_PORT: "8080"
`},
		{"k8s", true, `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-dev
data:
  HOSTS: "a,b"
  NODES_0_HOST: "n1"
  NOTE: "a b#c"
  RATIO: "1"
  SERVER_GRPCPORT: "9090"
  SERVER_PORT: "8080"
---
apiVersion: v1
kind: Secret
metadata:
  name: app-dev
type: Opaque
stringData:
  SECURITY_JWTSECRET: "it's"
`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Write(&b, tt.format, cfg(t, src), render.Options{Reveal: tt.reveal, Sensitive: sensitive, Name: "App dev"}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlattenCollision(t *testing.T) {
	_, err := render.Flatten(cfg(t, "server:\n  port: 1\nSERVER_PORT: 2\n"), render.Options{})
	// Placed at the value of the second key.
	want := "c.yaml:3:14: cannot flatten: server.port and SERVER_PORT both flatten to SERVER_PORT; rename one of the keys"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestSecretValuesAreAlwaysHidden(t *testing.T) {
	v := cfg(t, "plain: x\n")
	v.Get("plain").Secret = true
	var b bytes.Buffer
	if err := render.Write(&b, "dotenv", v, render.Options{}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "PLAIN=\"<redacted>\"\n" {
		t.Errorf("got %q", got)
	}
}

// TestLargeIntegers: integers above int64 come out exactly in every format.
func TestLargeIntegers(t *testing.T) {
	src := "max: 18446744073709551615\nmin: -9223372036854775808\n"
	tests := []struct {
		format string
		want   string
	}{
		{"json", "{\n  \"max\": 18446744073709551615,\n  \"min\": -9223372036854775808\n}\n"},
		{"yaml", "max: 18446744073709551615\nmin: -9223372036854775808\n"},
		{"dotenv", "MAX=18446744073709551615\nMIN=-9223372036854775808\n"},
		{"properties", "max=18446744073709551615\nmin=-9223372036854775808\n"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Write(&b, tt.format, cfg(t, src), render.Options{}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestOutputBound: output beyond MaxOutput is refused, in every format, with
// an invalid-kind error naming what was rendered, and nothing is written.
func TestOutputBound(t *testing.T) {
	defer render.SetMaxOutput(1000)()
	// Every format makes more than 1,000 bytes of this: 60 leaves, and in the
	// flat formats each carries its 100-byte parent.
	key := strings.Repeat("k", 100)
	src := key + ":\n"
	for i := range 60 {
		src += "  k" + strings.Repeat("x", i) + ": 1\n"
	}
	for _, format := range render.Formats {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			err := render.Write(&b, format, cfg(t, src), render.Options{Name: "app-dev"})
			got := []any{errors.Is(err, render.ErrTooLarge), errs.KindOf(err), b.Len()}
			if diff := cmp.Diff([]any{true, errs.Invalid, 0}, got); diff != "" {
				t.Errorf("err %v: (-want +got):\n%s", err, diff)
			}
			if want := "rendering app-dev as " + format + ": more than 0 MiB: output too large"; err != nil && err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
	t.Run("flatten", func(t *testing.T) {
		_, err := render.Flatten(cfg(t, src), render.Options{})
		if !errors.Is(err, render.ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("json value", func(t *testing.T) {
		if got := render.JSON(cfg(t, src), "", render.Options{}); got != `"<more than 0 MiB>"` {
			t.Errorf("got %q", got)
		}
	})
}
