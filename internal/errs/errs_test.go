package errs_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/envplane/envplane/internal/errs"
)

func TestStatusTable(t *testing.T) {
	tests := map[errs.Kind]int{
		errs.Invalid: http.StatusBadRequest, errs.NotFound: http.StatusNotFound, errs.Conflict: http.StatusConflict,
		errs.Unauthorized: http.StatusUnauthorized, errs.Forbidden: http.StatusForbidden, errs.Internal: http.StatusInternalServerError,
		errs.TooLarge: http.StatusRequestEntityTooLarge, errs.RateLimited: http.StatusTooManyRequests, errs.Unavailable: http.StatusServiceUnavailable, errs.Unprocessable: http.StatusUnprocessableEntity,
	}
	for k, want := range tests {
		if got := k.Status(); got != want {
			t.Errorf("%v.Status() = %d, want %d", k, got, want)
		}
		if k.Code() == "" {
			t.Errorf("%d has no code", k)
		}
		if KindOfCode := errs.KindOfCode(k.Code()); KindOfCode != k {
			t.Errorf("KindOfCode(%q) = %v", k.Code(), KindOfCode)
		}
		if k.ExitCode() != errs.ExitFailure {
			t.Errorf("%v exits %d", k, k.ExitCode())
		}
	}
}

func TestPublicHidesInternalDetails(t *testing.T) {
	internal := fmt.Errorf("pq: password authentication failed for user postgres")
	k, msg, _ := errs.Public(internal)
	if k != errs.Internal || msg != "internal error; see the server log" {
		t.Errorf("Public(internal) = %v %q", k, msg)
	}
	wrapped := fmt.Errorf("loading: %w", errs.Wrap(errs.NotFound, errors.New("sql: no rows"), "release %q not found", "r1"))
	k, msg, _ = errs.Public(wrapped)
	if k != errs.NotFound || msg != `release "r1" not found` {
		t.Errorf("Public(wrapped) = %v %q", k, msg)
	}
	if !errs.Is(wrapped, errs.NotFound) {
		t.Error("Is(wrapped, NotFound) = false")
	}
}
