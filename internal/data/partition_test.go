package data

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
)

// A declaratively partitioned table, two levels deep, with a default
// partition, a partitioned index and a foreign key into it.
const partitionSchema = `
CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);
CREATE TABLE events (
  id bigserial,
  at date NOT NULL,
  kind text NOT NULL,
  email text NOT NULL,
  account_id int REFERENCES accounts(id),
  PRIMARY KEY (id, at, kind)
) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY LIST (kind);
CREATE TABLE events_2024_a PARTITION OF events_2024 FOR VALUES IN ('a');
CREATE TABLE events_2024_rest PARTITION OF events_2024 DEFAULT;
CREATE INDEX events_email ON events (email);
`

const partitionRows = `
INSERT INTO accounts SELECT i, 'owner' || i || '@acme-corp.test' FROM generate_series(1, 10) i;
INSERT INTO events (at, kind, email, account_id)
SELECT date '2023-06-01' + (i % 400), CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END, 'user' || i || '@acme-corp.test', 1 + i % 10
FROM generate_series(1, 900) i;
ANALYZE;`

const partitionRules = `key: K
tables:
  accounts:
    id: keep
    email: {fake: email}
  events:
    id: keep
    at: keep
    kind: keep
    email: {fake: email}
    account_id: keep
`

// rowsByPartition counts each leaf partition's rows.
func rowsByPartition(t *testing.T, dsn string) []string {
	return query(t, dsn, `SELECT p || ' ' || n FROM (SELECT tableoid::regclass::text p, count(*) n FROM events GROUP BY 1) x ORDER BY 1`)
}

func TestCopyPartitioned(t *testing.T) {
	t.Parallel()
	src := testDB(t, partitionSchema+partitionRows)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	rules := rulesOf(t, partitionRules)
	want := rowsByPartition(t, src)
	if len(want) != 3 {
		t.Fatalf("fixture: %q", want)
	}

	// The plan lists the parent with its partitions; the partitions need no rules.
	cls, err := PlanSource(t.Context(), from, rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"accounts", "events"}, cls.Tables); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"public.events_2023", "public.events_2024", "public.events_2024_a", "public.events_2024_rest"}, cls.Partitions["events"]); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
	if n := len(cls.Unclassified()); n != 0 || len(cls.Problems) > 0 {
		t.Errorf("unclassified %d, problems %v", n, cls.Problems)
	}

	for _, atomic := range []bool{false, true} {
		dst := testDB(t, partitionSchema+`INSERT INTO accounts VALUES (99, 'old@example.com');
INSERT INTO events (at, kind, email, account_id) VALUES ('2024-02-02', 'a', 'old@example.com', 99);`)
		to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
		for round := 0; round < 2; round++ { // a second copy replaces the first
			opts := CopyOptions{Key: []byte("k"), Atomic: atomic, SplitRows: 300, Workers: 3}
			rep, err := copyOnce(t, from, to, rules, opts)
			if err != nil {
				t.Fatalf("atomic=%v round %d: %v", atomic, round, err)
			}
			if diff := cmp.Diff(map[string]int64{"accounts": 10, "events": 900}, rep.Rows); diff != "" {
				t.Errorf("atomic=%v: rows (-want +got):\n%s", atomic, diff)
			}
		}
		// Every row in the partition it belongs to, anonymised, joins intact.
		if diff := cmp.Diff(want, rowsByPartition(t, dst)); diff != "" {
			t.Errorf("atomic=%v: rows by partition (-want +got):\n%s", atomic, diff)
		}
		got := query(t, dst, `SELECT concat_ws(' ',
  (SELECT count(*) FROM events WHERE email LIKE '%acme-corp%' OR email = 'old@example.com'),
  (SELECT count(*) FROM events e JOIN accounts a ON a.id = e.account_id),
  (SELECT count(DISTINCT email) FROM events),
  (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE 'events%' AND relkind IN ('r', 'p')),
  (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'events%' OR tablename LIKE 'events%'),
  (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'envplane\_%'),
  (SELECT nextval('events_id_seq') > 900))`)
		if diff := cmp.Diff([]string{"0 900 900 events,events_2023,events_2024,events_2024_a,events_2024_rest 10 0 t"}, got); diff != "" {
			t.Errorf("atomic=%v: target facts (-want +got):\n%s", atomic, diff)
		}
		if atomic { // the swapped-in tables are partitions of the new parent, in public
			got := query(t, dst, `SELECT c.relname || ' ' || n.nspname || ' ' || coalesce(pg_get_expr(c.relpartbound, c.oid), '-') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 'events\_2%' AND c.relkind IN ('r', 'p') ORDER BY 1`)
			want := []string{
				"events_2023 public FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
				"events_2024 public FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
				"events_2024_a public FOR VALUES IN ('a')",
				"events_2024_rest public DEFAULT",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("partitions after the swap (-want +got):\n%s", diff)
			}
		}
	}

	// A row the target has no partition for: that table fails, nothing half-written.
	dst := testDB(t, strings.Replace(partitionSchema, "CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');", "", 1))
	_, err = copyOnce(t, from, Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}, rules, CopyOptions{Key: []byte("k")})
	if err == nil || !strings.Contains(err.Error(), "no partition of relation") {
		t.Errorf("copy into a target without the partition: %v", err)
	}
	if got := query(t, dst, "SELECT count(*)::text FROM events"); got[0] != "0" {
		t.Errorf("events after the failed copy: %s", got[0])
	}
}
