// Package storetest is the one suite every store implementation passes,
// against a real database: the server relies on exactly these behaviours, so
// a backend that passes here can replace another.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// Run runs the suite, each test in parallel on a database of its own.
//
// open must return a Store on a fresh database for each distinct t, and a
// Store on the same database when called again with the same t (PerTest
// helps). Run closes the Stores it opens; open cleans up the database.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"Releases", testReleases},
		{"ReleaseFiles", testReleaseFiles},
		{"Environments", testEnvironments},
		{"Tokens", testTokens},
		{"Audit", testAudit},
		{"Secrets", testSecrets},
		{"EnvKeys", testEnvKeys},
		{"FlagOverrides", testFlagOverrides},
		{"Rollback", testRollback},
		{"ConflictKeepsTxUsable", testConflictKeepsTxUsable},
		{"Notify", testNotify},
		{"ConcurrentWriters", testConcurrentWriters},
		{"PingAndMigrations", testPingAndMigrations},
		{"Reopen", testReopen},
		{"Promotions", testPromotions},
		{"FlagChanges", testFlagChanges},
		{"Sessions", testSessions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, func(t *testing.T) store.Store {
				t.Helper()
				s := open(t)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

// PerTest memoizes make per test, so that an open function can return a
// Store on the same database when the suite calls it twice with one t.
func PerTest[T any](make func(t *testing.T) T) func(t *testing.T) T {
	var mu sync.Mutex
	made := map[*testing.T]T{}
	return func(t *testing.T) T {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		v, ok := made[t]
		if !ok {
			v = make(t)
			made[t] = v
			t.Cleanup(func() {
				mu.Lock()
				delete(made, t)
				mu.Unlock()
			})
		}
		return v
	}
}

// base has microsecond precision, which every backend keeps exactly.
var (
	base = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	zone = time.FixedZone("IST", 5*3600+1800) // inputs need not be UTC
)

func tx(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.WithTx(t.Context(), fn); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
}

func wantKind(t *testing.T, what string, err error, kind errs.Kind) {
	t.Helper()
	if !errs.Is(err, kind) {
		t.Errorf("%s: error = %v (kind %v), want kind %v", what, err, errs.KindOf(err), kind)
	}
}

// wantUTC checks that a time read back is in UTC, so formatting it (as the
// audit hash does) gives the same text on every backend.
func wantUTC(t *testing.T, what string, at time.Time) {
	t.Helper()
	if at.Location() != time.UTC {
		t.Errorf("%s: time %v is in %v, want UTC", what, at, at.Location())
	}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func release(id, digest string, at time.Time) store.Release {
	return store.Release{
		ID: id, Digest: digest,
		Files:     map[string][]byte{"envplane.yaml": []byte("environments:\n  dev: {}\n")},
		Size:      24,
		CreatedAt: at, CreatedBy: "ci",
	}
}

func testReleases(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	r1 := store.Release{
		ID: "r1", Digest: "sha256:01",
		Files: map[string][]byte{
			"envplane.yaml":  []byte("environments: {}\n"),
			"bin/blob":       {0, 0xff, 0xfe, '\n', 0}, // not text
			"empty.env":      {},
			"dir/ünï cödé.x": []byte("é"),
		},
		Labels: map[string]string{"git": "abc123", "ü": "ß"},
		Size:   25, CreatedAt: base.In(zone), CreatedBy: "ci",
	}
	r2 := release("r2", "sha256:02", base.Add(time.Second)) // nil labels
	r3 := release("r3", "sha256:03", base.Add(-time.Hour))  // empty labels; an older clock but inserted last
	r3.Labels = map[string]string{}
	for _, r := range []store.Release{r1, r2, r3} {
		tx(t, s, func(tx store.Tx) error { return tx.InsertRelease(ctx, r) })
	}

	for _, want := range []store.Release{r1, r2, r3} {
		got, err := s.GetRelease(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetRelease(%s): %v", want.ID, err)
		}
		diff(t, "GetRelease("+want.ID+")", want, got)
		wantUTC(t, "CreatedAt", got.CreatedAt)
		got, err = s.GetReleaseByDigest(ctx, want.Digest)
		if err != nil {
			t.Fatalf("GetReleaseByDigest(%s): %v", want.Digest, err)
		}
		want.Files = nil
		diff(t, "GetReleaseByDigest("+want.Digest+")", want, got)
	}

	strip := func(rs ...store.Release) []store.Release {
		for i := range rs {
			rs[i].Files = nil
		}
		return rs
	}
	for _, tt := range []struct {
		limit int
		want  []store.Release
	}{
		{0, strip(r3, r2, r1)}, // newest first means last inserted first
		{2, strip(r3, r2)},
		{10, strip(r3, r2, r1)},
	} {
		got, err := s.ListReleases(ctx, tt.limit)
		if err != nil {
			t.Fatalf("ListReleases(%d): %v", tt.limit, err)
		}
		diff(t, fmt.Sprintf("ListReleases(%d)", tt.limit), tt.want, got)
	}

	for _, tt := range []struct {
		name string
		r    store.Release
	}{
		{"same ID", release("r1", "sha256:99", base)},
		{"same digest", release("r9", "sha256:01", base)},
	} {
		err := s.WithTx(ctx, func(tx store.Tx) error { return tx.InsertRelease(ctx, tt.r) })
		wantKind(t, "InsertRelease with the "+tt.name, err, errs.Conflict)
	}
	if _, err := s.GetRelease(ctx, "r9"); !errs.Is(err, errs.NotFound) {
		t.Errorf("r9 exists after a failed insert (err %v)", err)
	}
	_, err := s.GetRelease(ctx, "nope")
	wantKind(t, "GetRelease(nope)", err, errs.NotFound)
	_, err = s.GetReleaseByDigest(ctx, "sha256:nope")
	wantKind(t, "GetReleaseByDigest(nope)", err, errs.NotFound)
}

// testReleaseFiles: contents are shared between files and releases (the
// backends store each once), and each file reads back as its own.
func testReleaseFiles(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	big := bytes.Repeat([]byte("shared line\n"), 10000)
	ra := release("ra", "sha256:a", base)
	ra.Files = map[string][]byte{"envplane.yaml": []byte("a\n"), "big.yaml": big, "copy.yaml": big, "empty": {}, "nil": nil}
	rb := release("rb", "sha256:b", base)
	rb.Files = map[string][]byte{"envplane.yaml": []byte("b\n"), "big.yaml": big, "moved/big.yaml": big, "empty": {}}
	// A release whose insert rolls back leaves no file behind, and its
	// contents can still be stored by a later release.
	rc := release("rc", "sha256:c", base)
	rc.Files = map[string][]byte{"envplane.yaml": []byte("c\n"), "only-c": []byte("c only")}
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.InsertRelease(ctx, rc); err != nil {
			return err
		}
		return errs.E(errs.Conflict, "roll back")
	})
	wantKind(t, "rolled back insert", err, errs.Conflict)
	for _, r := range []store.Release{ra, rb, rc} {
		tx(t, s, func(tx store.Tx) error { return tx.InsertRelease(ctx, r) })
	}
	ra.Files["nil"] = []byte{}
	for _, want := range []store.Release{ra, rb, rc} {
		got, err := s.GetRelease(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetRelease(%s): %v", want.ID, err)
		}
		diff(t, "GetRelease("+want.ID+").Files", want.Files, got.Files)
	}
	for _, tt := range []struct {
		id, path string
		want     []byte
		kind     errs.Kind // 0: found
	}{
		{"ra", "envplane.yaml", []byte("a\n"), 0},
		{"rb", "envplane.yaml", []byte("b\n"), 0},
		{"rb", "moved/big.yaml", big, 0},
		{"ra", "empty", []byte{}, 0},
		{"rc", "only-c", []byte("c only"), 0},
		{"ra", "only-c", nil, errs.NotFound},
		{"ra", "missing", nil, errs.NotFound},
		{"nope", "envplane.yaml", nil, errs.NotFound},
	} {
		got, err := s.GetReleaseFile(ctx, tt.id, tt.path)
		if tt.kind != 0 {
			wantKind(t, "GetReleaseFile("+tt.id+", "+tt.path+")", err, tt.kind)
			continue
		}
		if err != nil {
			t.Fatalf("GetReleaseFile(%s, %s): %v", tt.id, tt.path, err)
		}
		diff(t, "GetReleaseFile("+tt.id+", "+tt.path+")", tt.want, got)
	}
	// Inside a transaction too.
	tx(t, s, func(tx store.Tx) error {
		got, err := tx.GetReleaseFile(ctx, "rb", "big.yaml")
		if err != nil {
			return err
		}
		diff(t, "tx GetReleaseFile", big, got)
		return nil
	})
}

func testEnvironments(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	dev := store.Environment{Name: "dev", Position: 0, Data: "data/dev", UpdatedAt: base}
	staging := store.Environment{Name: "staging", Position: 1, Protection: "review", UpdatedAt: base}
	prod := store.Environment{Name: "prod", Position: 2, Protection: "strict", Promoted: true, UpdatedAt: base.In(zone)}
	tx(t, s, func(tx store.Tx) error {
		for _, e := range []store.Environment{prod, dev, staging} {
			if err := tx.UpsertEnvironment(ctx, e); err != nil {
				return err
			}
		}
		for _, r := range []store.Release{release("r1", "sha256:01", base), release("r2", "sha256:02", base)} {
			if err := tx.InsertRelease(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.ListEnvironments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListEnvironments (by position)", []store.Environment{dev, staging, prod}, got)
	for _, e := range got {
		wantUTC(t, "UpdatedAt", e.UpdatedAt)
	}

	t1, t2, t3 := base.Add(time.Minute), base.Add(2*time.Minute).In(zone), base.Add(3*time.Minute)
	for _, step := range []struct {
		release, actor string
		at             time.Time
		previous       string
	}{
		{"r1", "alice", t1, ""},
		{"r2", "bob", t2, "r1"},
	} {
		tx(t, s, func(tx store.Tx) error {
			prev, err := tx.SetRelease(ctx, "dev", step.release, step.actor, step.at)
			if prev != step.previous {
				t.Errorf("SetRelease(dev, %s) previous = %q, want %q", step.release, prev, step.previous)
			}
			return err
		})
	}

	// A new definition leaves the current release alone, whatever it says.
	redefined := store.Environment{Name: "dev", Position: 5, Protection: "manual", Data: "d", Release: "r1", UpdatedAt: t3}
	tx(t, s, func(tx store.Tx) error { return tx.UpsertEnvironment(ctx, redefined) })
	e, err := s.GetEnvironment(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	redefined.Release = "r2"
	diff(t, "GetEnvironment(dev) after redefinition", redefined, e)

	history := []store.Assignment{
		{Environment: "dev", Release: "r2", Previous: "r1", Actor: "bob", At: t2},
		{Environment: "dev", Release: "r1", Previous: "", Actor: "alice", At: t1},
	}
	for _, tt := range []struct {
		env   string
		limit int
		want  []store.Assignment
	}{
		{"dev", 0, history},
		{"dev", 1, history[:1]},
		{"prod", 0, nil},
	} {
		got, err := s.History(ctx, tt.env, tt.limit)
		if err != nil {
			t.Fatalf("History(%s, %d): %v", tt.env, tt.limit, err)
		}
		diff(t, fmt.Sprintf("History(%s, %d)", tt.env, tt.limit), tt.want, got)
		for _, a := range got {
			wantUTC(t, "Assignment.At", a.At)
		}
	}
	_, err = s.History(ctx, "nope", 0)
	wantKind(t, "History(nope)", err, errs.NotFound)
	_, err = s.GetEnvironment(ctx, "nope")
	wantKind(t, "GetEnvironment(nope)", err, errs.NotFound)

	for _, tt := range []struct{ env, release string }{
		{"nope", "r1"},
		{"dev", "nope"},
	} {
		err := s.WithTx(ctx, func(tx store.Tx) error {
			_, err := tx.SetRelease(ctx, tt.env, tt.release, "mallory", t3)
			return err
		})
		wantKind(t, fmt.Sprintf("SetRelease(%s, %s)", tt.env, tt.release), err, errs.NotFound)
	}
	if got, _ := s.History(ctx, "dev", 0); len(got) != len(history) {
		t.Errorf("failed SetRelease calls changed the history: %d entries, want %d", len(got), len(history))
	}
}

func testTokens(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	t1 := store.Token{ID: "t1", Name: "ci", Hash: "h1", Role: "editor", Groups: []string{"ops"}, CreatedAt: base.In(zone), CreatedBy: "admin"}
	t2 := store.Token{ID: "t2", Name: "app", Hash: "h2", Role: "sdk", Environments: []string{"dev"}, Groups: []string{}, CreatedAt: base.Add(time.Minute), CreatedBy: "admin"}
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(tx.InsertToken(ctx, t2), tx.InsertToken(ctx, t1))
	})
	got, err := s.GetTokenByHash(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetTokenByHash(h1)", t1, got)
	wantUTC(t, "CreatedAt", got.CreatedAt)
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListTokens", []store.Token{t1, t2}, list)

	for _, tt := range []struct {
		name string
		tok  store.Token
	}{
		{"same hash", store.Token{ID: "t3", Name: "x", Hash: "h1", Role: "viewer", CreatedAt: base}},
		{"same ID", store.Token{ID: "t1", Name: "x", Hash: "h9", Role: "viewer", CreatedAt: base}},
	} {
		err := s.WithTx(ctx, func(tx store.Tx) error { return tx.InsertToken(ctx, tt.tok) })
		wantKind(t, "InsertToken with the "+tt.name, err, errs.Conflict)
	}

	tx(t, s, func(tx store.Tx) error { return tx.DeleteToken(ctx, "t1") })
	_, err = s.GetTokenByHash(ctx, "h1")
	wantKind(t, "GetTokenByHash of a deleted token", err, errs.NotFound)
	list, err = s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListTokens after delete", []store.Token{t2}, list)
	for _, id := range []string{"t1", "nope"} {
		err := s.WithTx(ctx, func(tx store.Tx) error { return tx.DeleteToken(ctx, id) })
		wantKind(t, "DeleteToken("+id+")", err, errs.NotFound)
	}
}

// chain signs the suite's audit entries with a fixed test key.
var chain = func() *audit.Chain {
	c, err := audit.NewChain(bytes.Repeat([]byte{0x5a}, audit.MinKeySize))
	if err != nil {
		panic(err)
	}
	return c
}()

func testAudit(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	if _, ok, err := s.LastAudit(ctx); err != nil || ok {
		t.Fatalf("LastAudit on an empty log = ok %v, err %v", ok, err)
	}
	if got, err := s.ListAudit(ctx, 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("ListAudit on an empty log = %v, %v", got, err)
	}

	var want []store.AuditEntry
	for i := range 5 {
		// Nanoseconds and a zone: Append keeps what every backend can.
		now := base.Add(time.Duration(i)*time.Second + 789*time.Nanosecond).In(zone)
		tx(t, s, func(tx store.Tx) error {
			e, err := chain.Append(ctx, tx, now, audit.Record{
				Actor: "alice", Action: "release.create", Target: fmt.Sprint("r", i),
				Details: map[string]any{"i": i, "note": "é <&> \u2028"},
			})
			want = append(want, e)
			return err
		})
	}
	// An entry whose details are not in encoding/json's compact form: the
	// chain hash covers these exact bytes, so the store must not reformat them.
	odd := store.AuditEntry{
		Seq: 6, At: time.Date(2026, 3, 2, 1, 2, 3, 999999000, zone),
		Actor: "bob", Action: "token.create", Target: "t1",
		Details:  json.RawMessage("{ \"z\" : 1,\n\t\"a\": [\"\\u00e9\", \"é\", 1.50, 1e2] }"),
		PrevHash: want[4].Hash,
	}
	odd.Hash = chain.Hash(odd)
	tx(t, s, func(tx store.Tx) error { return tx.AppendAudit(ctx, odd) })
	want = append(want, odd)

	got, err := s.ListAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListAudit(0, 0)", want, got)
	for _, e := range got {
		wantUTC(t, "AuditEntry.At", e.At)
		if h := chain.Hash(e); h != e.Hash {
			t.Errorf("entry %d read back hashes to %s, stored hash %s", e.Seq, h, e.Hash)
		}
	}
	for _, tt := range []struct {
		after int64
		limit int
		want  []store.AuditEntry
	}{
		{2, 2, want[2:4]},
		{0, 1, want[:1]},
		{5, 0, want[5:]},
		{6, 0, nil},
	} {
		got, err := s.ListAudit(ctx, tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		diff(t, fmt.Sprintf("ListAudit(%d, %d)", tt.after, tt.limit), tt.want, got)
	}
	last, ok, err := s.LastAudit(ctx)
	if err != nil || !ok {
		t.Fatalf("LastAudit = ok %v, err %v", ok, err)
	}
	diff(t, "LastAudit", odd, last)
	res, err := chain.Verify(ctx, s)
	if err != nil || !res.OK || res.Entries != 6 {
		t.Errorf("Verify = %+v, %v; want ok with 6 entries", res, err)
	}

	for _, seq := range []int64{6, 8, 0} {
		e := odd
		e.Seq = seq
		err := s.WithTx(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, e) })
		wantKind(t, fmt.Sprintf("AppendAudit(seq %d) after 6", seq), err, errs.Conflict)
	}
	if last, _, _ := s.LastAudit(ctx); last.Seq != 6 {
		t.Errorf("LastAudit().Seq = %d after refused appends, want 6", last.Seq)
	}

	// SetAuditHash (re-keying) replaces the two hashes and nothing else.
	tx(t, s, func(tx store.Tx) error { return tx.SetAuditHash(ctx, 3, "p3", "h3") })
	want[2].PrevHash, want[2].Hash = "p3", "h3"
	got, err = s.ListAudit(ctx, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListAudit(2, 1) after SetAuditHash(3)", want[2:3], got)
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.SetAuditHash(ctx, 7, "p", "h") })
	wantKind(t, "SetAuditHash(7)", err, errs.NotFound)
}

func testRollback(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	boom := errors.New("boom")
	err := s.WithTx(ctx, func(tx store.Tx) error {
		if err := tx.InsertRelease(ctx, release("r1", "sha256:01", base)); err != nil {
			return err
		}
		if err := tx.UpsertEnvironment(ctx, store.Environment{Name: "dev", UpdatedAt: base}); err != nil {
			return err
		}
		if _, err := tx.SetRelease(ctx, "dev", "r1", "alice", base); err != nil {
			return err
		}
		if err := tx.InsertToken(ctx, store.Token{ID: "t1", Hash: "h1", Role: "admin", CreatedAt: base}); err != nil {
			return err
		}
		if _, err := chain.Append(ctx, tx, base, audit.Record{Actor: "alice", Action: "release.create", Target: "r1"}); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if _, err := tx.GetRelease(ctx, "r1"); err != nil {
			t.Errorf("GetRelease inside the transaction: %v", err)
		}
		if _, ok, err := tx.LastAudit(ctx); !ok || err != nil {
			t.Errorf("LastAudit inside the transaction = ok %v, err %v", ok, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx = %v, want fn's error", err)
	}
	_, err = s.GetRelease(ctx, "r1")
	wantKind(t, "GetRelease after rollback", err, errs.NotFound)
	if _, ok, err := s.LastAudit(ctx); ok || err != nil {
		t.Errorf("LastAudit after rollback = ok %v, err %v; want an empty log", ok, err)
	}
	if envs, err := s.ListEnvironments(ctx); len(envs) != 0 || err != nil {
		t.Errorf("ListEnvironments after rollback = %v, %v", envs, err)
	}
	if toks, err := s.ListTokens(ctx); len(toks) != 0 || err != nil {
		t.Errorf("ListTokens after rollback = %v, %v", toks, err)
	}

	// A panic rolls back too, and the store stays usable.
	func() {
		defer func() { recover() }()
		s.WithTx(ctx, func(tx store.Tx) error {
			tx.InsertRelease(ctx, release("r2", "sha256:02", base))
			panic("boom")
		})
	}()
	tx(t, s, func(tx store.Tx) error { return tx.InsertRelease(ctx, release("r3", "sha256:03", base)) })
	if _, err := s.GetRelease(ctx, "r2"); !errs.Is(err, errs.NotFound) {
		t.Errorf("GetRelease(r2) after a panic = %v, want NotFound", err)
	}
}

// testConflictKeepsTxUsable: a refused write does not poison the transaction,
// so a caller can, say, answer a duplicate upload with the existing release.
func testConflictKeepsTxUsable(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(
			tx.InsertRelease(ctx, release("r1", "sha256:01", base)),
			tx.InsertToken(ctx, store.Token{ID: "t1", Hash: "h1", Role: "admin", CreatedAt: base}),
		)
	})
	tx(t, s, func(tx store.Tx) error {
		wantKind(t, "InsertRelease duplicate", tx.InsertRelease(ctx, release("r2", "sha256:01", base)), errs.Conflict)
		wantKind(t, "InsertToken duplicate", tx.InsertToken(ctx, store.Token{ID: "t2", Hash: "h1", CreatedAt: base}), errs.Conflict)
		wantKind(t, "DeleteToken missing", tx.DeleteToken(ctx, "nope"), errs.NotFound)
		_, err := tx.SetRelease(ctx, "nope", "r1", "a", base)
		wantKind(t, "SetRelease missing", err, errs.NotFound)
		wantKind(t, "AppendAudit out of sequence", tx.AppendAudit(ctx, store.AuditEntry{Seq: 5}), errs.Conflict)
		wantKind(t, "PutSecret in an unknown environment", tx.PutSecret(ctx, store.SecretVersion{Environment: "nope", Name: "A", Version: 1, CreatedAt: base}), errs.NotFound)
		wantKind(t, "PutEnvKey in an unknown environment", tx.PutEnvKey(ctx, store.EnvKey{Environment: "nope", Wrapped: []byte{1}, CreatedAt: base}), errs.NotFound)
		wantKind(t, "DeleteSecret missing", tx.DeleteSecret(ctx, "nope", "A", "a", base), errs.NotFound)
		if r, err := tx.GetReleaseByDigest(ctx, "sha256:01"); err != nil || r.ID != "r1" {
			t.Errorf("GetReleaseByDigest after a conflict = %q, %v", r.ID, err)
		}
		_, err = chain.Append(ctx, tx, base, audit.Record{Actor: "a", Action: "release.create", Target: "r1"})
		return err
	})
	if res, err := chain.Verify(ctx, s); err != nil || !res.OK || res.Entries != 1 {
		t.Errorf("Verify = %+v, %v; want ok with 1 entry", res, err)
	}
}

// next returns the next event that is not a resync (which a backend may send
// at any time), failing the test after a while.
func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("subscription closed early")
			}
			if ev.Kind != "resync" {
				return ev
			}
		case <-timeout:
			t.Fatal("no event within 5s")
		}
	}
}

