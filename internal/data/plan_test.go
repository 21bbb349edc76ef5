package data

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassifyFollowsForeignKeys(t *testing.T) {
	schema := func(childType string) *Schema {
		return &Schema{Tables: map[string]*Table{
			"accounts": {Schema: "public", Name: "accounts", PrimaryKey: []string{"id"},
				Columns: []Column{{Name: "id", Type: "bigint", TypName: "int8", NotNull: true}},
				Uniques: []Index{{Name: "accounts_pkey", Columns: []string{"id"}}}},
			"events": {Schema: "public", Name: "events",
				Columns:     []Column{{Name: "account_id", Type: childType, TypName: map[string]string{"bigint": "int8", "integer": "int4"}[childType]}},
				ForeignKeys: []ForeignKey{{Name: "events_account_id_fkey", Columns: []string{"account_id"}, RefTable: "accounts", RefColumns: []string{"id"}}}},
		}}
	}
	tests := []struct {
		name, child, rules string
		want               string // events.account_id's rule
		problems           []string
	}{
		{"follows", "bigint", "key: K\ntables: {accounts: {id: {hash: int}}}", "{hash: int}", nil},
		{"same rule written out", "bigint", "key: K\ntables: {accounts: {id: {hash: int}}, events: {account_id: {hash: int}}}", "{hash: int}", nil},
		{"another rule", "bigint", "key: K\ntables: {accounts: {id: {hash: int}}, events: {account_id: {noise: 0.1}}}", "{noise: 0.1}", []string{
			"r.yaml:2:60: events.account_id: rule {noise: 0.1} differs from {hash: int} of accounts.id, which it references (events_account_id_fkey): the join would break; give it the same rule or leave it out to follow",
		}},
		{"another width", "integer", "key: K\ntables: {accounts: {id: {hash: int}}}", "{hash: int}", []string{
			"r.yaml:2:25: events.account_id (integer) follows {hash: int} of accounts.id (bigint): {hash: int} fills the column's width, so the two would not join; give both columns the same type or use another rule",
		}},
		{"parent kept", "bigint", "key: K\ntables: {accounts: {id: keep}}", "keep", nil},
		{"nothing to follow", "bigint", "key: K\ntables: {}", "unclassified", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := ParseRules("r.yaml", []byte(tt.rules))
			if err != nil {
				t.Fatal(err)
			}
			c := Classify(schema(tt.child), rules, nil, nil)
			if got := c.Columns["events"][0].Rule.String(); got != tt.want {
				t.Errorf("rule: got %s, want %s", got, tt.want)
			}
			var got []string
			for _, p := range c.Problems {
				got = append(got, p.Error())
			}
			if diff := cmp.Diff(tt.problems, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
