// Package vault keeps the server's secrets: per-environment, versioned,
// written with check-and-set, and encrypted at rest in two layers.
//
//   - Each environment has a random 32-byte data key. The store holds it only
//     wrapped: AES-256-GCM under the server's master key, with the
//     environment's name and the master key's ID as additional data, so a
//     wrapped key moved to another environment's row does not open.
//   - Each secret version is AES-256-GCM under its environment's data key,
//     with environment, name and version as additional data, so swapping
//     ciphertexts between secrets or versions fails authentication.
//
// The store sees ciphertexts only. No value, data key or master key ever
// goes into an error, a log line or an audit entry: errors name
// environments, secrets, versions and master key IDs.
//
// Master key rotation re-wraps the data keys (one small row per
// environment) in one transaction and leaves secret rows alone. Each
// env_keys row names the master key that wrapped it, and a Vault opens rows
// under any key it holds, so replicas started with the new key and the old
// one as a previous key keep serving while the rotation runs; see
// RotateMaster.
package vault

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/tree"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// Limits on what a secret may be.
const (
	MaxValueBytes = 64 << 10
	MaxNameLen    = 256
)

// Sealed formats start with a version byte, then the GCM nonce.
const (
	formatV1  = 1
	nonceSize = 12
)

// Options configure a Vault.
type Options struct {
	// Master wraps new data keys and opens data keys it wrapped. Required.
	Master *MasterKey
	// Previous keys still open data keys they wrapped, so that a server can
	// run across a master key rotation.
	Previous []*MasterKey
	Rand     io.Reader // nonces and data keys; nil: crypto/rand
}

// Vault encrypts and decrypts secrets. It caches unwrapped data keys, so
// decrypting an environment's secrets costs one AES-GCM open per value.
// It is safe for concurrent use.
type Vault struct {
	master *MasterKey
	keys   map[string]*MasterKey // by ID: Master and Previous
	rand   io.Reader

	mu       sync.RWMutex
	dataKeys map[string]*dataKey // by environment
}

// dataKey is an unwrapped data key and the row it came from: a cached key
// is used only while the row still holds the same wrapped bytes.
type dataKey struct {
	wrapped []byte
	aead    cipher.AEAD
}

// New makes a Vault.
func New(o Options) (*Vault, error) {
	if o.Master == nil {
		return nil, errors.New("vault: a master key is required")
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	v := &Vault{master: o.Master, keys: map[string]*MasterKey{o.Master.id: o.Master}, rand: o.Rand, dataKeys: map[string]*dataKey{}}
	for _, k := range o.Previous {
		if k != nil {
			v.keys[k.id] = k
		}
	}
	return v, nil
}

// AuditChain is the audit chain keyed by the master key, accepting entries
// signed under the previous keys too (a rotation in progress).
func (v *Vault) AuditChain() (*audit.Chain, error) {
	var previous [][]byte
	for id, k := range v.keys {
		if id != v.master.id {
			previous = append(previous, k.AuditKey())
		}
	}
	return audit.NewChain(v.master.AuditKey(), previous...)
}

// MasterKeyID is the ID of the key that wraps new data keys.
func (v *Vault) MasterKeyID() string { return v.master.id }

// keyIDs lists the IDs of the master keys held, for messages.
func (v *Vault) keyIDs() string {
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

// Secret is one decrypted secret. It prints and logs without its value.
type Secret struct {
	store.SecretMeta
	Value string
}

func (s Secret) String() string {
	return fmt.Sprintf("secret %s v%d", s.Name, s.Version)
}

func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ValidateName checks a secret name: a letter or underscore, then letters,
// digits, underscores, dots and dashes, so every name can be referenced as
// ${NAME} and bound like an environment variable.
func ValidateName(name string) error {
	msg := ""
	switch {
	case name == "":
		msg = "required"
	case len(name) > MaxNameLen:
		msg = fmt.Sprintf("at most %d characters", MaxNameLen)
	default:
		for i, c := range []byte(name) {
			letter := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
			if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '.' || c == '-')) {
				msg = "must match [A-Za-z_][A-Za-z0-9_.-]*"
				break
			}
		}
	}
	if msg == "" {
		return nil
	}
	return &errs.Error{Kind: errs.Invalid, Message: "the request is not valid", Fields: []errs.FieldError{{Field: "name", Message: msg}}}
}