func testNotify(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.Subscribe(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	ev1 := store.Event{Kind: "release", ID: "r1"}
	tx(t, s, func(tx store.Tx) error {
		tx.Notify(ev1)
		select {
		case ev := <-ch:
			if ev.Kind != "resync" {
				t.Errorf("event %+v delivered before commit", ev)
			}
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	})
	diff(t, "event after commit", ev1, next(t, ch))

	s.WithTx(ctx, func(tx store.Tx) error {
		tx.Notify(store.Event{Kind: "token", ID: "rolled-back"})
		return errors.New("boom")
	})
	ev2 := store.Event{Kind: "environment", Environment: "dev"}
	ev3 := store.Event{Kind: "audit", ID: "1"}
	tx(t, s, func(tx store.Tx) error {
		tx.Notify(ev2)
		tx.Notify(ev3)
		return nil
	})
	// Events arrive in order, so ev2 coming next proves the rolled-back
	// event was never sent.
	diff(t, "first event after a rollback", ev2, next(t, ch))
	diff(t, "second event of a transaction", ev3, next(t, ch))

	cancel()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("subscription not closed after its context ended")
		}
	}
}

func testConcurrentWriters(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errc := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errc <- s.WithTx(ctx, func(tx store.Tx) error {
					_, err := chain.Append(ctx, tx, time.Now(), audit.Record{
						Actor: fmt.Sprint("writer", w), Action: "test.write", Details: map[string]int{"i": i},
					})
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("concurrent WithTx: %v", err)
		}
	}
	res, err := chain.Verify(ctx, s)
	if err != nil || !res.OK || res.Entries != writers*each {
		t.Errorf("Verify = %+v, %v; want ok with %d entries", res, err, writers*each)
	}
}

