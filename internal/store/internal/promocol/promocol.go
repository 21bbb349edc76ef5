// Package promocol converts promotion data to and from the JSON text the
// stores keep it in: an environment's gates (NULL for none) and a
// promotion's body.
package promocol

import (
	"encoding/json"

	"github.com/envplane/envplane/internal/domain"
)

// EncodeGates is the column value of g: nil (NULL) for none.
func EncodeGates(g *domain.PromotionGates) (any, error) {
	if g == nil {
		return nil, nil
	}
	b, err := json.Marshal(g)
	return string(b), err
}

// DecodeGates reads a gates column; "" (NULL) is none.
func DecodeGates(s string) (*domain.PromotionGates, error) {
	if s == "" {
		return nil, nil
	}
	var g domain.PromotionGates
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// Encode is a promotion's data column.
func Encode(p domain.Promotion) (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

// Decode reads a promotion's data column.
func Decode(s string) (domain.Promotion, error) {
	var p domain.Promotion
	err := json.Unmarshal([]byte(s), &p)
	return p, err
}

// EncodeFlagChange is a flag change request's data column.
func EncodeFlagChange(c domain.FlagChange) (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}

// DecodeFlagChange reads a flag change request's data column.
func DecodeFlagChange(s string) (domain.FlagChange, error) {
	var c domain.FlagChange
	err := json.Unmarshal([]byte(s), &c)
	return c, err
}
