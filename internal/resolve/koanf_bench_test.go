package resolve_test

// BenchmarkCompare puts envplane next to koanf (github.com/knadh/koanf/v2, the
// usual Go choice for layered config) doing the same job on the same bytes:
// examples/arka production, schema defaults below the file, process
// variables above it. koanf is a test-only dependency: it is imported here and
// nowhere else.
//
//	go test -run='^$' -bench=Compare -benchmem -count=6 ./internal/resolve/
//
// envplane (a warm Resolver, the server case), per operation:
//   - parses config/environments/production.yaml from its bytes into a tree
//     with file/line/column on every value;
//   - merges the schema's defaults beneath it (server.shutdownTimeout),
//     recording what each value overrode;
//   - expands the 21 ${VAR} references value by value, recording the
//     template, the variable that supplied the value and where it was asked
//     for, and types single references by the schema (KAFKA_BROKERS becomes
//     a list of two strings);
//   - looks up ARKA_<PATH> for every key (case-insensitive, "__" for
//     nesting, array items included) and the explicit bindings, coercing
//     each value to the type of the key it replaces and keeping the replaced
//     value in the provenance chain.
//
// koanf, per operation:
//   - expands ${VAR} in the file text with os.Expand (koanf has no
//     interpolation; this is the common workaround: no escaping, no
//     positions, every result is a string, KAFKA_BROKERS stays one string);
//   - loads the same defaults from a provider, then the expanded bytes with
//     rawbytes + the yaml parser (map[string]any, no positions);
//   - loads the variables with the env provider and a TransformFunc that does
//     the same mapping: explicit bindings first, else ARKA_<PATH> matched
//     case-insensitively against the keys loaded so far (koanf's flattened
//     keys, so array items are not addressable), with the value converted to
//     the existing value's type.
//
// Neither side validates against the schema (envplane does that in the CLI,
// after resolving); neither counts reading the files, which are in memory.

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/envplane/envplane/internal/cputime"
	"github.com/envplane/envplane/internal/resolve"
)

// koanfDefaults provides what the schema's `default`s provide to envplane.
type koanfDefaults struct{}

func (koanfDefaults) ReadBytes() ([]byte, error) { return nil, nil }

func (koanfDefaults) Read() (map[string]any, error) {
	return map[string]any{"server": map[string]any{"shutdownTimeout": 10000}}, nil
}

// koanfBind mirrors config.env.bind of examples/arka/envplane.yaml.
var koanfBind = map[string]string{
	"ARKA_API_PORT":     "server.port",
	"ARKA_GRPC_PORT":    "server.grpcPort",
	"ARKA_METRICS_PORT": "server.metricsPort",
	"LOG_LEVEL":         "logging.level",
}

// koanfLoad is one koanf resolution of the ARKA production config.
func koanfLoad(file []byte, environ []string) (*koanf.Koanf, error) {
	getenv := func(name string) string { return arkaEnv[name] }
	k := koanf.New(".")
	if err := k.Load(koanfDefaults{}, nil); err != nil {
		return nil, err
	}
	expanded := os.Expand(string(file), getenv)
	if err := k.Load(rawbytes.Provider([]byte(expanded)), yaml.Parser()); err != nil {
		return nil, err
	}
	// ARKA_DATABASE__POOL__MAX -> database.pool.max, matched against the keys
	// that exist, ignoring case and dashes, like envplane's prefix rule.
	keys := map[string]string{}
	for _, key := range k.Keys() {
		keys[strings.ToUpper(strings.ReplaceAll(strings.ReplaceAll(key, "-", ""), ".", "__"))] = key
	}
	err := k.Load(env.Provider(".", env.Opt{
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, val string) (string, any) {
			path, ok := koanfBind[name]
			if !ok {
				rest, found := strings.CutPrefix(name, "ARKA_")
				if !found {
					return "", nil
				}
				if path, ok = keys[rest]; !ok {
					return "", nil
				}
			}
			switch k.Get(path).(type) {
			case int:
				if n, err := strconv.Atoi(val); err == nil {
					return path, n
				}
			case bool:
				if b, err := strconv.ParseBool(val); err == nil {
					return path, b
				}
			case float64:
				if f, err := strconv.ParseFloat(val, 64); err == nil {
					return path, f
				}
			}
			return path, val
		},
	}), nil)
	return k, err
}

func BenchmarkCompare(b *testing.B) {
	fsys := arkaFS(b)
	req := resolve.Request{Env: "production", Getenv: arkaLookup}

	b.Run("envplane", func(b *testing.B) {
		r := arkaResolver(b, fsys)
		checkArka(b, r.Resolve(req))
		b.ReportAllocs()
		m := cputime.Start()
		for b.Loop() {
			if res := r.Resolve(req); len(res.Problems) != 0 {
				b.Fatal(res.Err())
			}
		}
		m.Report(b)
	})

	b.Run("koanf", func(b *testing.B) {
		file := fsys["config/environments/production.yaml"].Data
		environ := make([]string, 0, len(arkaEnv))
		for name, val := range arkaEnv {
			environ = append(environ, name+"="+val)
		}
		k, err := koanfLoad(file, environ)
		if err != nil {
			b.Fatal(err)
		}
		checkKoanf(b, k)
		b.ReportAllocs()
		m := cputime.Start()
		for b.Loop() {
			if _, err := koanfLoad(file, environ); err != nil {
				b.Fatal(err)
			}
		}
		m.Report(b)
	})
}

// checkKoanf makes sure the koanf side really did the same job.
func checkKoanf(b *testing.B, k *koanf.Koanf) {
	b.Helper()
	ints := map[string]int{
		"server.port":            8443,
		"server.shutdownTimeout": 30000,
		"database.pool.max":      150,
		"rtvm.workers":           12,
	}
	for path, want := range ints {
		if got := k.Int(path); got != want {
			b.Errorf("koanf %s = %d, want %d", path, got, want)
		}
	}
	strs := map[string]string{
		"logging.level": "error",
		"database.host": arkaEnv["DATABASE_HOST"],
		"kafka.brokers": arkaEnv["KAFKA_BROKERS"],
	}
	for path, want := range strs {
		if got := k.String(path); got != want {
			b.Errorf("koanf %s = %q, want %q", path, got, want)
		}
	}
	if b.Failed() {
		b.FailNow()
	}
}