func testPingAndMigrations(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	applied, latest, err := s.Migrations(ctx)
	if err != nil || latest < 1 || applied != latest {
		t.Errorf("Migrations = %d, %d, %v; want applied == latest >= 1", applied, latest, err)
	}
}

// testReopen: data survives closing, and reopening does not re-run
// migrations (the first one creates tables without IF NOT EXISTS, so a
// second run would fail Open).
func testReopen(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	tx(t, s, func(tx store.Tx) error {
		if err := tx.InsertRelease(ctx, release("r1", "sha256:01", base)); err != nil {
			return err
		}
		_, err := chain.Append(ctx, tx, base, audit.Record{Actor: "a", Action: "release.create", Target: "r1"})
		return err
	})
	applied, _, err := s.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t)
	if _, err := s.GetRelease(ctx, "r1"); err != nil {
		t.Errorf("GetRelease after reopening: %v", err)
	}
	if res, err := chain.Verify(ctx, s); err != nil || !res.OK || res.Entries != 1 {
		t.Errorf("Verify after reopening = %+v, %v", res, err)
	}
	again, latest, err := s.Migrations(ctx)
	if err != nil || again != applied || again != latest {
		t.Errorf("Migrations after reopening = %d, %d, %v; want %d", again, latest, err, applied)
	}
}

