package app_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/store/sqlite"
)

// timedStore sums the time spent inside write transactions.
type timedStore struct {
	store.Store
	inTx time.Duration
}

func (s *timedStore) WithTx(ctx context.Context, fn func(store.Tx) error) error {
	t0 := time.Now()
	defer func() { s.inTx += time.Since(t0) }()
	return s.Store.WithTx(ctx, fn)
}

// bigWorkspace is about mb megabytes of layer files for one environment;
// variant changes one small file.
func bigWorkspace(mb int, variant string) map[string][]byte {
	files := map[string][]byte{"config/small.yaml": []byte("small:\n  variant: " + variant + "\n")}
	layers := []string{"config/small.yaml"}
	for i := range mb * 10 {
		name := fmt.Sprintf("config/p%03d.yaml", i)
		layers = append(layers, name)
		var b strings.Builder
		fmt.Fprintf(&b, "p%03d:\n", i)
		for k := 0; b.Len() < 100_000; k++ {
			fmt.Fprintf(&b, "  k%04d: \"%s-%d\"\n", k, strings.Repeat("v", 70), k)
		}
		files[name] = []byte(b.String())
	}
	files["envplane.yaml"] = []byte("name: big\nenvironments:\n  - name: development\n    data: synthetic\n    protection: open\nconfig:\n  layers: [" + strings.Join(layers, ", ") + "]\n")
	return files
}

// BenchmarkSetRelease alternates the current release of an environment
// between two releases of 1 and 10 MB; tx-ms/op is the time inside the
// write transaction, which must not grow with the release.
func BenchmarkSetRelease(b *testing.B) {
	backends := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "app.db"))
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	if os.Getenv("ENVPLANE_TEST_POSTGRES_URL") != "" {
		backends["postgres"] = func(b *testing.B) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.URL(b))
			if err != nil {
				b.Fatal(err)
			}
			return st
		}
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open := backends[name]
		if open == nil {
			continue
		}
		for _, mb := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/%dMB", name, mb), func(b *testing.B) {
				ts := &timedStore{Store: open(b)}
				defer ts.Close()
				chain, _ := audit.NewChain(bytes.Repeat([]byte{7}, audit.MinKeySize))
				a, err := app.New(app.Options{Store: ts, Audit: app.AuditOptions{Chain: chain}})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				admin := &auth.Principal{TokenID: "tok_1", Name: "ops", Role: auth.Admin}
				var ids []string
				for _, v := range []string{"a", "b"} {
					rel, _, err := a.CreateRelease(ctx, admin, bigWorkspace(mb, v), nil)
					if err != nil {
						b.Fatal(err)
					}
					ids = append(ids, rel.ID)
				}
				ts.inTx = 0
				i := 0
				b.ResetTimer()
				for b.Loop() {
					if _, err := a.SetRelease(ctx, admin, "development", ids[i%2]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(ts.inTx.Microseconds())/1000/float64(b.N), "tx-ms/op")
			})
		}
	}
}