// validateValue checks a value's size and encoding; the message gives
// sizes and offsets, never content. A value is UTF-8 text, kept exactly as
// written: invalid UTF-8 is refused, never repaired into U+FFFD.
func validateValue(name, value string) error {
	msg := ""
	switch {
	case len(value) > MaxValueBytes:
		msg = fmt.Sprintf("at most %d bytes (64 KiB); this one is %d bytes", MaxValueBytes, len(value))
	case !utf8.ValidString(value):
		msg = notUTF8(name, tree.InvalidUTF8At([]byte(value)))
	default:
		return nil
	}
	return &errs.Error{Kind: errs.Invalid, Message: "the request is not valid", Fields: []errs.FieldError{{Field: "value", Message: msg}}}
}

func notUTF8(name string, at int) string {
	return fmt.Sprintf("the value of secret %s is not valid UTF-8 (byte %d); secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first", name, at)
}

// JSONValue is a secret value in a JSON request body. encoding/json turns
// invalid UTF-8 and unpaired surrogate escapes ("\ud800") in a string into
// U+FFFD, silently changing the secret; JSONValue refuses them instead, as an
// Invalid error that says where and never quotes the body. Decode request
// bodies into a *JSONValue field (nil when absent or null).
type JSONValue string

// UnmarshalJSON decodes a JSON string exactly or refuses it.
func (v *JSONValue) UnmarshalJSON(b []byte) error {
	invalid := func(msg string) error {
		return &errs.Error{Kind: errs.Invalid, Message: "the request is not valid: " + msg, Fields: []errs.FieldError{{Field: "value", Message: msg}}}
	}
	if len(b) == 0 || b[0] != '"' {
		return invalid("must be a string")
	}
	if at := tree.InvalidUTF8At(b); at >= 0 {
		return invalid(fmt.Sprintf("not valid UTF-8 (byte %d of the string); secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first", at))
	}
	if at := loneSurrogateAt(b); at >= 0 {
		return invalid(fmt.Sprintf("an unpaired UTF-16 surrogate escape at byte %d of the string is not a character; secret values are stored exactly, never repaired", at))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return invalid("must be a string")
	}
	*v = JSONValue(s)
	return nil
}

// loneSurrogateAt is the offset of the first \uXXXX escape in the JSON
// string b that is a surrogate without its partner, or -1.
func loneSurrogateAt(b []byte) int {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		switch {
		case !ok:
			i++ // another escape: skip the escaped byte
		case utf16.IsSurrogate(r) && r < 0xdc00:
			if lo, ok := hex4(i + 6); ok && lo >= 0xdc00 && lo <= 0xdfff {
				i += 11
				continue
			}
			return i
		case utf16.IsSurrogate(r):
			return i
		default:
			i += 5
		}
	}
	return -1
}

// knownEnvironment answers NotFound for an environment no release defined.
func knownEnvironment(ctx context.Context, r store.Reader, env string) error {
	_, err := r.GetEnvironment(ctx, env)
	if errs.Is(err, errs.NotFound) {
		return errs.E(errs.NotFound, "unknown environment %q", env)
	}
	return err
}

// Put sets a secret's value as a new version, inside tx. With expect set,
// it is a check-and-set: expect must be the version the caller last saw (0:
// the secret must not be set), else Conflict naming the current version.
// It creates the environment's data key on first use.
func (v *Vault) Put(ctx context.Context, tx store.Tx, env, name, value string, expect *int, actor string, at time.Time) (store.SecretMeta, error) {
	if err := errors.Join(ValidateName(name), validateValue(name, value)); err != nil {
		return store.SecretMeta{}, mergeFields(err)
	}
	if err := knownEnvironment(ctx, tx, env); err != nil {
		return store.SecretMeta{}, err
	}
	current := 0
	cur, err := tx.GetSecret(ctx, env, name)
	switch {
	case err == nil:
		current = cur.Version
	case !errs.Is(err, errs.NotFound):
		return store.SecretMeta{}, err
	}
	if expect != nil && *expect != current {
		return store.SecretMeta{}, casConflict(env, name, *expect, current)
	}
	// Versions continue after a deletion's tombstone.
	latest, err := tx.LatestSecretVersion(ctx, env, name)
	if err != nil {
		return store.SecretMeta{}, err
	}
	aead, err := v.dataKeyForWrite(ctx, tx, env, at)
	if err != nil {
		return store.SecretMeta{}, err
	}
	version := latest + 1
	ct, err := v.seal(aead, []byte(value), secretAD(env, name, version))
	if err != nil {
		return store.SecretMeta{}, err
	}
	at = at.UTC().Truncate(time.Microsecond) // what every backend keeps exactly
	if err := tx.PutSecret(ctx, store.SecretVersion{Environment: env, Name: name, Version: version, Ciphertext: ct, CreatedAt: at, CreatedBy: actor}); err != nil {
		return store.SecretMeta{}, err
	}
	return store.SecretMeta{Name: name, Version: version, UpdatedAt: at, UpdatedBy: actor}, nil
}