func secretVersion(env, name string, version int, ct string, at time.Time, by string) store.SecretVersion {
	return store.SecretVersion{Environment: env, Name: name, Version: version, Ciphertext: []byte(ct), CreatedAt: at, CreatedBy: by}
}

func meta(v store.SecretVersion) store.SecretMeta {
	return store.SecretMeta{Name: v.Name, Version: v.Version, UpdatedAt: v.CreatedAt, UpdatedBy: v.CreatedBy}
}

func testSecrets(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(
			tx.UpsertEnvironment(ctx, store.Environment{Name: "dev", UpdatedAt: base}),
			tx.UpsertEnvironment(ctx, store.Environment{Name: "prod", Position: 1, UpdatedAt: base}),
		)
	})
	if got, err := s.ListSecrets(ctx, "dev"); err != nil || got != nil {
		t.Fatalf("ListSecrets with no secrets = %v, %v; want nil", got, err)
	}

	// Ciphertexts are bytes, not text: every byte value must round-trip.
	b1 := secretVersion("dev", "B", 1, "\x00\xff\n\x00", base.In(zone), "alice")
	a1 := secretVersion("dev", "A", 1, "a1", base, "alice")
	a2 := secretVersion("dev", "A", 2, "a2", base.Add(time.Minute), "bob")
	empty := secretVersion("dev", "E", 1, "", base, "alice")
	p1 := secretVersion("prod", "A", 1, "p1", base, "carol")
	for _, v := range []store.SecretVersion{b1, a1, a2, empty, p1} {
		tx(t, s, func(tx store.Tx) error { return tx.PutSecret(ctx, v) })
	}
	empty.Ciphertext = []byte{}
	for _, want := range []store.SecretVersion{a2, b1, empty, p1} {
		got, err := s.GetSecret(ctx, want.Environment, want.Name)
		if err != nil {
			t.Fatalf("GetSecret(%s, %s): %v", want.Environment, want.Name, err)
		}
		diff(t, "GetSecret("+want.Environment+", "+want.Name+")", want, got)
		wantUTC(t, "CreatedAt", got.CreatedAt)
	}
	list, err := s.ListSecrets(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListSecrets(dev), by name", []store.SecretMeta{meta(a2), meta(b1), meta(empty)}, list)
	for _, m := range list {
		wantUTC(t, "UpdatedAt", m.UpdatedAt)
	}
	latest, err := s.LatestSecrets(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "LatestSecrets(dev)", []store.SecretVersion{a2, b1, empty}, latest)

	// Versions follow one another; skipping or repeating one is a Conflict.
	for _, v := range []store.SecretVersion{
		secretVersion("dev", "A", 2, "again", base, "mallory"),
		secretVersion("dev", "A", 4, "skip", base, "mallory"),
		secretVersion("dev", "C", 2, "first must be 1", base, "mallory"),
		secretVersion("dev", "C", 0, "zero", base, "mallory"),
	} {
		err := s.WithTx(ctx, func(tx store.Tx) error { return tx.PutSecret(ctx, v) })
		wantKind(t, fmt.Sprintf("PutSecret(%s v%d)", v.Name, v.Version), err, errs.Conflict)
	}
	err = s.WithTx(ctx, func(tx store.Tx) error {
		return tx.PutSecret(ctx, secretVersion("staging", "A", 1, "x", base, "mallory"))
	})
	wantKind(t, "PutSecret in an unknown environment", err, errs.NotFound)

	// Deleting writes a tombstone: the secret disappears, its versions go on.
	tx(t, s, func(tx store.Tx) error { return tx.DeleteSecret(ctx, "dev", "A", "dave", base.Add(2*time.Minute)) })
	_, err = s.GetSecret(ctx, "dev", "A")
	wantKind(t, "GetSecret of a deleted secret", err, errs.NotFound)
	if n, err := s.LatestSecretVersion(ctx, "dev", "A"); err != nil || n != 3 {
		t.Errorf("LatestSecretVersion after delete = %d, %v; want 3 (the tombstone)", n, err)
	}
	list, _ = s.ListSecrets(ctx, "dev")
	diff(t, "ListSecrets(dev) after delete", []store.SecretMeta{meta(b1), meta(empty)}, list)
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.DeleteSecret(ctx, "dev", "A", "dave", base) })
	wantKind(t, "DeleteSecret of a deleted secret", err, errs.NotFound)
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.DeleteSecret(ctx, "dev", "nope", "dave", base) })
	wantKind(t, "DeleteSecret of a missing secret", err, errs.NotFound)

	// Setting it again continues after the tombstone.
	err = s.WithTx(ctx, func(tx store.Tx) error { return tx.PutSecret(ctx, secretVersion("dev", "A", 3, "a3", base, "erin")) })
	wantKind(t, "PutSecret over the tombstone's version", err, errs.Conflict)
	a4 := secretVersion("dev", "A", 4, "a4", base.Add(3*time.Minute), "erin")
	tx(t, s, func(tx store.Tx) error { return tx.PutSecret(ctx, a4) })
	got, err := s.GetSecret(ctx, "dev", "A")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetSecret after setting a deleted secret again", a4, got)

	for _, tt := range []struct {
		env, name string
		want      int
	}{{"dev", "A", 4}, {"dev", "B", 1}, {"dev", "nope", 0}, {"nope", "A", 0}} {
		if n, err := s.LatestSecretVersion(ctx, tt.env, tt.name); err != nil || n != tt.want {
			t.Errorf("LatestSecretVersion(%s, %s) = %d, %v; want %d", tt.env, tt.name, n, err, tt.want)
		}
	}
	_, err = s.GetSecret(ctx, "nope", "A")
	wantKind(t, "GetSecret in an unknown environment", err, errs.NotFound)
	if got, err := s.ListSecrets(ctx, "nope"); err != nil || got != nil {
		t.Errorf("ListSecrets(nope) = %v, %v; want nil", got, err)
	}
	// Secrets of one environment never show in another.
	list, _ = s.ListSecrets(ctx, "prod")
	diff(t, "ListSecrets(prod)", []store.SecretMeta{meta(p1)}, list)
}

