// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database named by ENVPLANE_TEST_POSTGRES_URL, dropped when the
// test ends. A postgres.Store opened on the URL it returns keeps its tables,
// advisory locks and notification channel to that schema, so tests of
// different packages can share one database and run in parallel.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the test database's URL.
const EnvURL = "ENVPLANE_TEST_POSTGRES_URL"

// BaseURL returns the test database's URL, skipping t when it is not set.
func BaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		noteSkipped(t.Name())
		t.Skip(EnvURL + " is not set; skipping the PostgreSQL tests")
	}
	return u
}

// URL creates an empty schema and returns a URL whose search_path is that
// schema; the schema is dropped when t ends. It skips t when
// ENVPLANE_TEST_POSTGRES_URL is not set.
func URL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "envplane_test_" + hex.EncodeToString(b)
	exec(t, base, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	return WithParam(t, base, "search_path", schema)
}

// Schema returns the schema a URL from URL works in.
func Schema(t testing.TB, u string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RuntimeParams["search_path"]
}

// WithParam sets a connection parameter in a postgres:// URL or a key=value
// connection string.
func WithParam(t testing.TB, conn, key, value string) string {
	t.Helper()
	if !strings.HasPrefix(conn, "postgres://") && !strings.HasPrefix(conn, "postgresql://") {
		return conn + " " + key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
	}
	u, err := url.Parse(conn)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs statements on a connection of their own to the database at u.
func Exec(t testing.TB, u, sql string, args ...any) {
	t.Helper()
	exec(t, u, sql, args...)
}

func exec(t testing.TB, u, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
