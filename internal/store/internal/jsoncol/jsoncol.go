// Package jsoncol encodes the small maps and lists that both backends keep in
// text columns as JSON. nil encodes as "null" and decodes back to nil, so a
// nil and an empty value each round-trip as themselves.
package jsoncol

import "encoding/json"

// Encode returns the JSON text of v.
func Encode(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// Map decodes a map[string]string column.
func Map(s string) (map[string]string, error) {
	var m map[string]string
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// List decodes a []string column.
func List(s string) ([]string, error) {
	var l []string
	err := json.Unmarshal([]byte(s), &l)
	return l, err
}
