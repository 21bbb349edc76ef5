// Package audit keeps the append-only, hash-chained audit log: every write
// and every secret reveal appends an entry carrying the MAC of the previous
// one, so that Verify detects any changed, removed or reordered row.
//
// The chain is keyed: each entry's hash is HMAC-SHA256 under a chain key
// derived from the server's master key (vault.MasterKey.AuditKey), so
// someone who can write the database but does not hold the key can neither
// edit a row and re-hash the rest, nor append entries that verify. Cutting
// the newest rows off (tail truncation) leaves a valid chain, which is what
// signed checkpoints are for: a Checkpointer records (seq, head, MAC) outside
// the database, and Verify given those anchors fails when the log is behind
// one or differs from it.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// Genesis is the PrevHash of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// MinKeySize is the shortest chain key NewChain accepts.
const MinKeySize = 32

// Record is what a caller wants logged.
type Record struct {
	Actor   string
	Action  string // e.g. release.create, environment.set-release, token.create
	Target  string
	Details any // marshalled to JSON; must never hold secret values
}

// chainKey is one chain key, split into an entry key and a checkpoint key so
// that an entry MAC can never pass for a checkpoint MAC or the reverse.
type chainKey struct {
	entry, checkpoint []byte
	id                string
}

func newChainKey(key []byte) chainKey {
	sub := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	sum := sha256.Sum256(sub("envplane audit key id"))
	return chainKey{entry: sub("envplane audit entry"), checkpoint: sub("envplane audit checkpoint"), id: hex.EncodeToString(sum[:4])}
}

// Chain appends to and verifies the keyed audit log. It is safe for
// concurrent use and never formats as its keys.
type Chain struct {
	// keys[0] signs new entries; the others are previous keys, accepted
	// while a master key rotation re-keys the chain (see Verify).
	keys []chainKey
}

// NewChain makes a Chain that signs with key and also accepts entries
// signed by the previous keys (a master key rotation in progress). Keys are
// at least MinKeySize bytes: vault.MasterKey.AuditKey derives them.
func NewChain(key []byte, previous ...[]byte) (*Chain, error) {
	c := &Chain{}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) < MinKeySize {
			return nil, fmt.Errorf("audit: chain key %d is %d bytes; want at least %d", i, len(k), MinKeySize)
		}
		ck := newChainKey(k)
		if i > 0 && ck.id == c.keys[0].id {
			continue
		}
		c.keys = append(c.keys, ck)
	}
	return c, nil
}

// KeyID names the signing key (8 hex digits of a hash of it): useful in
// logs and checkpoints, useless for recovering the key.
func (c *Chain) KeyID() string { return c.keys[0].id }

// String keeps the keys out of fmt output.
func (c *Chain) String() string { return "audit chain " + c.KeyID() }

// Append adds r to the log inside tx, chained to the newest entry and
// signed with the current key.
func (c *Chain) Append(ctx context.Context, tx store.Tx, now time.Time, r Record) (store.AuditEntry, error) {
	last, ok, err := tx.LastAudit(ctx)
	if err != nil {
		return store.AuditEntry{}, err
	}
	details := []byte("{}")
	if r.Details != nil {
		if details, err = json.Marshal(r.Details); err != nil {
			return store.AuditEntry{}, errs.Wrap(errs.Internal, err, "audit details")
		}
	}
	e := store.AuditEntry{
		Seq:      1,
		At:       now.UTC().Truncate(time.Microsecond), // what every backend keeps exactly
		Actor:    r.Actor,
		Action:   r.Action,
		Target:   r.Target,
		Details:  details,
		PrevHash: Genesis,
	}
	if ok {
		e.Seq, e.PrevHash = last.Seq+1, last.Hash
	}
	e.Hash = c.Hash(e)
	if err := tx.AppendAudit(ctx, e); err != nil {
		return store.AuditEntry{}, err
	}
	tx.Notify(store.Event{Kind: "audit", ID: strconv.FormatInt(e.Seq, 10)})
	return e, nil
}

