package data

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/envplane/envplane/internal/domain"
)

// testDB creates a fresh database on $ENVPLANE_TEST_POSTGRES_URL's server
// and drops it after the test; it skips without the variable.
func testDB(t *testing.T, sql string) string {
	t.Helper()
	base := os.Getenv("ENVPLANE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("ENVPLANE_TEST_POSTGRES_URL is not set (postgres://user@host:5432/db?sslmode=disable): skipping PostgreSQL tests")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "envplane_data_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if sql != "" {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	return u.String()
}

const fixtureSchema = `
CREATE TABLE customers (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  full_name text NOT NULL,
  phone varchar(20),
  ssn text,
  birth_date date,
  balance numeric(12,2) NOT NULL DEFAULT 0,
  tags text[],
  profile jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers(id),
  total numeric(10,2) NOT NULL,
  note text,
  placed_at timestamp NOT NULL
);
CREATE TABLE order_lines (
  order_id int NOT NULL REFERENCES orders(id),
  line int NOT NULL,
  sku text NOT NULL,
  qty int NOT NULL,
  PRIMARY KEY (order_id, line)
);`

const fixtureRows = `
INSERT INTO customers (email, full_name, phone, ssn, birth_date, balance, tags, profile, created_at)
SELECT 'person' || i || '@acme-corp.test', 'Zebulon Quixote' || i, '+1 415 555 ' || lpad(i::text, 4, '0'),
       '123-45-' || lpad(i::text, 4, '0'), CASE WHEN i % 7 = 0 THEN NULL ELSE date '1980-01-01' + i END,
       i * 1.25, CASE WHEN i % 5 = 0 THEN NULL ELSE ARRAY['vip', 'tag' || i] END,
       CASE WHEN i % 2 = 0 THEN jsonb_build_object('secret', 'Zebulon' || i) END, timestamptz '2024-01-01' + i * interval '1 hour'
FROM generate_series(1, 500) i;
INSERT INTO orders (customer_id, total, note, placed_at)
SELECT 1 + i % 500, i * 0.5, CASE WHEN i % 3 = 0 THEN NULL ELSE 'call Zebulon Quixote' || (1 + i % 500) || ' at the back door' END,
       timestamp '2024-06-01' + i * interval '1 minute'
FROM generate_series(1, 1500) i;
INSERT INTO order_lines SELECT o.id, l, 'SKU-' || l, l FROM orders o, generate_series(1, 2) l;`

const fixtureRules = `key: ANON_HASH_KEY
tables:
  customers:
    id: keep
    email: {fake: email}
    full_name: {fake: name}
    phone: {mask: {last: 2}}
    ssn: null
    birth_date: {noise: 365d}
    balance: {noise: 0.1}
    tags: keep
    profile: {fixed: {}}
    created_at: {noise: 30d}
  orders:
    id: keep
    total: keep
    note: {hash: hex}
    placed_at: {noise: 2h}
  order_lines:
    order_id: keep
    line: keep
    sku: keep
    qty: keep
`

func rulesOf(t *testing.T, src string) *Rules {
	t.Helper()
	r, err := ParseRules("data/rules.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func copyOnce(t *testing.T, from, to Endpoint, rules *Rules, opts CopyOptions) (*Report, error) {
	t.Helper()
	ctx := context.Background()
	j, err := PrepareCopy(ctx, from, to, rules, opts)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	return j.Run(ctx)
}

func query(t *testing.T, dsn, q string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tableDigest is an md5 of a table's rows in key order.
func tableDigest(t *testing.T, dsn, table, order string) string {
	return query(t, dsn, fmt.Sprintf("SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY %s)), '') FROM %s x", order, table))[0]
}

func TestCopyAnonymises(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows+"ANALYZE;")
	dst1 := testDB(t, fixtureSchema)
	dst2 := testDB(t, fixtureSchema)
	dst3 := testDB(t, fixtureSchema)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	rules := rulesOf(t, fixtureRules)
	for i, dst := range []string{dst1, dst2, dst3} {
		opts := CopyOptions{Key: []byte("k1"), Atomic: i == 1}
		if i == 2 { // large tables read in key ranges by parallel readers
			opts.SplitRows, opts.Workers = 400, 3
		}
		rep, err := copyOnce(t, from, Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}, rules, opts)
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if diff := cmp.Diff(map[string]int64{"customers": 500, "orders": 1500, "order_lines": 3000}, rep.Rows); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	}
	// No source e-mail, name or phone anywhere in any text of the target.
	var leaks []string
	for _, tb := range []string{"customers", "orders", "order_lines"} { // every column of every row, as text
		leaks = append(leaks, query(t, dst1, `SELECT x::text FROM `+tb+` x WHERE x::text ~ '(acme-corp|Zebulon|Quixote|555 0|123-45-)'`)...)
	}
	if len(leaks) > 0 {
		t.Errorf("source values in the target: %q", leaks[:min(3, len(leaks))])
	}
	// Joins hold, uniques stay unique, NULLs stay NULL, sequences moved on.
	got := query(t, dst1, `SELECT concat_ws(' ',
  (SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id),
  (SELECT count(DISTINCT email) FROM customers),
  (SELECT count(*) FROM customers WHERE birth_date IS NULL),
  (SELECT count(*) FROM customers WHERE tags IS NULL),
  (SELECT count(*) FROM orders WHERE note IS NULL),
  (SELECT count(*) FROM customers WHERE ssn IS NOT NULL),
  (SELECT count(*) FROM customers WHERE profile <> '{}'::jsonb),
  (SELECT nextval('customers_id_seq')))`)
	if diff := cmp.Diff([]string{"1500 500 71 100 500 0 0 501"}, got); diff != "" {
		t.Errorf("target facts (-want +got):\n%s", diff)
	}
	// Deterministic: the plain, the atomic and the split copy wrote the
	// same rows.
	for _, tb := range []struct{ name, order string }{{"customers", "id"}, {"orders", "id"}, {"order_lines", "order_id, line"}} {
		if a, b := tableDigest(t, dst1, tb.name, tb.order), tableDigest(t, dst2, tb.name, tb.order); a != b {
			t.Errorf("%s differs between two copies", tb.name)
		}
		if a, b := tableDigest(t, dst1, tb.name, tb.order), tableDigest(t, dst3, tb.name, tb.order); a != b {
			t.Errorf("%s differs between the plain and the split copy", tb.name)
		}
	}
	// A second copy into a target with rows replaces them.
	if _, err := copyOnce(t, from, Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst1, Key: "database.url"}, rules, CopyOptions{Key: []byte("k1")}); err != nil {
		t.Fatal(err)
	}
	if got := query(t, dst1, "SELECT count(*)::text FROM orders"); got[0] != "1500" {
		t.Errorf("after a second copy: %s orders", got[0])
	}
}

func TestCopyRefuses(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema)
	misfit := testDB(t, strings.NewReplacer(
		"phone varchar(20),", "phone varchar(20), extra text NOT NULL,",
		"total numeric(10,2) NOT NULL,", "total numeric(12,2) NOT NULL,",
		"  qty int NOT NULL,\n", "",
		"ssn text,", "ssn text NOT NULL, UNIQUE (full_name),",
	).Replace(fixtureSchema))
	live := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	staging := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	partial := strings.Replace(fixtureRules, "    note: {hash: hex}\n", "", 1)
	partial = strings.Replace(partial, "    phone: {mask: {last: 2}}\n", "", 1)
	tests := []struct {
		name     string
		from, to Endpoint
		rules    string
		tables   []string
		want     []string
	}{
		{"unclassified into a lower class", live, staging, partial, nil, []string{
			"data/rules.yaml: customers.phone (character varying(20)): no rule, and staging (anonymized) is a lower data class than production (live); suggested: {fake: phone} (name says phone)",
			"data/rules.yaml: orders.note (text): no rule, and staging (anonymized) is a lower data class than production (live); suggested: {hash: hex} (free text)",
		}},
		{"live target", staging, Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}, fixtureRules, nil, []string{
			"envplane.yaml: environment production holds live data: envplane never copies into it",
		}},
		{"same database", live, Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: strings.Replace(src, "127.0.0.1", "localhost", 1), Key: "database.url"}, fixtureRules, nil, []string{
			"envplane.yaml: production and staging have the same database (database.url): a copy would overwrite its own source",
		}},
		{"schema misfit", live, Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: misfit, Key: "database.url"}, fixtureRules, nil, []string{
			"data/rules.yaml:8:10: target: column customers.ssn is NOT NULL; the rule null empties it",
			"data/rules.yaml:6:16: target: customers.full_name: unique index customers_full_name_key is only in the target; {fake: name} can map two values to one",
			"target: column customers.extra is NOT NULL without a default and not in the source",
			"target: column orders.total is numeric(12,2); the source's is numeric(10,2)",
			"target: column order_lines.qty is missing (expected integer)",
		}},
		{"rules that do not fit", live, staging, strings.NewReplacer(
			"    id: keep\n    email", "    id: {mask: {last: 1}}\n    email",
			"sku: keep", "sku: {noise: 1d}",
			"total: keep", "total: {fake: name}\n    customer_id: {hash: int}",
			"full_name: {fake: name}", "full_name: {fake: name}\n    nickname: keep",
		).Replace(fixtureRules), nil, []string{
			"data/rules.yaml:4:9: customers.id (bigint): {mask: {last: 1}} makes text; the column is not text (use fixed, null, noise or hash)",
			"data/rules.yaml:7:15: customers.nickname: no such column in the source (known: id, email, full_name, phone, ssn, birth_date, balance, tags, profile, created_at)",
			"data/rules.yaml:4:9: customers.id: unique index customers_pkey (id): {mask: {last: 1}} can map two values to one; use keep, {hash: …} or {fake: email}",
			"data/rules.yaml:18:18: orders.customer_id: rule {hash: int} differs from {mask: {last: 1}} of customers.id, which it references (orders_customer_id_fkey): the join would break; give it the same rule or leave it out to follow",
			"data/rules.yaml:17:12: orders.total (numeric(10,2)): {fake: name} makes text; the column is not text (use fixed, null, noise or hash)",
			"data/rules.yaml:24:10: order_lines.sku (text): {noise: 1d} moves dates and timestamps; for numbers give a fraction like {noise: 0.1}",
		}},
	}
	tests = append(tests, struct {
		name     string
		from, to Endpoint
		rules    string
		tables   []string
		want     []string
	}{"a referencing table left out", live, staging, fixtureRules, []string{"customers", "order_lines"}, []string{
		"target: table orders references customers (orders_customer_id_fkey) but is not copied: copy it too, or its rows would point at rows that are gone",
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tableDigest(t, tt.to.URL, "customers", "id")
			_, err := copyOnce(t, tt.from, tt.to, rulesOf(t, tt.rules), CopyOptions{Key: []byte("k"), Tables: tt.tables})
			var ref *Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("want a refusal, got %v", err)
			}
			var got []string
			for _, d := range ref.Problems {
				got = append(got, d.Error())
			}
			if diff := cmp.Diff(tt.want, got, cmp.Transformer("sort", sorted)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if after := tableDigest(t, tt.to.URL, "customers", "id"); after != before {
				t.Error("the target changed")
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestCopyInterrupted(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema+`INSERT INTO customers (email, full_name) VALUES ('old@example.com', 'Old Row');`)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	before := tableDigest(t, dst, "customers", "id")
	for _, atomic := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		j, err := PrepareCopy(ctx, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k"), Atomic: atomic, Workers: 1,
			Progress: func(p Progress) {
				if p.Table == "orders" { // stop once the second table is under way
					cancel()
				}
			}, Tick: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := j.Run(ctx)
		j.Close()
		cancel()
		if err == nil {
			t.Fatalf("atomic=%v: the copy was not interrupted", atomic)
		}
		if atomic {
			if got := tableDigest(t, dst, "customers", "id"); got != before {
				t.Error("atomic: the target changed")
			}
			continue
		}
		if diff := cmp.Diff([]string{"customers"}, rep.Copied); diff != "" {
			t.Errorf("copied (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"orders", "order_lines"}, rep.Untouched); diff != "" {
			t.Errorf("untouched (-want +got):\n%s", diff)
		}
		if got := query(t, dst, "SELECT count(*)::text FROM customers UNION ALL SELECT count(*)::text FROM orders"); !cmp.Equal(got, []string{"500", "0"}) {
			t.Errorf("after the interruption: customers, orders = %v", got)
		}
	}
}

// A foreign key from a copied table into one that is not copied is checked
// after the load; one between two copied tables holds by construction (the
// source's, validated) and is not read again.
func TestCopyChecksForeignKeysIntoUncopiedTables(t *testing.T) {
	t.Parallel()
	src := testDB(t, fixtureSchema+fixtureRows)
	dst := testDB(t, fixtureSchema)
	from := Endpoint{Env: "production", Class: domain.DataLive, URL: src, Key: "database.url"}
	to := Endpoint{Env: "staging", Class: domain.DataAnonymized, URL: dst, Key: "database.url"}
	_, err := copyOnce(t, from, to, rulesOf(t, fixtureRules), CopyOptions{Key: []byte("k1"), Tables: []string{"orders", "order_lines"}})
	if err == nil || !strings.Contains(err.Error(), "staging: orders.(customer_id) → customers.(id): 1500 rows reference no row (orders_customer_id_fkey)") {
		t.Errorf("copy of orders without customers: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "order_lines") {
		t.Errorf("order_lines → orders was checked again: %v", err)
	}
}
