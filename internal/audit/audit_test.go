package audit_test

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/sqlite"
)

var (
	key      = bytes.Repeat([]byte{1}, audit.MinKeySize)
	otherKey = bytes.Repeat([]byte{2}, audit.MinKeySize)
	base     = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
)

func chain(t *testing.T, k []byte, previous ...[]byte) *audit.Chain {
	t.Helper()
	c, err := audit.NewChain(k, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture is a SQLite log of n entries signed by c, and a raw handle on
// the same file for tampering as someone with database access would.
func fixture(t *testing.T, c *audit.Chain, n int) (*sqlite.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	appendN(t, st, c, n)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return st, raw
}

func appendN(t *testing.T, st store.Store, c *audit.Chain, n int) {
	t.Helper()
	for range n {
		err := st.WithTx(t.Context(), func(tx store.Tx) error {
			_, err := c.Append(t.Context(), tx, base, audit.Record{Actor: "ci", Action: "release.create", Target: "rel_x", Details: map[string]any{"n": 1}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func exec(t *testing.T, raw *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := raw.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// resign rewrites every hash from entry `from` on with hash, as an attacker
// who edited entry `from` would to keep the chain linked.
func resign(t *testing.T, st store.Store, raw *sql.DB, from int64, hash func(store.AuditEntry) string) {
	t.Helper()
	entries, err := st.ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	prev := audit.Genesis
	for _, e := range entries {
		if e.Seq >= from {
			e.PrevHash = prev
			e.Hash = hash(e)
			exec(t, raw, `UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, e.PrevHash, e.Hash, e.Seq)
		}
		prev = e.Hash
	}
}

func verify(t *testing.T, c *audit.Chain, st store.Reader, anchors ...audit.Checkpoint) audit.Result {
	t.Helper()
	res, err := c.Verify(t.Context(), st, anchors...)
	if err != nil {
		t.Fatal(err)
	}
	res.Head, res.Checkpoint = "", nil // compared separately
	return res
}

func TestFieldsAreCovered(t *testing.T) {
	c := chain(t, key)
	e := store.AuditEntry{Seq: 3, At: base, Actor: "ci", Action: "release.create", Target: "rel_x", Details: []byte(`{"n":1}`), PrevHash: audit.Genesis}
	h := c.Hash(e)
	for name, mutate := range map[string]func(*store.AuditEntry){
		"actor":   func(e *store.AuditEntry) { e.Actor = "mallory" },
		"action":  func(e *store.AuditEntry) { e.Action = "token.create" },
		"target":  func(e *store.AuditEntry) { e.Target = "rel_y" },
		"details": func(e *store.AuditEntry) { e.Details = []byte(`{"n":9}`) },
		"time":    func(e *store.AuditEntry) { e.At = e.At.Add(time.Microsecond) },
		"seq":     func(e *store.AuditEntry) { e.Seq++ },
		"prev":    func(e *store.AuditEntry) { e.PrevHash = strings.Repeat("1", 64) },
	} {
		m := e
		mutate(&m)
		if c.Hash(m) == h {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
	if chain(t, otherKey).Hash(e) == h || audit.LegacyHash(e) == h {
		t.Error("the hash does not depend on the key")
	}
	if _, err := audit.NewChain(key[:16]); err == nil {
		t.Error("NewChain accepted a 16-byte key")
	}
}

func TestVerify(t *testing.T) {
	c := chain(t, key)
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, st store.Store, raw *sql.DB)
		want   audit.Result
	}{
		{"intact", func(*testing.T, store.Store, *sql.DB) {}, audit.Result{OK: true, Entries: 5}},
		{"edited row", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit SET actor = 'mallory' WHERE seq = 3`)
		}, audit.Result{Entries: 2, BadSeq: 3, Problem: "entry 3 was altered (its MAC does not match its content under the audit key)"}},
		{"edited and re-hashed with SHA-256", func(t *testing.T, st store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit SET actor = 'mallory' WHERE seq = 3`)
			resign(t, st, raw, 3, audit.LegacyHash)
		}, audit.Result{Entries: 2, BadSeq: 3, Problem: "entry 3 carries the unkeyed SHA-256 hash, which anyone can recompute: it was not written by this server's key"}},
		{"edited and re-signed with another key", func(t *testing.T, st store.Store, raw *sql.DB) {
			exec(t, raw, `UPDATE audit SET actor = 'mallory' WHERE seq = 3`)
			resign(t, st, raw, 3, chain(t, otherKey).Hash)
		}, audit.Result{Entries: 2, BadSeq: 3, Problem: "entry 3 was altered (its MAC does not match its content under the audit key)"}},
		{"appended by someone without the key", func(t *testing.T, st store.Store, _ *sql.DB) {
			appendN(t, st, chain(t, otherKey), 1)
		}, audit.Result{Entries: 5, BadSeq: 6, Problem: "entry 6 was altered (its MAC does not match its content under the audit key)"}},
		{"row removed", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit WHERE seq = 2`)
		}, audit.Result{Entries: 1, BadSeq: 2, Problem: "entry 2 is missing (found 3 next)"}},
		// Tail truncation leaves a valid chain: only a checkpoint tells (below).
		{"tail cut", func(t *testing.T, _ store.Store, raw *sql.DB) {
			exec(t, raw, `DELETE FROM audit WHERE seq > 3`)
		}, audit.Result{OK: true, Entries: 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, raw := fixture(t, c, 5)
			tt.tamper(t, st, raw)
			if diff := cmp.Diff(tt.want, verify(t, c, st)); diff != "" {
				t.Errorf("Verify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyAnchors(t *testing.T) {
	c := chain(t, key)
	st, raw := fixture(t, c, 5)
	entries, _ := st.ListAudit(t.Context(), 0, 0)
	at4 := audit.Checkpoint{Seq: 4, Head: entries[3].Hash}
	wrong := audit.Checkpoint{Seq: 2, Head: entries[3].Hash}
	for _, tt := range []struct {
		name    string
		anchors []audit.Checkpoint
		want    audit.Result
	}{
		{"matching", []audit.Checkpoint{at4}, audit.Result{OK: true, Entries: 5}},
		{"wrong head", []audit.Checkpoint{at4, wrong}, audit.Result{Entries: 1, BadSeq: 2,
			Problem: "entry 2 does not have the head " + wrong.Head + " that checkpoint " + wrong.String() + " recorded: the log was rewritten"}},
		{"beyond the log", []audit.Checkpoint{{Seq: 9, Head: entries[3].Hash}}, audit.Result{Entries: 5, BadSeq: 6,
			Problem: "the log ends at entry 5, but checkpoint 9:" + entries[3].Hash + " records entry 9: entries were removed"}},
	} {
		if diff := cmp.Diff(tt.want, verify(t, c, st, tt.anchors...)); diff != "" {
			t.Errorf("%s: Verify (-want +got):\n%s", tt.name, diff)
		}
	}
	// The tail cut that a plain Verify cannot see.
	exec(t, raw, `DELETE FROM audit WHERE seq > 3`)
	want := audit.Result{Entries: 3, BadSeq: 4, Problem: "the log ends at entry 3, but checkpoint " + at4.String() + " records entry 4: entries were removed"}
	if diff := cmp.Diff(want, verify(t, c, st, at4)); diff != "" {
		t.Errorf("after truncation (-want +got):\n%s", diff)
	}
}

func TestParseCheckpoint(t *testing.T) {
	head := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		in      string
		want    audit.Checkpoint
		wantErr bool
	}{
		{"7:" + head, audit.Checkpoint{Seq: 7, Head: head}, false},
		{" 7:" + strings.ToUpper(head) + "\n", audit.Checkpoint{Seq: 7, Head: head}, false},
		{"7", audit.Checkpoint{}, true},
		{"0:" + head, audit.Checkpoint{}, true},
		{"x:" + head, audit.Checkpoint{}, true},
		{"7:" + head[:63], audit.Checkpoint{}, true},
		{"7:" + head + "00", audit.Checkpoint{}, true},
	} {
		got, err := audit.ParseCheckpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCheckpoint(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// legacyLog writes n entries the way servers did before the chain was keyed.
func legacyLog(t *testing.T, st store.Store, n int) {
	t.Helper()
	for range n {
		err := st.WithTx(t.Context(), func(tx store.Tx) error {
			last, ok, err := tx.LastAudit(t.Context())
			if err != nil {
				return err
			}
			e := store.AuditEntry{Seq: 1, At: base.Truncate(time.Microsecond), Actor: "ci", Action: "release.create", Details: []byte(`{}`), PrevHash: audit.Genesis}
			if ok {
				e.Seq, e.PrevHash = last.Seq+1, last.Hash
			}
			e.Hash = audit.LegacyHash(e)
			return tx.AppendAudit(t.Context(), e)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateLegacyChain(t *testing.T) {
	c := chain(t, key)
	st, raw := fixture(t, c, 0)
	legacyLog(t, st, 4)
	if res := verify(t, c, st); res.OK {
		t.Fatalf("an unkeyed chain verifies: %+v", res)
	}
	// Not without leave: after a checkpoint, an unkeyed chain is a rewrite.
	if n, err := c.Migrate(t.Context(), st, false); err == nil || n != 0 {
		t.Errorf("Migrate(allowLegacy=false) = %d, %v; want a refusal", n, err)
	}
	n, err := c.Migrate(t.Context(), st, true)
	if err != nil || n != 4 {
		t.Fatalf("Migrate = %d, %v; want 4 entries re-signed", n, err)
	}
	if diff := cmp.Diff(audit.Result{OK: true, Entries: 4}, verify(t, c, st)); diff != "" {
		t.Errorf("after migration (-want +got):\n%s", diff)
	}
	if n, err := c.Migrate(t.Context(), st, true); err != nil || n != 0 {
		t.Errorf("second Migrate = %d, %v; want nothing to do", n, err)
	}
	// A broken legacy chain is not laundered into a keyed one.
	st2, raw2 := fixture(t, c, 0)
	legacyLog(t, st2, 3)
	exec(t, raw2, `UPDATE audit SET actor = 'mallory' WHERE seq = 2`)
	if _, err := c.Migrate(t.Context(), st2, true); err == nil {
		t.Error("Migrate re-signed a broken legacy chain")
	}
	_ = raw
}

// TestRotation: entries a previous key signed are accepted as a prefix
// (a server started with new and old keys appends under the new one before
// the rotation re-signs the chain), never after the current key's.
func TestRotation(t *testing.T) {
	old, both := chain(t, otherKey), chain(t, key, otherKey)
	st, raw := fixture(t, old, 3)
	appendN(t, st, both, 2)
	if diff := cmp.Diff(audit.Result{OK: true, Entries: 5}, verify(t, both, st)); diff != "" {
		t.Errorf("old prefix (-want +got):\n%s", diff)
	}
	if res := verify(t, chain(t, key), st); res.OK {
		t.Error("the new key alone accepts the old key's entries")
	}
	appendN(t, st, old, 1)
	if res := verify(t, both, st); res.OK || res.BadSeq != 6 {
		t.Errorf("an old-key entry after new-key ones: %+v; want entry 6 refused", res)
	}
	exec(t, raw, `DELETE FROM audit WHERE seq = 6`)
	if n, err := both.Migrate(t.Context(), st, false); err != nil || n != 5 {
		t.Fatalf("Migrate = %d, %v", n, err)
	}
	if diff := cmp.Diff(audit.Result{OK: true, Entries: 5}, verify(t, chain(t, key), st)); diff != "" {
		t.Errorf("after re-keying, the new key alone (-want +got):\n%s", diff)
	}
}

func TestCheckpointer(t *testing.T) {
	c := chain(t, key)
	st, raw := fixture(t, c, 3)
	file := filepath.Join(t.TempDir(), "audit.checkpoints")
	clock := func() time.Time { return base }
	p, err := audit.NewCheckpointer(c, st, nil, audit.CheckpointOptions{File: file, Keep: 2, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if !p.LegacyAllowed() {
		t.Error("LegacyAllowed is false before any checkpoint")
	}
	cp1, ok, err := p.Checkpoint(t.Context())
	if err != nil || !ok || cp1.Seq != 3 || !c.CheckSignature(cp1) {
		t.Fatalf("Checkpoint = %+v, %v, %v", cp1, ok, err)
	}
	if _, ok, _ := p.Checkpoint(t.Context()); ok {
		t.Error("a second checkpoint of the same head")
	}
	for range 2 {
		appendN(t, st, c, 1)
		if _, ok, err := p.Checkpoint(t.Context()); !ok || err != nil {
			t.Fatalf("Checkpoint after an append: %v, %v", ok, err)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(b), "\n"); lines != 2 {
		t.Errorf("the file holds %d checkpoints, want Keep=2:\n%s", lines, b)
	}
	// Reloaded: the latest is enforced, and migration is off.
	p2, err := audit.NewCheckpointer(c, st, nil, audit.CheckpointOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	latest, ok := p2.Latest()
	if !ok || latest.Seq != 5 || p2.LegacyAllowed() {
		t.Errorf("reloaded: latest %+v (%v), LegacyAllowed %v", latest, ok, p2.LegacyAllowed())
	}
	// An edited checkpoint line is dropped.
	edited := strings.Replace(string(b), `"seq":5`, `"seq":50`, 1)
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	p3, _ := audit.NewCheckpointer(c, st, nil, audit.CheckpointOptions{File: file})
	if latest, _ := p3.Latest(); latest.Seq != 4 {
		t.Errorf("with an edited line, latest = %+v; want the intact checkpoint of 4", latest)
	}
	// No checkpoint vouches for a chain that does not verify.
	exec(t, raw, `UPDATE audit SET actor = 'mallory' WHERE seq = 6`)
	appendN(t, st, c, 1)
	exec(t, raw, `UPDATE audit SET actor = 'mallory' WHERE seq = 6`)
	if _, ok, _ := p2.Checkpoint(t.Context()); ok {
		t.Error("a checkpoint over an altered entry")
	}
}