func casConflict(env, name string, expect, current int) error {
	now := fmt.Sprintf("is at version %d", current)
	if current == 0 {
		now = "is not set"
	}
	return errs.E(errs.Conflict, "secret %s in %s %s, not version %d: someone changed it; read it again and retry", name, env, now, expect)
}

// mergeFields joins the field errors of several Invalid errors into one.
func mergeFields(err error) error {
	var fields []errs.FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ee *errs.Error
		if errors.As(e, &ee) {
			fields = append(fields, ee.Fields...)
		}
	}
	return &errs.Error{Kind: errs.Invalid, Message: "the request is not valid", Fields: fields}
}

// Get returns a secret's latest value; NotFound when it is not set.
func (v *Vault) Get(ctx context.Context, r store.Reader, env, name string) (Secret, error) {
	if err := ValidateName(name); err != nil {
		return Secret{}, err
	}
	if err := knownEnvironment(ctx, r, env); err != nil {
		return Secret{}, err
	}
	sv, err := r.GetSecret(ctx, env, name)
	if errs.Is(err, errs.NotFound) {
		return Secret{}, errs.E(errs.NotFound, "secret %s is not set in %s", name, env)
	}
	if err != nil {
		return Secret{}, err
	}
	row, err := r.GetEnvKey(ctx, env)
	if err != nil {
		return Secret{}, missingKey(env, err)
	}
	aead, err := v.dataKey(row)
	if err != nil {
		return Secret{}, err
	}
	pt, err := open(aead, sv.Ciphertext, secretAD(env, name, sv.Version))
	if err != nil {
		return Secret{}, corrupt(env, name, sv.Version, err)
	}
	return Secret{SecretMeta: store.SecretMeta{Name: name, Version: sv.Version, UpdatedAt: sv.CreatedAt, UpdatedBy: sv.CreatedBy}, Value: string(pt)}, nil
}

// Meta describes a secret's latest version without decrypting it.
func (v *Vault) Meta(ctx context.Context, r store.Reader, env, name string) (store.SecretMeta, error) {
	if err := ValidateName(name); err != nil {
		return store.SecretMeta{}, err
	}
	if err := knownEnvironment(ctx, r, env); err != nil {
		return store.SecretMeta{}, err
	}
	sv, err := r.GetSecret(ctx, env, name)
	if errs.Is(err, errs.NotFound) {
		return store.SecretMeta{}, errs.E(errs.NotFound, "secret %s is not set in %s", name, env)
	}
	return store.SecretMeta{Name: name, Version: sv.Version, UpdatedAt: sv.CreatedAt, UpdatedBy: sv.CreatedBy}, err
}

// List describes every secret of env, by name; never values.
func (v *Vault) List(ctx context.Context, r store.Reader, env string) ([]store.SecretMeta, error) {
	if err := knownEnvironment(ctx, r, env); err != nil {
		return nil, err
	}
	return r.ListSecrets(ctx, env)
}

// Delete removes a secret, inside tx, by writing a tombstone version, which
// it returns. With expect set it is a check-and-set, as in Put.
func (v *Vault) Delete(ctx context.Context, tx store.Tx, env, name string, expect *int, actor string, at time.Time) (int, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	if err := knownEnvironment(ctx, tx, env); err != nil {
		return 0, err
	}
	cur, err := tx.GetSecret(ctx, env, name)
	if errs.Is(err, errs.NotFound) {
		return 0, errs.E(errs.NotFound, "secret %s is not set in %s", name, env)
	}
	if err != nil {
		return 0, err
	}
	if expect != nil && *expect != cur.Version {
		return 0, casConflict(env, name, *expect, cur.Version)
	}
	if err := tx.DeleteSecret(ctx, env, name, actor, at.UTC().Truncate(time.Microsecond)); err != nil {
		return 0, err
	}
	return cur.Version + 1, nil
}

