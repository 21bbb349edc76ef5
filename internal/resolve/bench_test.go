package resolve_test

// Benchmarks for the in-process resolution target of docs/PERFORMANCE.md:
// examples/arka resolved from the files' bytes in memory to the resolved tree
// with provenance.
//
//	go test -run='^$' -bench=. -benchmem -count=6 ./internal/resolve/

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/envplane/envplane/internal/cputime"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/workspace"
)

// arkaDir is the example workspace, relative to this package.
var arkaDir = filepath.Join("..", "..", "examples", "arka")

var (
	arkaOnce  sync.Once
	arkaFiles fstest.MapFS
	arkaErr   error
)

// arkaFS returns every file of examples/arka, read from disk once per test
// binary, as an in-memory file system.
func arkaFS(b testing.TB) fstest.MapFS {
	b.Helper()
	arkaOnce.Do(func() {
		arkaFiles = fstest.MapFS{}
		arkaErr = fs.WalkDir(os.DirFS(arkaDir), ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(filepath.Join(arkaDir, filepath.FromSlash(p)))
			if err != nil {
				return err
			}
			arkaFiles[p] = &fstest.MapFile{Data: data, Mode: 0o644}
			return nil
		})
	})
	if arkaErr != nil {
		b.Fatal(arkaErr)
	}
	return arkaFiles
}

// arkaEnv is a production-like process environment: every ${VAR} that
// config/environments/production.yaml references, set to a realistic value,
// plus a few ARKA_* overrides (prefix rule and explicit bindings of
// envplane.yaml) and unrelated variables every shell has. Nothing here is a
// real credential.
var arkaEnv = map[string]string{
	// ${...} references of production.yaml.
	"DATABASE_HOST":            "arka-prod.cluster-c7x2k1q9zr4m.eu-west-1.rds.amazonaws.com",
	"DATABASE_USER":            "arka_app",
	"DATABASE_PASSWORD":        "bench-only-Zq8w2Lk5Vt9xRm3Hc7Pj",
	"DATABASE_CA_CERT":         "/etc/ssl/certs/rds-global-bundle.pem",
	"DATABASE_REPLICA_1":       "arka-prod-ro-1.cluster-ro-c7x2k1q9zr4m.eu-west-1.rds.amazonaws.com",
	"DATABASE_REPLICA_2":       "arka-prod-ro-2.cluster-ro-c7x2k1q9zr4m.eu-west-1.rds.amazonaws.com",
	"REDIS_NODE_1":             "redis-0.redis-cluster.arka-prod.svc.cluster.local",
	"REDIS_NODE_2":             "redis-1.redis-cluster.arka-prod.svc.cluster.local",
	"REDIS_NODE_3":             "redis-2.redis-cluster.arka-prod.svc.cluster.local",
	"REDIS_PASSWORD":           "bench-only-Rd4mN8pQ2sT6vX0y",
	"KAFKA_BROKERS":            "kafka1:9092,kafka2:9092",
	"KAFKA_USER":               "arka-producer",
	"KAFKA_PASSWORD":           "bench-only-Kf7hJ3nB9cW1eA5g",
	"JWT_SECRET":               "bench-only-jwt-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	"ENCRYPTION_KEY":           "bench-only-enc-key-32-bytes-long!",
	"OPENAI_API_KEY":           "sk-bench-only-0000000000000000000000000000000000000000",
	"POLYGON_MAINNET_RPC":      "https://polygon-mainnet.infura.io/v3/00000000000000000000000000000000",
	"BLOCKCHAIN_PRIVATE_KEY":   "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
	"DD_AGENT_HOST":            "datadog-agent.monitoring.svc.cluster.local",
	"PAGERDUTY_SERVICE_KEY":    "bench-only-pd-0123456789abcdef0123456789abcdef",
	"SLACK_PRODUCTION_WEBHOOK": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",

	// Overrides: prefix rule (ARKA_<PATH>, "__" for nesting) and config.env.bind.
	"ARKA_DATABASE__POOL__MAX": "150",
	"ARKA_RTVM__WORKERS":       "12",
	"ARKA_API_PORT":            "8443",
	"LOG_LEVEL":                "error",

	// Unrelated variables, never looked up by either side.
	"HOME":  "/home/arka",
	"PATH":  "/usr/local/bin:/usr/bin:/bin",
	"SHELL": "/bin/bash",
	"LANG":  "C.UTF-8",
	"TERM":  "xterm-256color",
	"USER":  "arka",
}

// arkaLookup serves arkaEnv the way the CLI serves os.Getenv.
func arkaLookup(name string) (string, bool) {
	v, ok := arkaEnv[name]
	return v, ok && v != ""
}

