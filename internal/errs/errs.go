// Package errs gives errors a kind (invalid, not found, conflict,
// unauthorized, forbidden, internal, …) and maps kinds to HTTP statuses in one
// table, so every layer can say what went wrong without knowing about HTTP,
// and the server never sends internal details to clients.
package errs

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error for callers and for the HTTP status.
type Kind uint8

const (
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthorized
	Forbidden
	TooLarge
	RateLimited
	Unavailable
	// Unprocessable is a well-formed request whose content costs more than
	// the server allows (work, resolved or rendered size).
	Unprocessable
)

// ExitFailure is the command line's exit code for every error (DESIGN §4:
// 0 success, 1 a finding, 2 bad input or failure).
const ExitFailure = 2

// table is the one place kinds meet HTTP and the command line: status, the
// error body's code, and the exit code.
var table = map[Kind]struct {
	status int
	code   string
	exit   int
}{
	Internal:      {http.StatusInternalServerError, "internal", ExitFailure},
	Invalid:       {http.StatusBadRequest, "invalid", ExitFailure},
	NotFound:      {http.StatusNotFound, "not_found", ExitFailure},
	Conflict:      {http.StatusConflict, "conflict", ExitFailure},
	Unauthorized:  {http.StatusUnauthorized, "unauthorized", ExitFailure},
	Forbidden:     {http.StatusForbidden, "forbidden", ExitFailure},
	TooLarge:      {http.StatusRequestEntityTooLarge, "too_large", ExitFailure},
	RateLimited:   {http.StatusTooManyRequests, "rate_limited", ExitFailure},
	Unavailable:   {http.StatusServiceUnavailable, "unavailable", ExitFailure},
	Unprocessable: {http.StatusUnprocessableEntity, "unprocessable", ExitFailure},
}

// ExitCode is the command line's exit code for an error of this kind.
func (k Kind) ExitCode() int { return table[k].exit }

// KindOfCode is the kind whose error-body code is code (Internal for an
// unknown one): how a client turns an API answer back into a kind.
func KindOfCode(code string) Kind {
	for k, row := range table {
		if row.code == code {
			return k
		}
	}
	return Internal
}

// Status is the HTTP status for a kind.
func (k Kind) Status() int { return table[k].status }

// Code is the machine-readable code in error bodies.
func (k Kind) Code() string { return table[k].code }

func (k Kind) String() string { return table[k].code }

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error with a kind and a message safe to show to clients. The
// cause, if any, is for logs only.
type Error struct {
	Kind    Kind
	Message string
	Fields  []FieldError
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil && e.Message == "" {
		return e.Cause.Error()
	}
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// E builds an Error of kind with a formatted client-safe message.
func E(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a kind and a client-safe message to a cause.
func Wrap(kind Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// KindOf returns the kind of err: Internal for errors without one.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// Public returns what may be shown to a client: the message of a kinded
// error, or a generic text for internal ones (whose details go to logs).
func Public(err error) (Kind, string, []FieldError) {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Kind, e.Message, e.Fields
	}
	return Internal, "internal error; see the server log", nil
}

// FieldErrors collects problems with a request's fields, reported together.
type FieldErrors []FieldError

// Add records a problem with field.
func (f *FieldErrors) Add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns the problems as one Invalid error, or nil when there are none.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Message: "the request is not valid", Fields: f}
}

// Field is one problem with one field as an Invalid error.
func Field(field, message string) error {
	return FieldErrors{{Field: field, Message: message}}.Err()
}

// FieldsOf returns the field errors of an Invalid error (nil otherwise),
// so that callers can report them together with their own.
func FieldsOf(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) && e.Kind == Invalid {
		return e.Fields
	}
	return nil
}
