package flags

import (
	"github.com/envplane/envplane/internal/diag"
)

// Reason is an OpenFeature resolution reason.
type Reason string

// The reasons an evaluation reports (OpenFeature's names).
const (
	ReasonStatic         Reason = "STATIC"
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	ReasonSplit          Reason = "SPLIT" // never returned: flagd reports fractional buckets as TARGETING_MATCH
	ReasonDefault        Reason = "DEFAULT"
	ReasonDisabled       Reason = "DISABLED"
	ReasonError          Reason = "ERROR"
)

// ErrorCode is an OpenFeature error code; empty when there is no error.
type ErrorCode string

// The error codes an evaluation reports (OpenFeature's names).
const (
	ErrFlagNotFound        ErrorCode = "FLAG_NOT_FOUND"
	ErrParse               ErrorCode = "PARSE_ERROR"
	ErrTypeMismatch        ErrorCode = "TYPE_MISMATCH"
	ErrTargetingKeyMissing ErrorCode = "TARGETING_KEY_MISSING"
	ErrInvalidContext      ErrorCode = "INVALID_CONTEXT"
	ErrGeneral             ErrorCode = "GENERAL"
)

// Type is the type of a flag's variants, or the type a caller asks for.
type Type uint8

// Flag types. Any asks for a value of whatever type the flag has.
const (
	Any Type = iota
	Boolean
	String
	Integer
	Float
	Object
)

var typeNames = [...]string{"any", "boolean", "string", "integer", "float", "object"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// Result is the outcome of evaluating one flag. Value is the caller's
// default whenever ErrorCode is set, the flag is disabled, or it has no
// default variant and targeting chose none. Metadata is shared: do not
// modify it.
type Result struct {
	Key          string
	Value        any
	Variant      string
	Reason       Reason
	ErrorCode    ErrorCode
	ErrorMessage string
	Metadata     map[string]any
}

// Problem is something wrong in a flag file: where, which flag and field,
// and what is expected. A problem with a Flag makes that flag evaluate to
// PARSE_ERROR; one without a Flag concerns the whole file.
type Problem struct {
	Pos     diag.Pos
	Flag    string
	Field   string // e.g. "targeting", "defaultVariant", "environments.staging"
	Message string
}

func (p Problem) Error() string { return p.Diagnostic().Error() }

// Diagnostic is the problem as a positioned message naming flag and field.
func (p Problem) Diagnostic() diag.Diagnostic {
	msg := p.Message
	switch {
	case p.Flag != "" && p.Field != "":
		msg = "flag " + p.Flag + ": " + p.Field + ": " + msg
	case p.Flag != "":
		msg = "flag " + p.Flag + ": " + msg
	case p.Field != "":
		msg = p.Field + ": " + msg
	}
	return diag.Diagnostic{Pos: p.Pos, Message: msg}
}
