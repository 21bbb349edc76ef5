// Package audit keeps the append-only, hash-chained audit log: every write
// and every secret reveal appends an entry carrying the SHA-256 of the
// previous one, so that Verify detects any changed, removed or reordered row.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/store"
)

// Genesis is the PrevHash of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is what a caller wants logged.
type Record struct {
	Actor   string
	Action  string // e.g. release.create, environment.set-release, token.create
	Target  string
	Details any // marshalled to JSON; must never hold secret values
}

// Append adds r to the log inside tx, chained to the newest entry.
func Append(ctx context.Context, tx store.Tx, now time.Time, r Record) (store.AuditEntry, error) {
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
	e.Hash = Hash(e)
	if err := tx.AppendAudit(ctx, e); err != nil {
		return store.AuditEntry{}, err
	}
	tx.Notify(store.Event{Kind: "audit", ID: strconv.FormatInt(e.Seq, 10)})
	return e, nil
}

// Hash is the chain hash of an entry: SHA-256 over its previous hash and its
// fields in a fixed, length-prefixed layout.
func Hash(e store.AuditEntry) string {
	h := sha256.New()
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

// Result is the outcome of Verify.
type Result struct {
	OK      bool   `json:"ok"`
	Entries int64  `json:"entries"`
	BadSeq  int64  `json:"badSeq,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Verify walks the whole log in pages and checks every link.
func Verify(ctx context.Context, r store.Reader) (Result, error) {
	const page = 1000
	prev, want := Genesis, int64(1)
	var after int64
	for {
		entries, err := r.ListAudit(ctx, after, page)
		if err != nil {
			return Result{}, err
		}
		for _, e := range entries {
			switch {
			case e.Seq != want:
				return Result{Entries: want - 1, BadSeq: want, Problem: fmt.Sprintf("entry %d is missing (found %d next)", want, e.Seq)}, nil
			case e.PrevHash != prev:
				return Result{Entries: want - 1, BadSeq: e.Seq, Problem: fmt.Sprintf("entry %d does not chain to entry %d", e.Seq, e.Seq-1)}, nil
			case Hash(e) != e.Hash:
				return Result{Entries: want - 1, BadSeq: e.Seq, Problem: fmt.Sprintf("entry %d was altered (its hash does not match its content)", e.Seq)}, nil
			}
			prev, want, after = e.Hash, want+1, e.Seq
		}
		if len(entries) < page {
			return Result{OK: true, Entries: want - 1}, nil
		}
	}
}