// Values decrypts the latest value of every secret of env, for resolution.
func (v *Vault) Values(ctx context.Context, r store.Reader, env string) (map[string]domain.Secret, error) {
	rows, err := r.LatestSecrets(ctx, env)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	row, err := r.GetEnvKey(ctx, env)
	if err != nil {
		return nil, missingKey(env, err)
	}
	aead, err := v.dataKey(row)
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.Secret, len(rows))
	var buf []byte
	var ad []byte
	for _, sv := range rows {
		ad = appendSecretAD(ad[:0], env, sv.Name, sv.Version)
		buf, err = openInto(aead, buf[:0], sv.Ciphertext, ad)
		if err != nil {
			return nil, corrupt(env, sv.Name, sv.Version, err)
		}
		out[sv.Name] = domain.Secret{Value: string(buf), Version: sv.Version}
	}
	clear(buf) // the plaintexts now live only in out
	return out, nil
}

// Verify opens every environment's data key, so that a server started with
// the wrong master key refuses to start instead of failing on first use.
func (v *Vault) Verify(ctx context.Context, r store.Reader) error {
	rows, err := r.ListEnvKeys(ctx)
	if err != nil {
		return err
	}
	var problems []error
	for _, row := range rows {
		if _, err := v.dataKey(row); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

func missingKey(env string, err error) error {
	if errs.Is(err, errs.NotFound) {
		return errs.E(errs.Internal, "environment %s has secrets but no data key", env)
	}
	return err
}

func corrupt(env, name string, version int, cause error) error {
	return errs.Wrap(errs.Internal, cause, "secret %s version %d in %s does not decrypt: the row was altered or belongs elsewhere", name, version, env)
}

// dataKey unwraps (or finds cached) the data key of an env_keys row.
func (v *Vault) dataKey(row store.EnvKey) (cipher.AEAD, error) {
	v.mu.RLock()
	dk := v.dataKeys[row.Environment]
	v.mu.RUnlock()
	if dk != nil && bytes.Equal(dk.wrapped, row.Wrapped) {
		return dk.aead, nil
	}
	mk := v.keys[row.MasterKeyID]
	if mk == nil {
		return nil, errs.E(errs.Internal, "the data key of environment %s is wrapped by master key %s, but this server holds master key %s: "+
			"start it with the key the data was written with (during a rotation, pass the old one as --previous-master-key-file)",
			row.Environment, row.MasterKeyID, v.keyIDs())
	}
	raw, err := open(mk.aead(), row.Wrapped, wrapAD(row.Environment, mk.id))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "the data key of environment %s does not open with master key %s: the row was altered or belongs elsewhere", row.Environment, mk.id)
	}
	aead, err := newAEAD(raw)
	clear(raw)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.dataKeys[row.Environment] = &dataKey{wrapped: bytes.Clone(row.Wrapped), aead: aead}
	v.mu.Unlock()
	return aead, nil
}

// dataKeyForWrite returns env's data key inside tx, creating and storing
// one on first use. A key created here is not cached: the transaction may
// still roll back, and the next read unwraps it from the committed row.
func (v *Vault) dataKeyForWrite(ctx context.Context, tx store.Tx, env string, at time.Time) (cipher.AEAD, error) {
	row, err := tx.GetEnvKey(ctx, env)
	if err == nil {
		return v.dataKey(row)
	}
	if !errs.Is(err, errs.NotFound) {
		return nil, err
	}
	raw := make([]byte, KeySize)
	defer clear(raw)
	if _, err := io.ReadFull(v.rand, raw); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "generate a data key")
	}
	wrapped, err := v.seal(v.master.aead(), raw, wrapAD(env, v.master.id))
	if err != nil {
		return nil, err
	}
	if err := tx.PutEnvKey(ctx, store.EnvKey{Environment: env, Wrapped: wrapped, MasterKeyID: v.master.id,
		CreatedAt: at.UTC().Truncate(time.Microsecond)}); err != nil {
		return nil, err
	}
	return newAEAD(raw)
}

// RotateResult reports what RotateMaster did.
type RotateResult struct {
	Rewrapped int // environments whose data key moved to the new master key
	Already   int // environments already under it (an interrupted rotation, resumed)
	// Rekeyed is how many audit entries were re-signed under the new key.
	Rekeyed int64
}

