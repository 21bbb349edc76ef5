package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/cli"
	"github.com/envplane/envplane/internal/server"
)

// testChain signs the audit log of servers started without a vault.
func testChain(t testing.TB) *audit.Chain {
	t.Helper()
	c, err := audit.NewChain(bytes.Repeat([]byte{0x33}, audit.MinKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawDB opens the harness's SQLite file behind the store's back, as someone
// with access to the database (but not the master key) would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitCheckpoint waits until the checkpoint file records entry seq.
func waitCheckpoint(t *testing.T, file string, seq int64) []audit.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var cps []audit.Checkpoint
		b, _ := os.ReadFile(file)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var cp audit.Checkpoint
			if json.Unmarshal([]byte(line), &cp) == nil {
				cps = append(cps, cp)
			}
		}
		if len(cps) > 0 && cps[len(cps)-1].Seq >= seq {
			return cps
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of entry %d in %s: %q", seq, file, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type auditVerify struct {
	OK         bool              `json:"ok"`
	Entries    int64             `json:"entries"`
	Problem    string            `json:"problem"`
	Checkpoint *audit.Checkpoint `json:"checkpoint"`
}

func (h *harness) verify(t *testing.T) auditVerify {
	t.Helper()
	var v auditVerify
	if err := json.Unmarshal(h.must(200, "GET", "/api/v1/audit/verify", adminToken, nil).body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAuditCheckpoints: the server signs checkpoints into its file; verify
// (API and CLI) then catches the tail truncation a chain alone cannot see,
// and checks an anchor given with --checkpoint.
func TestAuditCheckpoints(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.checkpoints")
	h := start(t, func(o *server.Options) {
		o.Audit.Checkpoints = audit.CheckpointOptions{File: file, Every: 1, Interval: time.Hour}
	})
	for _, name := range []string{"a", "b", "c"} {
		h.token(name, "viewer")
	}
	cps := waitCheckpoint(t, file, 4)
	chain := testVault(t, testMasterKey)
	c, err := chain.AuditChain()
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		if !c.CheckSignature(cp) {
			t.Errorf("checkpoint %+v is not signed by the server's audit key", cp)
		}
	}
	if v := h.verify(t); !v.OK || v.Entries != 4 || v.Checkpoint == nil || v.Checkpoint.Seq != 4 {
		t.Errorf("verify = %+v; want ok, 4 entries, checkpoint 4", v)
	}
	entries, _ := h.st.ListAudit(context.Background(), 0, 0)
	env := map[string]string{"ENVPLANE_SERVER": h.hs.URL, "ENVPLANE_TOKEN": adminToken}
	for _, tt := range []struct {
		anchor string
		code   int
		out    string
	}{
		{"2:" + entries[1].Hash, cli.ExitOK, "audit chain ok: 4 entries, head 4:" + entries[3].Hash},
		{"2:" + entries[2].Hash, cli.ExitFinding, "audit chain BROKEN at entry 2: entry 2 does not have the head"},
		{"9:" + entries[2].Hash, cli.ExitFinding, "audit chain BROKEN at entry 5: the log ends at entry 4"},
		{"2:xyz", cli.ExitFailure, ""},
	} {
		code, out, _ := runCLI(env, "audit", "verify", "--checkpoint", tt.anchor)
		if code != tt.code || !strings.Contains(out, tt.out) {
			t.Errorf("audit verify --checkpoint %s: exit %d, %q; want exit %d, %q", tt.anchor, code, out, tt.code, tt.out)
		}
	}

	// Cut the newest entries off: the chain alone still verifies, the
	// checkpoint does not.
	if _, err := rawDB(t, h.dbPath).Exec(`DELETE FROM audit WHERE seq > 2`); err != nil {
		t.Fatal(err)
	}
	if v := h.verify(t); v.OK || !strings.Contains(v.Problem, "the log ends at entry 2, but checkpoint 4:") {
		t.Errorf("verify after truncation = %+v", v)
	}
	if code, out, _ := runCLI(env, "audit", "verify"); code != cli.ExitFinding || !strings.Contains(out, "entries were removed") {
		t.Errorf("audit verify after truncation: exit %d, %q", code, out)
	}
}

// TestLegacyAuditChain: a chain written before the chain was keyed is
// re-signed under the key on the first start; once checkpoints exist, an
// unkeyed chain is a rewrite and stays broken.
func TestLegacyAuditChain(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit.checkpoints")
	withFile := func(o *server.Options) {
		o.Audit.Checkpoints = audit.CheckpointOptions{File: file, Interval: time.Hour}
	}
	h := start(t, withFile)
	h.token("a", "viewer")
	h.token("b", "viewer")
	raw := rawDB(t, h.dbPath)
	// Rewrite the log as an old server wrote it: public SHA-256.
	relegacy := func() {
		t.Helper()
		entries, err := h.st.ListAudit(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		prev := audit.Genesis
		for _, e := range entries {
			e.PrevHash = prev
			e.Hash = audit.LegacyHash(e)
			if _, err := raw.Exec(`UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`, e.PrevHash, e.Hash, e.Seq); err != nil {
				t.Fatal(err)
			}
			prev = e.Hash
		}
	}
	// whileStopped runs once the old server's checkpoint goroutine has
	// ended, so a checkpoint it signs late cannot land after it.
	restart := func(whileStopped func()) *harness {
		t.Helper()
		h.srv.Close()
		h.hs.Close()
		h.st.Close()
		whileStopped()
		h2 := startOn(t, mustOpen(t, h.dbPath), withFile)
		h2.dbPath = h.dbPath
		return h2
	}
	relegacy()
	if v := h.verify(t); v.OK {
		t.Fatalf("an unkeyed chain verifies: %+v", v)
	}
	h = restart(func() { os.Remove(file) }) // as before checkpoints existed
	if v := h.verify(t); !v.OK || v.Entries != 3 {
		t.Errorf("after migration: %+v; want ok with 3 entries", v)
	}
	waitCheckpoint(t, file, 3)

	// The same rewrite now that a checkpoint exists is not laundered.
	relegacy()
	h = restart(func() {})
	if v := h.verify(t); v.OK || !strings.Contains(v.Problem, "unkeyed SHA-256") {
		t.Errorf("an unkeyed chain after checkpoints: %+v; want it reported", v)
	}
	entries, _ := h.st.ListAudit(context.Background(), 0, 1)
	if len(entries) != 1 || entries[0].Hash != audit.LegacyHash(entries[0]) {
		t.Error("the rewritten chain was re-signed")
	}
}
