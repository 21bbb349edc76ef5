package app_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/store/sqlite"
)

// TestDiffReleasesReadsTheirSecretsFiles: two releases that differ only in
// a value of their staging secrets file differ in staging's diff, as the
// served config does (the diff once resolved without the files and saw
// two identical unresolved references).
func TestDiffReleasesReadsTheirSecretsFiles(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	chain, err := audit.NewChain(bytes.Repeat([]byte{7}, audit.MinKeySize))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a, err := app.New(app.Options{Store: st, Clock: func() time.Time { return now }, Audit: app.AuditOptions{Chain: chain},
		AgeIdentities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for _, host := range []string{"db-a.internal", "db-b.internal"} {
		o, err := secrets.New("staging", []string{id.Recipient().String()})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Set("DB_HOST", host); err != nil {
			t.Fatal(err)
		}
		sealed, err := o.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rel, _, err := a.CreateRelease(ctx, sys, map[string][]byte{
			"envplane.yaml":            []byte("environments: [development, staging]\nconfig:\n  layers: ['config/{env}.yaml']\nsecrets:\n  dir: secrets\n  recipients:\n    staging: [" + id.Recipient().String() + "]\n"),
			"config/development.yaml":  []byte("db: localhost\n"),
			"config/staging.yaml":      []byte("db: ${DB_HOST}\n"),
			"secrets/staging.enc.yaml": sealed,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rel.ID)
	}
	changes, err := a.DiffReleases(ctx, sys, app.ReleaseDiff{A: ids[0], B: ids[1], Environment: "staging", Reveal: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Path+" "+c.Kind+" "+string(c.A)+" → "+string(c.B))
	}
	if diff := cmp.Diff([]string{`db changed "db-a.internal" → "db-b.internal"`}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
