package data

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
)

const shadowExtras = `
CREATE INDEX orders_placed_idx ON orders (placed_at DESC);
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.note := coalesce(NEW.note, 'touched'); RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'envplane_reader') THEN CREATE ROLE envplane_reader; END IF; END$$;
GRANT SELECT ON customers TO envplane_reader;
`

// shape is what an atomic copy must carry over of the target's DDL.
func shape(t *testing.T, dsn string) []string {
	return query(t, dsn, `
SELECT 'index ' || indexname || ': ' || regexp_replace(indexdef, 'INDEX \S+ ', 'INDEX ') FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'constraint ' || conrelid::regclass || '.' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'grant ' || grantee || ' ' || privilege_type || ' ' || table_name FROM information_schema.role_table_grants WHERE grantee = 'envplane_reader'
UNION ALL SELECT 'default ' || table_name || '.' || column_name || ': ' || column_default FROM information_schema.columns WHERE table_schema = 'public' AND column_default IS NOT NULL
UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname LIKE 'envplane\_%'
ORDER BY 1`)
}

func TestCopyAtomicShadow(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema+shadowExtras+`INSERT INTO customers (email, full_name) VALUES ('old@example.com', 'Old Row');`)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	before := shape(t, dst)

	// A reader of the target sees the old rows while the copy runs.
	var mu sync.Mutex
	var seen []string
	ctx := context.Background()
	j, err := PrepareCopy(ctx, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k"), Atomic: true, Workers: 1, Tick: time.Millisecond,
		Progress: func(p Progress) {
			if p.Table == "order_lines" && p.Done {
				mu.Lock()
				seen = append(seen, query(t, dst, "SELECT email || ' ' || (SELECT count(*) FROM orders) FROM customers")...)
				seen = append(seen, query(t, dst, "SELECT count(*)::text FROM pg_namespace WHERE nspname LIKE 'envplane\\_shadow%'")...)
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := j.Run(ctx)
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"old@example.com 0", "1"}, seen); diff != "" {
		t.Errorf("the target as another connection saw it during the copy (-want +got):\n%s", diff)
	}
	if len(rep.Copied) != 3 {
		t.Errorf("copied: %v", rep.Copied)
	}
	// After the swap: the new rows, the same indexes, constraints, trigger,
	// grants and defaults, sequences moved on, no shadow schema left.
	if diff := cmp.Diff(before, shape(t, dst)); diff != "" {
		t.Errorf("the target's DDL changed (-before +after):\n%s", diff)
	}
	got := query(t, dst, `SELECT concat_ws(' ', (SELECT count(*) FROM customers), (SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id),
  nextval('customers_id_seq'), nextval('orders_id_seq'))`)
	if diff := cmp.Diff([]string{"500 1500 501 1501"}, got); diff != "" {
		t.Errorf("target facts (-want +got):\n%s", diff)
	}
	// The trigger and the foreign keys work on the new tables.
	if got := query(t, dst, "INSERT INTO orders (customer_id, total, placed_at) VALUES (1, 1, now()) RETURNING note"); got[0] != "touched" {
		t.Errorf("trigger: %v", got)
	}
	c, err := Connect(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "INSERT INTO orders (customer_id, total, placed_at) VALUES (999999, 1, now())"); err == nil || !strings.Contains(err.Error(), "orders_customer_id_fkey") {
		t.Errorf("foreign key after the swap: %v", err)
	}
}

func TestCopyAtomicInterruptedDropsShadow(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema+shadowExtras+`INSERT INTO customers (email, full_name) VALUES ('old@example.com', 'Old Row');`)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	before, rows := shape(t, dst), tableDigest(t, dst, "customers", "id")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := PrepareCopy(ctx, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k"), Atomic: true, Workers: 2, Tick: time.Millisecond,
		Progress: func(p Progress) {
			if p.Table == "orders" && p.Done {
				cancel()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := j.Run(ctx)
	j.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want an interruption, got %v", err)
	}
	if len(rep.Copied) != 0 || len(rep.Untouched) != 3 {
		t.Errorf("report: copied %v, untouched %v", rep.Copied, rep.Untouched)
	}
	if diff := cmp.Diff(before, shape(t, dst)); diff != "" {
		t.Errorf("the target's DDL changed or a shadow schema is left (-before +after):\n%s", diff)
	}
	if tableDigest(t, dst, "customers", "id") != rows {
		t.Error("the target's rows changed")
	}
}

func TestCopyAtomicRefusesViews(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema+`CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;`)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	_, err := copyOnce(t, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k"), Atomic: true})
	var ref *Refusal
	if !errors.As(err, &ref) || !strings.Contains(err.Error(), "staging: --atomic swaps table orders for a new one; view or rule big_orders depends on it: copy without --atomic") {
		t.Fatalf("want a refusal naming the view, got %v", err)
	}
	// Without --atomic the view is no obstacle.
	if _, err := copyOnce(t, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
}
