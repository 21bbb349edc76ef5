package domain

import (
	"encoding/json"
	"time"
)

// FlagOverride changes one flag in one environment without a release: any
// of its state, default variant and targeting (nil: the release's). It
// holds while new releases keep the flag's variants (VariantsDigest).
type FlagOverride struct {
	Environment    string
	Key            string
	State          *string
	DefaultVariant *string
	Targeting      json.RawMessage
	// VariantsDigest identifies the flag's variants when the override was
	// set; a release that changes them drops the override.
	VariantsDigest string
	UpdatedAt      time.Time
	UpdatedBy      string
}

const (
	// EventFlag is a change of a flag override; ID is the flag's key.
	EventFlag EventKind = "flag"

	ActionFlagOverride      AuditAction = "flag.override"
	ActionFlagOverrideClear AuditAction = "flag.override-clear"
	ActionFlagOverrideDrop  AuditAction = "flag.override-drop"
)