// arkaResolver parses envplane.yaml and builds a Resolver (which loads and
// compiles the schema) over fsys.
func arkaResolver(b testing.TB, fsys fstest.MapFS) *resolve.Resolver {
	ws, err := workspace.Parse(fsys, fsys[workspace.FileName].Data)
	if err != nil {
		b.Fatal(err)
	}
	r, err := resolve.New(ws)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// checkArka fails the benchmark when a resolution has problems, so that a
// benchmark can never measure the (cheaper or dearer) error path.
func checkArka(b testing.TB, res *resolve.Result) {
	b.Helper()
	if len(res.Problems) != 0 {
		for _, p := range res.Problems {
			b.Log(p.Diagnostic)
		}
		b.Fatalf("%s: %d problems, want 0", res.Env, len(res.Problems))
	}
	if res.Tree == nil || len(res.Tree.Fields) == 0 {
		b.Fatalf("%s: empty tree", res.Env)
	}
}

func benchmarkArka(b *testing.B, env string) {
	fsys := arkaFS(b)
	req := resolve.Request{Env: env, Getenv: arkaLookup}
	checkArka(b, arkaResolver(b, fsys).Resolve(req))

	// cold: what one `envplane resolve` does after reading the files: parse
	// envplane.yaml, load and compile the schema, parse the layer files,
	// merge schema defaults, parse the other environments' files for type
	// hints when a value needs one, interpolate, bind variables.
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		m := cputime.Start()
		for b.Loop() {
			ws, err := workspace.Parse(fsys, fsys[workspace.FileName].Data)
			if err != nil {
				b.Fatal(err)
			}
			r, err := resolve.New(ws)
			if err != nil {
				b.Fatal(err)
			}
			if res := r.Resolve(req); len(res.Problems) != 0 {
				b.Fatal(res.Err())
			}
		}
		m.Report(b)
	})

	// cold-cached: cold as the CLI runs it with its user cache warm
	// (resolve.NewCached, an in-memory cache here): the schema this binary
	// compiled before skips the metaschema check (schema.LoadCached).
	b.Run("cold-cached", func(b *testing.B) {
		cache := memCache{}
		if _, err := resolve.NewCached(mustParse(b, fsys), cache); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		m := cputime.Start()
		for b.Loop() {
			r, err := resolve.NewCached(mustParse(b, fsys), cache)
			if err != nil {
				b.Fatal(err)
			}
			if res := r.Resolve(req); len(res.Problems) != 0 {
				b.Fatal(res.Err())
			}
		}
		m.Report(b)
	})

	// warm: one long-lived Resolver (the server case). Every Resolve still
	// parses the layer files from their bytes and builds a fresh tree; the
	// workspace, compiled schema, file bytes and other environments' hint
	// trees are reused.
	b.Run("warm", func(b *testing.B) {
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

	// setup: workspace.Parse + resolve.New alone, the part of cold that a
	// server pays once; cold - setup - warm is the first-resolve overhead
	// (file reads, hint trees).
	b.Run("setup", func(b *testing.B) {
		b.ReportAllocs()
		m := cputime.Start()
		for b.Loop() {
			arkaResolver(b, fsys)
		}
		m.Report(b)
	})
}

// TestArkaBenchFixture checks that the benchmarks' environment does what it
// claims: no problems, references interpolated and typed, overrides applied.
func TestArkaBenchFixture(t *testing.T) {
	r := arkaResolver(t, arkaFS(t))
	res := r.Resolve(resolve.Request{Env: "production", Getenv: arkaLookup})
	checkArka(t, res)
	want := map[string]string{
		"server.port":               "8443",
		"server.shutdownTimeout":    "30000",
		"logging.level":             "error",
		"database.pool.max":         "150",
		"rtvm.workers":              "12",
		"database.host":             arkaEnv["DATABASE_HOST"],
		"redis.nodes.2.host":        arkaEnv["REDIS_NODE_3"],
		"kafka.brokers.1":           "kafka2:9092",
		"alerts.channels.1.webhook": arkaEnv["SLACK_PRODUCTION_WEBHOOK"],
	}
	for path, w := range want {
		v := res.Tree.Lookup(strings.Split(path, "."))
		if v == nil || v.Scalar() != w {
			t.Errorf("%s = %v, want %q", path, v, w)
		}
	}
	if v := res.Tree.Lookup([]string{"database", "pool", "max"}); v == nil || v.Kind != tree.Int || v.Src.Name != "ARKA_DATABASE__POOL__MAX" {
		t.Errorf("database.pool.max = %+v, want an integer from ARKA_DATABASE__POOL__MAX", v)
	}
	dev := r.Resolve(resolve.Request{Env: "development", Getenv: arkaLookup})
	checkArka(t, dev)
	if v := dev.Tree.Lookup([]string{"server", "shutdownTimeout"}); v == nil || v.Src.Kind != tree.SourceDefault {
		t.Errorf("development server.shutdownTimeout = %+v, want the schema default", v)
	}
}

func BenchmarkResolveArkaProduction(b *testing.B)  { benchmarkArka(b, "production") }
func BenchmarkResolveArkaDevelopment(b *testing.B) { benchmarkArka(b, "development") }

// memCache is schema.Cache in memory.
type memCache map[string][]byte

func (c memCache) Get(k string) ([]byte, bool) { v, ok := c[k]; return v, ok }
func (c memCache) Put(k string, v []byte)      { c[k] = v }

func mustParse(b testing.TB, fsys fstest.MapFS) *workspace.Workspace {
	ws, err := workspace.Parse(fsys, fsys[workspace.FileName].Data)
	if err != nil {
		b.Fatal(err)
	}
	return ws
}
