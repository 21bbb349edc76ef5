package data

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRules(t *testing.T) {
	tests := []struct {
		name, src string
		want      map[string]string // table.column → rule as printed
		errs      []string
	}{
		{
			name: "contract",
			src: `key: ANON_HASH_KEY
tables:
  customers:
    id: keep
    email: {fake: email}
    phone: {mask: {last: 2}}
    ssn: null
    birth_date: {noise: 365d}
    balance: {noise: 0.1}
    profile: {fixed: {}}
    code: {template: "c-{id}"}
  orders:
    note: {hash: hex}
`,
			want: map[string]string{
				"customers.id": "keep", "customers.email": "{fake: email}", "customers.phone": "{mask: {last: 2}}",
				"customers.ssn": "null", "customers.birth_date": "{noise: 365d}", "customers.balance": "{noise: 0.1}",
				"customers.profile": "{fixed: {}}", "customers.code": `{template: "c-{id}"}`, "orders.note": "{hash: hex}",
			},
		},
		{
			name: "every problem at once",
			src: `key: K
tables:
  customers:
    email: {fake: emial}
    phone: {mask: {last: x}}
    ssn: drop
    birth_date: {noise: soon}
    note: {hash: sha1}
    x: {fake: email, hash: hex}
  orders: [a]
colour: red
`,
			errs: []string{
				`r.yaml:4:19: customers.email: fake: unknown kind "emial" (did you mean email?)`,
				`r.yaml:5:26: customers.phone: mask.last: expected a whole number from 0 to 1000, found "x"`,
				`r.yaml:6:10: customers.ssn: unknown rule "drop"; expected keep, null or one of {fake: …}, {mask: …}, {noise: …}, {fixed: …}, {hash: …}, {template: …}`,
				`r.yaml:7:25: customers.birth_date: noise: expected an interval like 365d, 12h or 30m (dates, timestamps) or a fraction like 0.1 (numbers), found "soon"`,
				`r.yaml:8:18: customers.note: hash: "sha1" is not one of hex | uuid | int | email`,
				`r.yaml:9:8: customers.x: expected keep, null or a mapping with one rule, like {fake: email}, found a mapping`,
				`r.yaml:10:11: orders: expected a mapping of column: rule, found a list`,
				`r.yaml:11:1: rules file: unknown field "colour" (known: key, tables)`,
			},
		},
		{
			name: "missing key",
			src:  "tables: {t: {c: keep}}\n",
			errs: []string{"r.yaml:1:1: rules file: missing `key:`, the secret (or variable) of the target environment that keys the transformers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRules("r.yaml", []byte(tt.src))
			if tt.errs != nil {
				if err == nil {
					t.Fatal("no error")
				}
				if diff := cmp.Diff(tt.errs, strings.Split(err.Error(), "\n")); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for tn, cols := range rs.Tables {
				for cn, r := range cols {
					got[tn+"."+cn] = r.String()
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTransformersAreDeterministicAndKeyed(t *testing.T) {
	cols := []Column{{Name: "email", Category: "S", TypName: "text"}, {Name: "id", TypName: "int8", OID: 20, Category: "N"}}
	plan := func(r string) []colT {
		c := colT{idx: 0, col: cols[0], rule: mustRule(r)}
		c.tmpl, _ = parseTemplate(c.rule.Arg, cols)
		return []colT{c}
	}
	run := func(key, rule, in string) string {
		tr := newTransformer([]byte(key), cols, plan(rule))
		f := [][]byte{[]byte(in), {0, 0, 0, 0, 0, 0, 0, 1}}
		if err := tr.row(f); err != nil {
			t.Fatal(err)
		}
		return string(f[0])
	}
	for _, rule := range []string{"{fake: email}", "{fake: name}", "{fake: phone}", "{hash: hex}", "{hash: email}", "{fake: iban}", "{fake: card}"} {
		a, b := run("k1", rule, "ann@acme.com"), run("k1", rule, "ann@acme.com")
		if a != b {
			t.Errorf("%s: two runs differ: %q, %q", rule, a, b)
		}
		if run("k2", rule, "ann@acme.com") == a {
			t.Errorf("%s: another key gives the same value %q", rule, a)
		}
		if strings.Contains(a, "ann") || strings.Contains(a, "acme") {
			t.Errorf("%s: %q shows the input", rule, a)
		}
	}
	if got := run("k", "{mask: {last: 2}}", "555-1234"); got != "***-**34" {
		t.Errorf("mask: got %q", got)
	}
	if got := run("k", "{mask: {first: 1, char: x}}", "secret"); got != "sxxxxx" {
		t.Errorf("mask first: got %q", got)
	}
	if got := run("k", `{template: "u{id}@example.com"}`, "x"); got != "u1@example.com" {
		t.Errorf("template: got %q", got)
	}
	if got := run("k", "{fake: iban}", "x"); !ibanOK(got) {
		t.Errorf("iban %q does not check", got)
	}
	if got := run("k", "{fake: card}", "x"); !luhnOK(got) {
		t.Errorf("card %q does not check", got)
	}
}

func TestSuggestFromSamples(t *testing.T) {
	tbl := &Table{Name: "t"}
	tests := []struct {
		col     string
		samples []string
		want    string
	}{
		{"contact", []string{"a@b.com", "c@d.org"}, "{fake: email}"},
		{"x", []string{"123-45-6789", "987-65-4321"}, "{fake: ssn}"},
		{"x", []string{"4111 1111 1111 1111"}, "{fake: card}"},
		{"x", []string{"GB82WEST12345698765432"}, "{fake: iban}"},
		{"x", []string{"10.0.0.1", "192.168.1.20"}, "{fake: ip}"},
		{"x", []string{"+1 415 555 0100"}, "{fake: phone}"},
		{"full_name", nil, "{fake: name}"},
		{"home_address", nil, "{fake: address}"},
		{"x", []string{"this is a long free text comment about the customer"}, "{hash: hex}"},
		{"status", []string{"active", "closed"}, "keep"},
	}
	for _, tt := range tests {
		got, _ := Suggest(tbl, Column{Name: tt.col, Category: "S", TypName: "text"}, tt.samples)
		if got != tt.want {
			t.Errorf("%s %q: got %s, want %s", tt.col, tt.samples, got, tt.want)
		}
	}
}
