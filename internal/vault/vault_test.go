package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/store/postgres"
	"github.com/envplane/envplane/internal/store/postgres/pgtest"
	"github.com/envplane/envplane/internal/store/sqlite"
	"github.com/envplane/envplane/internal/vault"
)

const canary = "CANARY-7f3a9c-do-not-leak"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// backends runs fn on a fresh SQLite store and, when
// ENVPLANE_TEST_POSTGRES_URL is set, on a fresh PostgreSQL schema.
func backends(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite(t, filepath.Join(t.TempDir(), "envplane.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st, err := postgres.Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		seedEnvs(t, st)
		fn(t, st)
	})
}

func openSQLite(t testing.TB, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seedEnvs(t, st)
	return st
}

func seedEnvs(t testing.TB, st store.Store) {
	t.Helper()
	err := st.WithTx(context.Background(), func(tx store.Tx) error {
		for i, name := range []string{"development", "staging", "production"} {
			if err := tx.UpsertEnvironment(context.Background(), store.Environment{Name: name, Position: i, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func key(t testing.TB, fill byte) *vault.MasterKey {
	t.Helper()
	k, err := vault.NewMasterKey(bytes.Repeat([]byte{fill}, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newVault(t testing.TB, master *vault.MasterKey, previous ...*vault.MasterKey) *vault.Vault {
	t.Helper()
	v, err := vault.New(vault.Options{Master: master, Previous: previous})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func put(t testing.TB, v *vault.Vault, st store.Store, env, name, value string, expect *int) (store.SecretMeta, error) {
	t.Helper()
	var m store.SecretMeta
	err := st.WithTx(context.Background(), func(tx store.Tx) error {
		var err error
		m, err = v.Put(context.Background(), tx, env, name, value, expect, "alice", now)
		return err
	})
	return m, err
}

func mustPut(t testing.TB, v *vault.Vault, st store.Store, env, name, value string) store.SecretMeta {
	t.Helper()
	m, err := put(t, v, st, env, name, value, nil)
	if err != nil {
		t.Fatalf("Put(%s, %s): %v", env, name, err)
	}
	return m
}

func ptr(n int) *int { return &n }

// noCanary fails when s holds the canary value.
func noCanary(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, canary) {
		t.Errorf("%s holds the secret value: %s", what, s)
	}
}

func TestRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		v := newVault(t, key(t, 1))
		if m := mustPut(t, v, st, "staging", "DB_PASSWORD", "first"); m.Version != 1 || m.UpdatedBy != "alice" || !m.UpdatedAt.Equal(now) {
			t.Errorf("first Put = %+v", m)
		}
		if m := mustPut(t, v, st, "staging", "DB_PASSWORD", canary); m.Version != 2 {
			t.Errorf("second Put = %+v, want version 2", m)
		}
		mustPut(t, v, st, "staging", "API_KEY", "")
		mustPut(t, v, st, "production", "DB_PASSWORD", "prod-value")

		got, err := v.Get(ctx, st, "staging", "DB_PASSWORD")
		if err != nil || got.Value != canary || got.Version != 2 {
			t.Fatalf("Get = %v (value ok %v), %v", got, got.Value == canary, err)
		}
		noCanary(t, "fmt of a Secret", fmt.Sprintf("%v %+v %#v %s", got, got, got, got))
		list, err := v.List(ctx, st, "staging")
		if err != nil || len(list) != 2 || list[0].Name != "API_KEY" || list[1].Name != "DB_PASSWORD" || list[1].Version != 2 {
			t.Errorf("List = %+v, %v", list, err)
		}
		vals, err := v.Values(ctx, st, "staging")
		if err != nil || len(vals) != 2 || vals["DB_PASSWORD"].Value != canary || vals["DB_PASSWORD"].Version != 2 || vals["API_KEY"].Value != "" {
			t.Errorf("Values(staging) = %d values, %v", len(vals), err)
		}
		if vals, err := v.Values(ctx, st, "development"); err != nil || len(vals) != 0 {
			t.Errorf("Values(development) = %v, %v; want none", vals, err)
		}
		// A second Vault (another replica, or a restart) reads the same.
		if got, err := newVault(t, key(t, 1)).Get(ctx, st, "production", "DB_PASSWORD"); err != nil || got.Value != "prod-value" {
			t.Errorf("Get from a fresh vault: %v", err)
		}

		// Check-and-set.
		_, err = put(t, v, st, "staging", "DB_PASSWORD", "stale", ptr(1))
		if !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "version 2") {
			t.Errorf("Put with a stale version = %v, want a conflict naming version 2", err)
		}
		noCanary(t, "conflict", err.Error())
		if _, err := put(t, v, st, "staging", "NEW", "x", ptr(1)); !errs.Is(err, errs.Conflict) || !strings.Contains(err.Error(), "not set") {
			t.Errorf("Put of a new secret expecting version 1 = %v", err)
		}
		if m, err := put(t, v, st, "staging", "NEW", "x", ptr(0)); err != nil || m.Version != 1 {
			t.Errorf("Put of a new secret expecting version 0 = %+v, %v", m, err)
		}
		if m, err := put(t, v, st, "staging", "DB_PASSWORD", "third", ptr(2)); err != nil || m.Version != 3 {
			t.Errorf("Put expecting the current version = %+v, %v", m, err)
		}

		// Delete leaves a tombstone; setting again continues the versions.
		var tomb int
		err = st.WithTx(ctx, func(tx store.Tx) error {
			tomb, err = v.Delete(ctx, tx, "staging", "DB_PASSWORD", nil, "bob", now)
			return err
		})
		if err != nil || tomb != 4 {
			t.Fatalf("Delete = %d, %v", tomb, err)
		}
		if _, err := v.Get(ctx, st, "staging", "DB_PASSWORD"); !errs.Is(err, errs.NotFound) {
			t.Errorf("Get after delete = %v", err)
		}
		if m, err := put(t, v, st, "staging", "DB_PASSWORD", "back", ptr(0)); err != nil || m.Version != 5 {
			t.Errorf("Put after delete = %+v, %v; want version 5", m, err)
		}

		// Unknown environments and secrets.
		for _, err := range []error{
			func() error { _, err := v.Get(ctx, st, "nope", "A"); return err }(),
			func() error { _, err := v.List(ctx, st, "nope"); return err }(),
			func() error { _, err := put(t, v, st, "nope", "A", "x", nil); return err }(),
			func() error { _, err := v.Get(ctx, st, "staging", "MISSING"); return err }(),
		} {
			if !errs.Is(err, errs.NotFound) {
				t.Errorf("err = %v, want not found", err)
			}
		}
	})
}

func TestValidation(t *testing.T) {
	st := openSQLite(t, filepath.Join(t.TempDir(), "envplane.db"))
	v := newVault(t, key(t, 1))
	for _, name := range []string{"A", "_x", "db.password", "API-KEY_2", strings.Repeat("a", vault.MaxNameLen)} {
		if err := vault.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "1A", "-a", ".a", "a b", "a/b", "a$", "é", strings.Repeat("a", vault.MaxNameLen+1)} {
		if err := vault.ValidateName(name); !errs.Is(err, errs.Invalid) {
			t.Errorf("ValidateName(%q) = %v, want invalid", name, err)
		}
	}
	if _, err := put(t, v, st, "staging", "BIG", strings.Repeat("x", vault.MaxValueBytes), nil); err != nil {
		t.Errorf("a 64 KiB value: %v", err)
	}
	big := canary + strings.Repeat("x", vault.MaxValueBytes)
	_, err := put(t, v, st, "staging", "1bad", big, nil)
	var e *errs.Error
	if !errs.Is(err, errs.Invalid) || !errors.As(err, &e) || len(e.Fields) != 2 {
		t.Fatalf("bad name and value = %v, want two field errors", err)
	}
	b, _ := json.Marshal(e.Fields)
	noCanary(t, "field errors", string(b))
}

// TestTampering: a ciphertext moved to another secret, version or
// environment, or a data key moved to another environment, does not open;
// the errors say which row, never a value.
func TestTampering(t *testing.T) {
	ctx := t.Context()
	st := openSQLite(t, filepath.Join(t.TempDir(), "envplane.db"))
	v := newVault(t, key(t, 1))
	mustPut(t, v, st, "staging", "A", canary)
	mustPut(t, v, st, "staging", "B", "b")
	mustPut(t, v, st, "production", "A", "p")
	a, _ := st.GetSecret(ctx, "staging", "A")

	// A's ciphertext stored as B's next version.
	err := st.WithTx(ctx, func(tx store.Tx) error {
		return tx.PutSecret(ctx, store.SecretVersion{Environment: "staging", Name: "B", Version: 2, Ciphertext: a.Ciphertext, CreatedAt: now, CreatedBy: "mallory"})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Get(ctx, st, "staging", "B")
	if !errs.Is(err, errs.Internal) || !strings.Contains(err.Error(), "secret B version 2 in staging does not decrypt") {
		t.Errorf("Get of a swapped ciphertext = %v", err)
	}
	if _, err := newVault(t, key(t, 1)).Values(ctx, st, "staging"); err == nil {
		t.Error("Values with a swapped ciphertext succeeded")
	} else {
		noCanary(t, "error", err.Error())
	}

	// staging's wrapped data key copied into production's row.
	sk, _ := st.GetEnvKey(ctx, "staging")
	err = st.WithTx(ctx, func(tx store.Tx) error {
		return tx.PutEnvKey(ctx, store.EnvKey{Environment: "production", Wrapped: sk.Wrapped, MasterKeyID: sk.MasterKeyID, CreatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = newVault(t, key(t, 1)).Verify(ctx, st)
	if err == nil || !strings.Contains(err.Error(), "the data key of environment production does not open") {
		t.Errorf("Verify with a moved data key = %v", err)
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := t.Context()
	st := openSQLite(t, filepath.Join(t.TempDir(), "envplane.db"))
	good, bad := key(t, 1), key(t, 2)
	mustPut(t, newVault(t, good), st, "staging", "A", canary)
	v := newVault(t, bad)
	err := v.Verify(ctx, st)
	if err == nil || !strings.Contains(err.Error(), "wrapped by master key "+good.ID()) || !strings.Contains(err.Error(), "holds master key "+bad.ID()) {
		t.Errorf("Verify with the wrong key = %v", err)
	}
	if _, err := v.Get(ctx, st, "staging", "A"); err == nil {
		t.Error("Get with the wrong key succeeded")
	}
	if _, err := put(t, v, st, "staging", "B", "x", nil); err == nil {
		t.Error("Put with the wrong key succeeded: it would write a secret nobody can read")
	}
}

func TestRotateMaster(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		oldKey, newKey, other := key(t, 1), key(t, 2), key(t, 3)
		v := newVault(t, oldKey)
		mustPut(t, v, st, "staging", "A", canary)
		mustPut(t, v, st, "staging", "B", "b")
		mustPut(t, v, st, "production", "A", "p")
		before, _ := st.LatestSecrets(ctx, "staging")

		// During the rotation a replica holds both keys and writes new data
		// keys under the new one; the rotation leaves those alone.
		both := newVault(t, newKey, oldKey)
		mustPut(t, both, st, "development", "D", "d")

		res, err := vault.RotateMaster(ctx, st, oldKey, newKey, "ops", now)
		if err != nil || res.Rewrapped != 2 || res.Already != 1 {
			t.Fatalf("RotateMaster = %+v, %v; want 2 re-wrapped, 1 already", res, err)
		}
		after, _ := st.LatestSecrets(ctx, "staging")
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Error("rotation changed secret rows")
		}
		if _, err := both.Values(ctx, st, "staging"); err != nil {
			t.Errorf("the replica holding both keys after rotation: %v", err)
		}
		fresh := newVault(t, newKey)
		if err := fresh.Verify(ctx, st); err != nil {
			t.Fatalf("Verify with the new key: %v", err)
		}
		for env, want := range map[string]string{"staging": canary, "production": "p", "development": "d"} {
			got, err := fresh.Get(ctx, st, env, map[string]string{"staging": "A", "production": "A", "development": "D"}[env])
			if err != nil || got.Value != want {
				t.Errorf("Get in %s with the new key: %v", env, err)
			}
		}
		if err := newVault(t, oldKey).Verify(ctx, st); err == nil {
			t.Error("the old key still opens the data keys after rotation")
		}

		// Repeating is harmless; a key that wrapped nothing is refused.
		if res, err := vault.RotateMaster(ctx, st, oldKey, newKey, "ops", now); err != nil || res.Rewrapped != 0 || res.Already != 3 {
			t.Errorf("second RotateMaster = %+v, %v", res, err)
		}
		if _, err := vault.RotateMaster(ctx, st, other, oldKey, "ops", now); !errs.Is(err, errs.Conflict) {
			t.Errorf("RotateMaster from a key that wrapped nothing = %v, want conflict", err)
		}
		if _, err := vault.RotateMaster(ctx, st, newKey, newKey, "ops", now); err == nil {
			t.Error("RotateMaster to the same key succeeded")
		}

		entries, _ := st.ListAudit(ctx, 0, 0)
		found := 0
		for _, e := range entries {
			noCanary(t, "audit entry", string(e.Details))
			for _, k := range []*vault.MasterKey{oldKey, newKey} {
				if strings.Contains(string(e.Details), k.Encode()) {
					t.Errorf("audit entry %d holds a master key", e.Seq)
				}
			}
			if e.Action == "secrets.rotate-master-key" {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%d rotation audit entries, want 1 (the no-op repeat writes none)", found)
		}
		// The chain is keyed by the new master key alone now.
		chain, err := audit.NewChain(newKey.AuditKey())
		if err != nil {
			t.Fatal(err)
		}
		if res, err := chain.Verify(ctx, st); err != nil || !res.OK {
			t.Errorf("audit chain: %+v, %v", res, err)
		}
	})
}

// TestMasterKeyNeverPrints formats a key, a pointer to it and structs that
// hold either (exported and unexported fields) with every fmt verb and both
// slog handlers, and looks for the key's bytes in every encoding those could
// print them in. Each output must show the ID instead.
func TestMasterKeyNeverPrints(t *testing.T) {
	raw := make([]byte, vault.KeySize)
	for i := range raw {
		raw[i] = byte(0xa5 + 37*i) // distinct bytes, none printable alone
	}
	k, err := vault.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	type exported struct {
		Key  *vault.MasterKey
		Copy vault.MasterKey
	}
	type unexported struct {
		key  *vault.MasterKey
		copy vault.MasterKey
	}
	values := map[string]any{
		"pointer":    k,
		"value":      *k,
		"exported":   exported{k, *k},
		"unexported": unexported{k, *k},
		"slice":      []*vault.MasterKey{k},
		"map":        map[string]vault.MasterKey{"k": *k},
	}
	needles := leakEncodings(raw[:6])
	for name, v := range values {
		outs := map[string]string{}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			outs[verb] = fmt.Sprintf(verb, v)
		}
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("m", "key", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "key", v, slog.Group("g", "key", v))
		outs["slog text"], outs["slog JSON"] = text.String(), js.String()
		for how, out := range outs {
			for enc, needle := range needles {
				if strings.Contains(out, needle) {
					t.Errorf("%s formatted with %s shows the key bytes (%s %q): %s", name, how, enc, needle, out)
				}
			}
		}
		if name != "pointer" && name != "value" {
			continue
		}
		for how, out := range outs {
			if !strings.Contains(out, "master key "+k.ID()) {
				t.Errorf("%s formatted with %s = %s; want it to read master key %s", name, how, out, k.ID())
			}
		}
	}
	if len(k.ID()) != 8 {
		t.Errorf("ID %q: want 8 hex digits", k.ID())
	}
}

// leakEncodings are the forms in which fmt, slog and encoding/json print
// bytes: decimal lists (fmt, JSON arrays), Go syntax hex, plain hex in both
// cases, base64 in both alphabets, and the raw bytes themselves. prefix is
// 6 bytes, so its base64 is a prefix of the whole key's.
func leakEncodings(prefix []byte) map[string]string {
	dec := make([]string, len(prefix))
	goHex := make([]string, len(prefix))
	for i, b := range prefix {
		dec[i] = strconv.Itoa(int(b))
		goHex[i] = fmt.Sprintf("%#x", b)
	}
	return map[string]string{
		"decimal (fmt)":  strings.Join(dec, " "),
		"decimal (JSON)": strings.Join(dec, ","),
		"decimal (Go)":   strings.Join(dec, ", "),
		"Go hex":         strings.Join(goHex, ", "),
		"hex":            hex.EncodeToString(prefix),
		"HEX":            strings.ToUpper(hex.EncodeToString(prefix)),
		"base64":         base64.StdEncoding.EncodeToString(prefix),
		"base64url":      base64.URLEncoding.EncodeToString(prefix),
		"raw":            string(prefix),
		"quoted":         strconv.Quote(string(prefix))[1:10],
	}
}

func TestParseMasterKey(t *testing.T) {
	k := key(t, 9)
	for _, text := range []string{k.Encode(), " " + k.Encode() + "\n", strings.TrimRight(k.Encode(), "=")} {
		got, err := vault.ParseMasterKey(text)
		if err != nil || got.ID() != k.ID() {
			t.Errorf("ParseMasterKey(%q) = %v", text, err)
		}
	}
	for _, text := range []string{"", "not base64 at all!", "c2hvcnQ=", canary} {
		_, err := vault.ParseMasterKey(text)
		if err == nil {
			t.Errorf("ParseMasterKey(%q) succeeded", text)
			continue
		}
		if text != "" && strings.Contains(err.Error(), text) {
			t.Errorf("the error quotes the key text: %v", err)
		}
	}
}

func TestLoad(t *testing.T) {
	ctx := t.Context()
	k := key(t, 4)
	dir := t.TempDir()
	file := filepath.Join(dir, "given.key")
	if err := vault.CreateKeyFile(file, k); err != nil {
		t.Fatal(err)
	}
	if err := vault.CreateKeyFile(file, k); err == nil {
		t.Error("CreateKeyFile over an existing file succeeded")
	}

	l, err := vault.Load(ctx, vault.Source{Value: k.Encode()})
	if err != nil || l.Key.ID() != k.ID() || l.Generated {
		t.Errorf("Load(value) = %+v, %v", l, err)
	}
	l, err = vault.Load(ctx, vault.Source{File: file})
	if err != nil || l.Key.ID() != k.ID() || l.From != file {
		t.Errorf("Load(file) = %+v, %v", l, err)
	}
	if _, err := vault.Load(ctx, vault.Source{Value: k.Encode(), File: file}); err == nil {
		t.Error("Load with both a value and a file succeeded")
	}
	if _, err := vault.Load(ctx, vault.Source{Value: "nope"}); err == nil || !strings.Contains(err.Error(), "ENVPLANE_MASTER_KEY") {
		t.Errorf("Load(bad value) = %v", err)
	}
	if _, err := vault.Load(ctx, vault.Source{File: filepath.Join(dir, "missing")}); err == nil {
		t.Error("Load(missing file) succeeded")
	}

	// PostgreSQL: no data directory, so no generation.
	_, err = vault.Load(ctx, vault.Source{})
	for _, want := range []string{"PostgreSQL", "ENVPLANE_MASTER_KEY", "--master-key-file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load without a key for PostgreSQL = %v; want it to mention %s", err, want)
		}
	}

	// SQLite default: generated once, 0600, then reused.
	dataDir := filepath.Join(t.TempDir(), ".envplane")
	st := openSQLite(t, filepath.Join(dataDir, "envplane.db"))
	l, err = vault.Load(ctx, vault.Source{DataDir: dataDir, Store: st})
	if err != nil || !l.Generated || l.From != filepath.Join(dataDir, vault.KeyFileName) {
		t.Fatalf("Load(generate) = %+v, %v", l, err)
	}
	if fi, err := os.Stat(l.From); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("generated key file: %v, %v; want mode 0600", err, fi)
	}
	again, err := vault.Load(ctx, vault.Source{DataDir: dataDir, Store: st})
	if err != nil || again.Generated || again.Key.ID() != l.Key.ID() {
		t.Errorf("second Load = %+v, %v; want the generated key, not generated again", again, err)
	}

	// Secrets exist but the key file went missing: never generate over them.
	mustPut(t, newVault(t, l.Key), st, "staging", "A", "x")
	os.Remove(l.From)
	_, err = vault.Load(ctx, vault.Source{DataDir: dataDir, Store: st})
	if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), l.Key.ID()) {
		t.Errorf("Load with the key file gone = %v", err)
	}
	if _, err := os.Stat(l.From); err == nil {
		t.Error("a new key was generated over existing secrets")
	}
}

// BenchmarkValues200 is decrypting a 200-secret environment for resolution,
// store read included (SQLite); the budget is 2 ms.
func BenchmarkValues200(b *testing.B) {
	st := openSQLite(b, filepath.Join(b.TempDir(), "envplane.db"))
	v := newVault(b, key(b, 1))
	err := st.WithTx(context.Background(), func(tx store.Tx) error {
		for i := range 200 {
			if _, err := v.Put(context.Background(), tx, "production", fmt.Sprintf("SECRET_%03d", i), strings.Repeat("v", 40), nil, "bench", now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		vals, err := v.Values(ctx, st, "production")
		if err != nil || len(vals) != 200 {
			b.Fatal(len(vals), err)
		}
	}
}

// TestNeverAlterValue: a value that is not UTF-8 is refused, naming the
// secret and never quoting the value; nothing is stored.
func TestNeverAlterValue(t *testing.T) {
	st := openSQLite(t, filepath.Join(t.TempDir(), "envplane.db"))
	v := newVault(t, key(t, 1))
	tests := []struct {
		name, value string
		at          int // offset of the bad byte; -1: valid
	}{
		{"VALID", canary + " é ✓ \U0001F511 \ufffd", -1},
		{"LATIN1", canary + "caf\xe9", len(canary) + 3},
		{"LONE_CONT", "\x80" + canary, 0},
		{"TRUNCATED", canary + "\xe2\x9c", len(canary)},
		{"SURROGATE", canary + "\xed\xa0\x80", len(canary)}, // CESU-8 of U+D800
		{"OVERLONG", "\xc0\xaf" + canary, 0},
	}
	for _, tt := range tests {
		_, err := put(t, v, st, "staging", tt.name, tt.value, nil)
		if tt.at < 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != errs.Invalid {
			t.Errorf("%s: Put = %v, want an invalid error", tt.name, err)
			continue
		}
		want := []errs.FieldError{{Field: "value", Message: fmt.Sprintf("the value of secret %s is not valid UTF-8 (byte %d); "+
			"secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first", tt.name, tt.at)}}
		if diff := cmp.Diff(want, e.Fields); diff != "" {
			t.Errorf("%s: field errors (-want +got):\n%s", tt.name, diff)
		}
		b, _ := json.Marshal(e)
		noCanary(t, tt.name+" error", err.Error()+string(b))
		if _, err := v.Get(t.Context(), st, "staging", tt.name); !errs.Is(err, errs.NotFound) {
			t.Errorf("%s: stored anyway (Get = %v)", tt.name, err)
		}
	}
}

// TestJSONValue: JSON request bodies decode values exactly or not at all,
// where encoding/json alone would put U+FFFD in place of what was sent.
func TestJSONValue(t *testing.T) {
	tests := []struct {
		body string
		want *string // nil: absent
		err  string  // "" : no error
	}{
		{`{"value":"plain"}`, ptrS("plain"), ""},
		{`{"value":"é ✓ \u00e9 \ud83d\udd11 \ufffd \\ud800 \"\\\ud83d\udd11"}`, ptrS("é ✓ é 🔑 \ufffd \\ud800 \"\\🔑"), ""},
		{`{}`, nil, ""},
		{`{"value":null}`, nil, ""},
		{"{\"value\":\"" + canary + "\xff\"}", nil, "not valid UTF-8 (byte 26 of the string)"},
		{"{\"value\":\"" + canary + "\xed\xa0\x80\"}", nil, "not valid UTF-8 (byte 26 of the string)"},
		{`{"value":"` + canary + `\ud800"}`, nil, "an unpaired UTF-16 surrogate escape at byte 26 of the string"},
		{`{"value":"` + canary + `\udc00\ud800"}`, nil, "an unpaired UTF-16 surrogate escape at byte 26 of the string"},
		{`{"value":"` + canary + `\ud83dx"}`, nil, "an unpaired UTF-16 surrogate escape at byte 26 of the string"},
		{`{"value":"` + canary + `\uD83D\u0041"}`, nil, "an unpaired UTF-16 surrogate escape at byte 26 of the string"},
		{`{"value":"\\\\` + canary + `\ud83d"}`, nil, "an unpaired UTF-16 surrogate escape at byte 30 of the string"},
		{`{"value":12}`, nil, "must be a string"},
	}
	for _, tt := range tests {
		var req struct {
			Value *vault.JSONValue `json:"value"`
		}
		err := json.Unmarshal([]byte(tt.body), &req)
		var got *string
		if req.Value != nil {
			got = ptrS(string(*req.Value))
		}
		if diff := cmp.Diff(tt.want, got); tt.err == "" && diff != "" {
			t.Errorf("%q: value (-want +got):\n%s", tt.body, diff)
		}
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.body, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errs.Is(err, errs.Invalid)):
			t.Errorf("%q: error %v, want an invalid error with %q", tt.body, err, tt.err)
		}
		if err != nil {
			noCanary(t, "error", err.Error())
		}
	}
}

func ptrS(s string) *string { return &s }
