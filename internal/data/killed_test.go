package data

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/domain"
)

// TestHelperAtomicCopyProcess is the process TestKilledAtomicCopy kills:
// an atomic copy that has built its shadow schema and then waits for a
// source table another session of the same process holds locked.
func TestHelperAtomicCopyProcess(t *testing.T) {
	src, dst := os.Getenv("ENVPLANE_DATA_HELPER_SRC"), os.Getenv("ENVPLANE_DATA_HELPER_DST")
	if src == "" {
		t.Skip("run by TestKilledAtomicCopy")
	}
	ctx := context.Background()
	lock, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE relation = 'orders'::regclass AND mode = 'AccessExclusiveLock'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("lock: %d %v", n, err)
	}
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	_, err = copyOnce(t, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k1"), Atomic: true, Workers: 1})
	// Unreachable during the copy, the lock's connection would be closed
	// by its socket's finalizer at the copy's first GC, and the lock with it.
	runtime.KeepAlive(tx)
	runtime.KeepAlive(lock)
	t.Fatalf("the copy ended: %v", err) // it is killed before
}

func TestKilledAtomicCopy(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema+`INSERT INTO customers (email, full_name) VALUES ('old@example.com', 'Old Row');`)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	rules := rulesOf(t, fixtureRules)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAtomicCopyProcess$")
	cmd.Env = append(os.Environ(), "ENVPLANE_DATA_HELPER_SRC="+src, "ENVPLANE_DATA_HELPER_DST="+dst)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	shadows := func() []string {
		return query(t, dst, `SELECT nspname || ': ' || obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname LIKE 'envplane\_shadow\_%' ORDER BY 1`)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(shadows()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the helper copy built no shadow schema in 30 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	left := shadows()
	if !strings.Contains(left[0], "envplane data copy --atomic from production, started ") {
		t.Errorf("shadow schema comment: %q", left)
	}

	// While it runs, another copy into the same target is refused.
	_, err := copyOnce(t, from, to, rules, CopyOptions{Key: []byte("k1")})
	if err == nil || !strings.Contains(err.Error(), "another --atomic copy into staging is running (shadow schema envplane_shadow_") {
		t.Fatalf("a copy while an atomic one runs: %v\nhelper:\n%s", err, out.String())
	}

	// Killed: its shadow schema stays behind, the target as it was.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := shadows(); len(got) != 1 {
		t.Fatalf("after the kill: shadow schemas %q", got)
	}
	if got := query(t, dst, "SELECT email FROM customers"); len(got) != 1 || got[0] != "old@example.com" {
		t.Errorf("target after the kill: %q", got)
	}

	// The next copy says so and drops it. The dead session's lock may take
	// a moment to go.
	var notices []string
	deadline = time.Now().Add(20 * time.Second)
	for {
		notices = nil
		_, err = copyOnce(t, from, to, rules, CopyOptions{Key: []byte("k1"), Atomic: true, Notice: func(s string) { notices = append(notices, s) }})
		if err == nil || !strings.Contains(err.Error(), "is running") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(left[0], ":")
	if len(notices) != 1 || !strings.Contains(notices[0], "staging: dropped shadow schema "+name+" left behind by an interrupted copy (envplane data copy --atomic from production, started ") {
		t.Errorf("notices: %q", notices)
	}
	if got := shadows(); len(got) != 0 {
		t.Errorf("shadow schemas after the next copy: %q", got)
	}
	if got := query(t, dst, "SELECT count(*)::text FROM customers"); got[0] != "500" {
		t.Errorf("customers after the next copy: %s", got[0])
	}
}
