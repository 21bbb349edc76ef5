package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDataCopyInterrupt runs the real binary (cmd/envplane, whose SIGINT
// cancels the command) and interrupts `data copy` once its first table is
// done: without --atomic that table is copied and the rest untouched, with
// it the target is as it was and no shadow schema is left; stderr says so.
func TestDataCopyInterrupt(t *testing.T) {
	base := os.Getenv("ENVPLANE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("ENVPLANE_TEST_POSTGRES_URL is not set: skipping")
	}
	if testing.Short() {
		t.Skip("builds the binary and copies 400 000 rows")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "envplane")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/envplane").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const schema = `CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id), note text);`
	src := pgDB(t, base, schema+`
INSERT INTO customers (email) VALUES ('ann@acme.test'), ('bob@acme.test'), ('cy@acme.test');
INSERT INTO orders (customer_id, note) SELECT 1 + i % 3, 'note ' || i FROM generate_series(1, 400000) i;`)
	ws := filepath.Join(dir, "ws")
	files := map[string]string{
		"envplane.yaml": `name: shop
environments:
  - name: staging
    data: anonymized
  - name: production
    data: live
config:
  layers:
    - config/{env}.yaml
data:
  database: database.url
`,
		"config/production.yaml": "database:\n  url: \"" + src + "\"\n",
		"data/rules.yaml": `key: ANON_HASH_KEY
tables:
  customers: {id: keep, email: {fake: email}}
  orders: {id: keep, note: {hash: hex}}
`,
	}
	for name, text := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(ws, name)), 0o755)
		if err := os.WriteFile(filepath.Join(ws, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		atomic bool
		stderr string
		rows   string // customers, orders after the interruption
	}{
		{false, "envplane: data copy interrupted; copied completely: customers; left as they were: orders\n", "3 1"},
		{true, "envplane: data copy interrupted; the target is as it was (the shadow tables were dropped)\n", "1 1"},
	} {
		dst := pgDB(t, base, schema+`INSERT INTO customers (email) VALUES ('old@example.com'); INSERT INTO orders (customer_id) VALUES (1);`)
		os.WriteFile(filepath.Join(ws, "config/staging.yaml"), []byte("database:\n  url: \""+dst+"\"\n"), 0o644)
		args := []string{"data", "copy", "--from", "production", "--to", "staging", "--progress", "json", "--yes", "--workers", "1"}
		if tc.atomic {
			args = append(args, "--atomic")
		}
		cmd := exec.Command(bin, args...)
		cmd.Dir = ws
		cmd.Env = append(os.Environ(), "ANON_HASH_KEY=k", "HOME="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		signalled := false
		start := time.Now()
		var at time.Time
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), `"table":"customers"`) && strings.Contains(sc.Text(), `"done":true`) {
				cmd.Process.Signal(os.Interrupt)
				signalled, at = true, time.Now()
			}
		}
		err = cmd.Wait()
		t.Logf("atomic=%v: interrupted after %s, stopped %s later", tc.atomic, at.Sub(start).Round(time.Millisecond), time.Since(at).Round(time.Millisecond))
		var exit *exec.ExitError
		if !signalled || !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("atomic=%v: signalled %v, exit %v\n%s", tc.atomic, signalled, err, stderr.String())
		}
		if got := stderr.String(); got != tc.stderr {
			t.Errorf("atomic=%v: stderr %q, want %q", tc.atomic, got, tc.stderr)
		}
		got := pgQuery(t, dst, `SELECT (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM orders)
  || (SELECT coalesce(' ' || string_agg(nspname, ' '), '') FROM pg_namespace WHERE nspname LIKE 'envplane\_%')`)
		if got != tc.rows {
			t.Errorf("atomic=%v: customers, orders (and shadow schemas) after the interruption: %q, want %q", tc.atomic, got, tc.rows)
		}
	}
}

func pgDB(t *testing.T, base, sql string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "envplane_cli_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	pgQuery(t, u.String(), sql)
	return u.String()
}

func pgQuery(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if !strings.HasPrefix(strings.TrimSpace(sql), "SELECT") {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		return ""
	}
	var s string
	if err := c.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
