package data

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/domain"
)

const seedSpec = `tables:
  customers:
    count: 40
    columns:
      balance: {range: [0, 500]}
      tags: {choice: {"{vip}": 1, "{}": 3}}
      created_at: {range: ["2024-01-01", "2024-12-31"]}
  orders:
    count: 120
    columns:
      total: {range: [1, 300]}
      note: {choice: [fragile, "leave at door"]}
  order_lines:
    count: 300
    columns:
      line: {range: [1, 1000000]}
`

func TestSeed(t *testing.T) {
	t.Parallel()
	spec, err := ParseSeed("data/seed.yaml", []byte(seedSpec))
	if err != nil {
		t.Fatal(err)
	}
	dbs := []string{testDB(t, fixtureSchema), testDB(t, fixtureSchema), testDB(t, fixtureSchema)}
	for i, db := range dbs {
		seed := uint64(7)
		if i == 2 {
			seed = 8
		}
		rep, err := Seed(context.Background(), Endpoint{Env: "development", Class: domain.DataSynthetic, URL: db}, spec, seed)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if diff := cmp.Diff([]string{"customers", "orders", "order_lines"}, rep.Tables); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
	}
	facts := query(t, dbs[0], `SELECT concat_ws(' ',
  (SELECT count(*) FROM customers), (SELECT count(DISTINCT email) FROM customers),
  (SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id),
  (SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id),
  (SELECT count(*) FROM customers WHERE balance NOT BETWEEN 0 AND 500 OR created_at NOT BETWEEN '2024-01-01' AND '2025-01-01'),
  (SELECT count(*) FROM customers WHERE email NOT LIKE '%@example.com'))`)
	if diff := cmp.Diff([]string{"40 40 120 300 0 0"}, facts); diff != "" {
		t.Errorf("seeded facts (-want +got):\n%s", diff)
	}
	for _, tb := range []struct{ name, order string }{{"customers", "id"}, {"orders", "id"}, {"order_lines", "order_id, line"}} {
		if a, b := tableDigest(t, dbs[0], tb.name, tb.order), tableDigest(t, dbs[1], tb.name, tb.order); a != b {
			t.Errorf("%s: the same seed gave other rows", tb.name)
		}
		if a, c := tableDigest(t, dbs[0], tb.name, tb.order), tableDigest(t, dbs[2], tb.name, tb.order); a == c {
			t.Errorf("%s: another seed gave the same rows", tb.name)
		}
	}
	// Not empty any more, and a spec naming what is not there: every problem, nothing written.
	bad, err := ParseSeed("data/seed.yaml", []byte(seedSpec+"      qty: null\n      nope: {fake: email}\n  ghosts:\n    count: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Seed(context.Background(), Endpoint{Env: "development", URL: dbs[0]}, bad, 1)
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("want a refusal, got %v", err)
	}
	want := []string{
		"data/seed.yaml:2:3: table customers of development is not empty: seed fills empty tables only",
		"data/seed.yaml:19:3: table ghosts: not in the database of development (known: customers, order_lines, orders)",
		"data/seed.yaml:13:3: table order_lines of development is not empty: seed fills empty tables only",
		"data/seed.yaml:18:13: order_lines.nope: no such column",
		"data/seed.yaml:17:12: order_lines.qty: null, but the column is NOT NULL",
		"data/seed.yaml:8:3: table orders of development is not empty: seed fills empty tables only",
	}
	if diff := cmp.Diff(sorted(want), sorted(strings.Split(ref.Error(), "\n"))); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestParseSeedErrors(t *testing.T) {
	_, err := ParseSeed("s.yaml", []byte(`tables:
  t:
    columns:
      a: {range: [10, 1]}
      b: {choice: {x: many}}
      c: {fake: emial}
      d: {ref: nodot}
      e: {sequence: 1}
`))
	want := []string{
		`s.yaml:2:3: t: needs ` + "`count:`",
		`s.yaml:4:18: t.a: range: low 10 is above high 1`,
		`s.yaml:5:23: t.b: choice: weight of "x": expected a whole number from 0 to 1000000, found "many"`,
		`s.yaml:6:17: t.c: fake: unknown kind "emial" (did you mean email?)`,
		`s.yaml:7:16: t.d: ref: expected table.column, found "nodot"`,
		`s.yaml:8:11: t.e: unknown generator "sequence" (known: choice, fake, fixed, null, range, ref, template)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	if diff := cmp.Diff(sorted(want), sorted(strings.Split(err.Error(), "\n"))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
