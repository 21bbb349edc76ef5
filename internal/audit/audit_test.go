package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/sqlite"
)

func TestChain(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for i := 0; i < 5; i++ {
		err := st.WithTx(ctx, func(tx store.Tx) error {
			_, err := audit.Append(ctx, tx, now.Add(time.Duration(i)*time.Second), audit.Record{Actor: "ci", Action: "release.create", Target: "rel_x", Details: map[string]any{"n": i}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := audit.Verify(ctx, st)
	if err != nil || !res.OK || res.Entries != 5 {
		t.Fatalf("Verify = %+v, %v; want ok with 5 entries", res, err)
	}
	entries, _ := st.ListAudit(ctx, 0, 0)
	if entries[0].PrevHash != audit.Genesis || entries[1].PrevHash != entries[0].Hash {
		t.Error("entries do not chain")
	}
	// Any change to any field breaks the hash.
	e := entries[2]
	for name, mutate := range map[string]func(*store.AuditEntry){
		"actor":   func(e *store.AuditEntry) { e.Actor = "mallory" },
		"action":  func(e *store.AuditEntry) { e.Action = "token.create" },
		"target":  func(e *store.AuditEntry) { e.Target = "rel_y" },
		"details": func(e *store.AuditEntry) { e.Details = []byte(`{"n":9}`) },
		"time":    func(e *store.AuditEntry) { e.At = e.At.Add(time.Microsecond) },
		"seq":     func(e *store.AuditEntry) { e.Seq++ },
	} {
		m := e
		mutate(&m)
		if audit.Hash(m) == e.Hash {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}
