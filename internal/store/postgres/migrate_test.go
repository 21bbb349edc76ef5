package postgres_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/store/storetest"
)

// Migration 0003 moves the files of existing releases into blobs.
func TestMigrateReleaseFilesToBlobs(t *testing.T) {
	pgtest.BaseURL(t)
	u := pgtest.URL(t)
	pgtest.Exec(t, u, `CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`)
	for v, name := range []string{"0001_init.sql", "0002_secrets.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		pgtest.Exec(t, u, string(b))
		pgtest.Exec(t, u, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v+1, name)
	}
	for id, files := range storetest.OldFiles() {
		pgtest.Exec(t, u, `INSERT INTO releases (id, digest, labels, size, created_at, created_by) VALUES ($1, $2, 'null', 0, now(), 'test')`, id, "sha256:"+id)
		for p, c := range files {
			pgtest.Exec(t, u, `INSERT INTO release_files (release_id, path, content) VALUES ($1, $2, $3)`, id, p, c)
		}
	}
	storetest.CheckMigratedFiles(t, open(t, u))
}
