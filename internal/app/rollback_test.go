package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/errs"
)

// TestRollbackToAConfirmedRelease: a rollback confirmed for one release is
// refused once a newer release changed what the environment ran before.
func TestRollbackToAConfirmedRelease(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a := newApp(t, &now)
	ctx := context.Background()
	var ids []string
	for _, port := range []string{"80", "81", "82"} {
		files := flagWorkspace("      approvals: { required: 1 }")
		files["config.yaml"] = []byte("port: " + port + "\n")
		rel, _, err := a.CreateRelease(ctx, sys, files, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetRelease(ctx, sys, "development", rel.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rel.ID)
	}
	// The page showed "back to ids[0]"; ids[2] landed since.
	_, err := a.Rollback(ctx, sys, "development", ids[0], true)
	if !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "would now roll back to "+ids[1]+", not "+ids[0]) {
		t.Errorf("a stale confirmation: %v", err)
	}
}
