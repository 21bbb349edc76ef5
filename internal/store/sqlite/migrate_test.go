package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/store/storetest"
)

// Migration 0003 moves the files of existing releases into blobs.
func TestMigrateReleaseFilesToBlobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envplane.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`)
	for v, name := range []string{"0001_init.sql", "0002_secrets.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		exec(string(b))
		exec(`INSERT INTO schema_migrations VALUES (?, ?, 0)`, v+1, name)
	}
	seq := 0
	for id, files := range storetest.OldFiles() {
		seq++
		exec(`INSERT INTO releases (id, seq, digest, labels, size, created_at, created_by) VALUES (?, ?, ?, 'null', 0, 0, 'test')`, id, seq, "sha256:"+id)
		for p, c := range files {
			exec(`INSERT INTO release_files (release_id, path, content) VALUES (?, ?, ?)`, id, p, c)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMigratedFiles(t, s)
}