// RotateMaster re-wraps every environment's data key from oldKey to newKey
// in one transaction, with an audit entry. Secret rows are untouched: their
// data keys do not change. It is idempotent, so an interrupted run can
// simply be repeated, and it refuses a row wrapped by neither key.
//
// With replicas, rotate without downtime: restart them with the new key and
// the old one as previous (--master-key-file NEW --previous-master-key-file
// OLD), run the rotation, then restart them with the new key alone. A single
// server can instead be stopped, rotated and started with the new key.
func RotateMaster(ctx context.Context, st store.Store, oldKey, newKey *MasterKey, actor string, at time.Time) (RotateResult, error) {
	if oldKey == nil || newKey == nil {
		return RotateResult{}, errors.New("rotate: both the current and the new master key are required")
	}
	if oldKey.id == newKey.id {
		return RotateResult{}, fmt.Errorf("rotate: the new master key is the current one (%s)", newKey.id)
	}
	// Rotation never writes a secret, so it needs no randomness source of
	// the server's: a fresh Vault with crypto/rand seals the new wrappings.
	v, err := New(Options{Master: newKey, Previous: []*MasterKey{oldKey}})
	if err != nil {
		return RotateResult{}, err
	}
	chain, err := audit.NewChain(newKey.AuditKey(), oldKey.AuditKey())
	if err != nil {
		return RotateResult{}, err
	}
	var res RotateResult
	err = st.WithTx(ctx, func(tx store.Tx) error {
		res = RotateResult{}
		rows, err := tx.ListEnvKeys(ctx)
		if err != nil {
			return err
		}
		for _, row := range rows {
			switch row.MasterKeyID {
			case newKey.id:
				res.Already++
				continue
			case oldKey.id:
			default:
				return errs.E(errs.Conflict, "rotate: the data key of environment %s is wrapped by master key %s, neither the current key %s nor the new key %s",
					row.Environment, row.MasterKeyID, oldKey.id, newKey.id)
			}
			raw, err := open(oldKey.aead(), row.Wrapped, wrapAD(row.Environment, oldKey.id))
			if err != nil {
				return errs.Wrap(errs.Internal, err, "rotate: the data key of environment %s does not open with master key %s", row.Environment, oldKey.id)
			}
			row.Wrapped, err = v.seal(newKey.aead(), raw, wrapAD(row.Environment, newKey.id))
			clear(raw)
			if err != nil {
				return err
			}
			row.MasterKeyID = newKey.id
			if err := tx.PutEnvKey(ctx, row); err != nil {
				return err
			}
			res.Rewrapped++
		}
		// The audit chain is keyed by the master key too: re-sign it under
		// the new key in the same transaction, after checking it under the
		// old one. An unkeyed (legacy) chain is refused: a server start
		// migrates it first, where the checkpoint file can vouch for it.
		if res.Rekeyed, err = chain.Rekey(ctx, tx, false); err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
		if res.Rewrapped == 0 {
			return nil
		}
		_, err = chain.Append(ctx, tx, at, audit.Record{Actor: actor, Action: "secrets.rotate-master-key", Target: "master-key",
			Details: map[string]any{"from": oldKey.id, "to": newKey.id, "environments": res.Rewrapped}})
		return err
	})
	return res, err
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "data key")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "data key")
	}
	return aead, nil
}

// seal encrypts pt as version byte, random nonce, ciphertext and tag.
func (v *Vault) seal(aead cipher.AEAD, pt, ad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(pt)+aead.Overhead())
	out[0] = formatV1
	if _, err := io.ReadFull(v.rand, out[1:]); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "generate a nonce")
	}
	return aead.Seal(out, out[1:], pt, ad), nil
}

func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	return openInto(aead, nil, sealed, ad)
}

// openInto decrypts sealed, appending the plaintext to dst.
func openInto(aead cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	if sealed[0] != formatV1 {
		return nil, fmt.Errorf("sealed value has unknown format %d", sealed[0])
	}
	return aead.Open(dst, sealed[1:1+nonceSize], sealed[1+nonceSize:], ad)
}

// Additional data binds a ciphertext to where it belongs. Fields are
// length-prefixed, so no two (environment, name) pairs encode alike.
func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func wrapAD(env, masterKeyID string) []byte {
	b := appendField(nil, "envplane/env-key/v1")
	b = appendField(b, env)
	return appendField(b, masterKeyID)
}

func secretAD(env, name string, version int) []byte {
	return appendSecretAD(nil, env, name, version)
}

func appendSecretAD(b []byte, env, name string, version int) []byte {
	b = appendField(b, "envplane/secret/v1")
	b = appendField(b, env)
	b = appendField(b, name)
	return binary.AppendUvarint(b, uint64(version))
}