// Hash is the chain hash of an entry under the current key: HMAC-SHA256
// over its previous hash and its fields in a fixed, length-prefixed layout.
func (c *Chain) Hash(e store.AuditEntry) string {
	return entryHash(hmac.New(sha256.New, c.keys[0].entry), e)
}

// LegacyHash is the unkeyed SHA-256 chain hash entries carried before the
// chain was keyed. Anyone can compute it, so Verify never accepts it; only
// Migrate reads it, to re-key a legacy chain.
func LegacyHash(e store.AuditEntry) string { return entryHash(sha256.New(), e) }

func entryHash(h hash.Hash, e store.AuditEntry) string {
	for _, field := range []string{
		e.PrevHash,
		strconv.FormatInt(e.Seq, 10),
		e.At.UTC().Format(time.RFC3339Nano),
		e.Actor, e.Action, e.Target,
		string(e.Details),
	} {
		fmt.Fprintf(h, "%d:%s\n", len(field), field)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// legacy is the signer index of an entry carrying LegacyHash; none, of one
// that matches nothing.
const (
	legacy = -1
	none   = -2
)

// signer says which key signed e: an index into c.keys, legacy (only
// when allowLegacy) or none.
func (c *Chain) signer(e store.AuditEntry, allowLegacy bool) int {
	for i := range c.keys {
		if hmac.Equal([]byte(entryHash(hmac.New(sha256.New, c.keys[i].entry), e)), []byte(e.Hash)) {
			return i
		}
	}
	if allowLegacy && hmac.Equal([]byte(LegacyHash(e)), []byte(e.Hash)) {
		return legacy
	}
	return none
}

// Result is the outcome of Verify.
type Result struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	BadSeq  int64  `json:"badSeq,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Head is the hash of the newest entry verified.
	Head string `json:"head,omitempty"`
	// Checkpoint is the newest anchor the log was checked against.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// page is how many entries a walk reads at a time.
const page = 1000

// walk reads the entries after `after` in pages, checking that they follow
// one another from prev and that each is signed by a key no newer than the
// one before it: keys[0] is the newest, and a rotation re-keys the whole
// chain at once, so a previous key may sign a prefix of the chain, never an
// entry after one signed by the current key. With allowLegacy, unkeyed
// entries may likewise form a prefix. fn sees every good entry and its
// signer. A broken link ends the walk with a Result saying what broke.
func (c *Chain) walk(ctx context.Context, r store.Reader, after int64, prev string, allowLegacy bool,
	fn func(e store.AuditEntry, signer int) error) (Result, error) {
	// rank orders signers from newest (0) to oldest (legacy, last).
	rank := func(s int) int {
		if s == legacy {
			return len(c.keys)
		}
		return s
	}
	want := after + 1
	last := len(c.keys) - 1 // the oldest signer the next entry may have
	if allowLegacy {
		last = legacy
	}
	for {
		entries, err := r.ListAudit(ctx, after, page)
		if err != nil {
			return Result{}, err
		}
		for _, e := range entries {
			bad := func(format string, args ...any) (Result, error) {
				return Result{Entries: want - 1, BadSeq: want, Head: prev, Problem: fmt.Sprintf(format, args...)}, nil
			}
			if e.Seq != want {
				return bad("entry %d is missing (found %d next)", want, e.Seq)
			}
			if e.PrevHash != prev {
				return bad("entry %d does not chain to entry %d", e.Seq, e.Seq-1)
			}
			s := c.signer(e, last == legacy)
			switch {
			case s == none && c.signer(e, true) == legacy:
				return bad("entry %d carries the unkeyed SHA-256 hash, which anyone can recompute: it was not written by this server's key", e.Seq)
			case s == none:
				return bad("entry %d was altered (its MAC does not match its content under the audit key)", e.Seq)
			case rank(s) > rank(last):
				return bad("entry %d is signed by an older audit key than the entry before it", e.Seq)
			}
			if fn != nil {
				if err := fn(e, s); err != nil {
					return Result{}, err
				}
			}
			last, prev, want, after = s, e.Hash, want+1, e.Seq
		}
		if len(entries) < page {
			return Result{OK: true, Entries: want - 1, Head: prev}, nil
		}
	}
}

// Verify walks the whole log and checks every link and every MAC; an entry
// that only the public SHA-256 scheme vouches for fails. Each anchor (a
// checkpoint from the checkpoint file or one an operator recorded) must
// match: the entry at its Seq exists and has its Head. A log that ends
// before an anchor was truncated.
func (c *Chain) Verify(ctx context.Context, r store.Reader, anchors ...Checkpoint) (Result, error) {
	bySeq := map[int64]Checkpoint{}
	var newest *Checkpoint
	for _, a := range anchors {
		bySeq[a.Seq] = a
		if newest == nil || a.Seq > newest.Seq {
			a := a
			newest = &a
		}
	}
	var mismatch *Result
	res, err := c.walk(ctx, r, 0, Genesis, false, func(e store.AuditEntry, _ int) error {
		if a, ok := bySeq[e.Seq]; ok && mismatch == nil && a.Head != e.Hash {
			mismatch = &Result{Entries: e.Seq - 1, BadSeq: e.Seq,
				Problem: fmt.Sprintf("entry %d does not have the head %s that checkpoint %s recorded: the log was rewritten", e.Seq, a.Head, a)}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	switch {
	case !res.OK:
	case mismatch != nil:
		res = *mismatch
	case newest != nil && res.Entries < newest.Seq:
		res = Result{Entries: res.Entries, BadSeq: res.Entries + 1, Head: res.Head,
			Problem: fmt.Sprintf("the log ends at entry %d, but checkpoint %s records entry %d: entries were removed", res.Entries, newest, newest.Seq)}
	}
	res.Checkpoint = newest
	return res, nil
}

// Rekey re-signs the whole chain under the current key inside tx, after
// checking every link under the keys it was signed with: previous keys (a
// master key rotation) and, when allowLegacy, the unkeyed SHA-256 scheme.
// It returns how many entries it re-signed (0 when all are signed by the
// current key already). A chain that does not verify is a Conflict and is
// left alone: re-signing it would launder the damage.
//
// The whole chain is re-signed, rather than continued under the key after a
// recorded transition, so that no stretch of it stays under a scheme an
// attacker can recompute (SHA-256) or a key that may be compromised (the
// reason for a rotation): afterwards Verify accepts the current key alone.
func (c *Chain) Rekey(ctx context.Context, tx store.Tx, allowLegacy bool) (int64, error) {
	var stale bool
	res, err := c.walk(ctx, tx, 0, Genesis, allowLegacy, func(e store.AuditEntry, s int) error {
		if s != 0 {
			stale = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if !res.OK {
		return 0, errs.E(errs.Conflict, "audit: the chain does not verify, so it is not re-keyed: %s", res.Problem)
	}
	if !stale {
		return 0, nil
	}
	prev, after, n := Genesis, int64(0), int64(0)
	for {
		entries, err := tx.ListAudit(ctx, after, page)
		if err != nil {
			return n, err
		}
		for _, e := range entries {
			e.PrevHash = prev
			e.Hash = c.Hash(e)
			if err := tx.SetAuditHash(ctx, e.Seq, e.PrevHash, e.Hash); err != nil {
				return n, err
			}
			prev, after, n = e.Hash, e.Seq, n+1
		}
		if len(entries) < page {
			return n, nil
		}
	}
}

// Migrate re-keys the chain in one transaction of st (see Rekey).
func (c *Chain) Migrate(ctx context.Context, st store.Store, allowLegacy bool) (n int64, err error) {
	err = st.WithTx(ctx, func(tx store.Tx) error {
		n, err = c.Rekey(ctx, tx, allowLegacy)
		return err
	})
	return n, err
}