func testEnvKeys(t *testing.T, open func(*testing.T) store.Store) {
	ctx, s := t.Context(), open(t)
	tx(t, s, func(tx store.Tx) error {
		return errors.Join(
			tx.UpsertEnvironment(ctx, store.Environment{Name: "dev", UpdatedAt: base}),
			tx.UpsertEnvironment(ctx, store.Environment{Name: "prod", Position: 1, UpdatedAt: base}),
		)
	})
	if got, err := s.ListEnvKeys(ctx); err != nil || got != nil {
		t.Fatalf("ListEnvKeys on an empty store = %v, %v", got, err)
	}
	_, err := s.GetEnvKey(ctx, "dev")
	wantKind(t, "GetEnvKey before PutEnvKey", err, errs.NotFound)

	prod := store.EnvKey{Environment: "prod", Wrapped: []byte{0, 1, 0xff}, MasterKeyID: "0123abcd", CreatedAt: base.In(zone)}
	dev := store.EnvKey{Environment: "dev", Wrapped: []byte("wrapped-dev"), MasterKeyID: "0123abcd", CreatedAt: base}
	tx(t, s, func(tx store.Tx) error { return errors.Join(tx.PutEnvKey(ctx, prod), tx.PutEnvKey(ctx, dev)) })
	got, err := s.GetEnvKey(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetEnvKey(prod)", prod, got)
	wantUTC(t, "CreatedAt", got.CreatedAt)

	// Rotation replaces a row in place.
	rewrapped := prod
	rewrapped.Wrapped, rewrapped.MasterKeyID = []byte("rewrapped"), "9876fedc"
	tx(t, s, func(tx store.Tx) error { return tx.PutEnvKey(ctx, rewrapped) })
	list, err := s.ListEnvKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListEnvKeys after a replace", []store.EnvKey{dev, rewrapped}, list)

	err = s.WithTx(ctx, func(tx store.Tx) error {
		return tx.PutEnvKey(ctx, store.EnvKey{Environment: "staging", Wrapped: []byte{1}, MasterKeyID: "x", CreatedAt: base})
	})
	wantKind(t, "PutEnvKey in an unknown environment", err, errs.NotFound)

	// A rolled-back rotation leaves the old rows.
	s.WithTx(ctx, func(tx store.Tx) error {
		tx.PutEnvKey(ctx, store.EnvKey{Environment: "dev", Wrapped: []byte("lost"), MasterKeyID: "lost", CreatedAt: base})
		return errors.New("boom")
	})
	got, _ = s.GetEnvKey(ctx, "dev")
	diff(t, "GetEnvKey(dev) after a rollback", dev, got)
}

// OldFiles are the release files a database holds before migration 0003
// (release files into content-addressed blobs): release ID → path →
// content. Two of the releases share a large file.
func OldFiles() map[string]map[string][]byte {
	big := bytes.Repeat([]byte("k: v\n"), 50000)
	return map[string]map[string][]byte{
		"rel_old1": {"envplane.yaml": []byte("one\n"), "config/big.yaml": big, "empty.env": {}, "bin": {0, 0xff, 0}},
		"rel_old2": {"envplane.yaml": []byte("two\n"), "config/big.yaml": big, "config/copy.yaml": big},
	}
}

// CheckMigratedFiles checks that s, opened on a database seeded with
// OldFiles at schema version 2, reads every file back as it was, and that
// a new release sharing their contents is stored and read back.
func CheckMigratedFiles(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	old := OldFiles()
	for id, files := range old {
		got, err := s.GetRelease(ctx, id)
		if err != nil {
			t.Fatalf("GetRelease(%s) after the migration: %v", id, err)
		}
		diff(t, "files of "+id+" after the migration", files, got.Files)
		for path, want := range files {
			got, err := s.GetReleaseFile(ctx, id, path)
			if err != nil {
				t.Fatalf("GetReleaseFile(%s, %s): %v", id, path, err)
			}
			diff(t, "GetReleaseFile("+id+", "+path+")", want, got)
		}
	}
	applied, latest, err := s.Migrations(ctx)
	if err != nil || applied != latest {
		t.Errorf("Migrations() = %d, %d, %v; want all applied", applied, latest, err)
	}
	r := release("rel_new", "sha256:new", base)
	r.Files = map[string][]byte{"envplane.yaml": []byte("new\n"), "config/big.yaml": old["rel_old1"]["config/big.yaml"]}
	tx(t, s, func(tx store.Tx) error { return tx.InsertRelease(ctx, r) })
	got, err := s.GetRelease(ctx, "rel_new")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "files of a release stored after the migration", r.Files, got.Files)
}
