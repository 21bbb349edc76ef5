package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/fsutil"
	"github.com/envplane/envplane/internal/store"
)

// Checkpoint anchors the log: entry Seq had hash Head. Checkpoints the
// server writes carry the signing key's ID and a MAC under the chain key, so
// an edited checkpoint file is noticed; one an operator recorded elsewhere
// (SEQ:HEAD) needs neither.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Head string    `json:"head"`
	At   time.Time `json:"at,omitzero"`
	Key  string    `json:"key,omitempty"`
	MAC  string    `json:"mac,omitempty"`
}

// String is the SEQ:HEAD form `envplane audit verify --checkpoint` takes.
func (cp Checkpoint) String() string { return strconv.FormatInt(cp.Seq, 10) + ":" + cp.Head }

var headPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// ParseCheckpoint reads SEQ:HEAD; a malformed anchor is Invalid.
func ParseCheckpoint(s string) (Checkpoint, error) {
	seqText, head, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq < 1 || !headPattern().MatchString(strings.ToLower(head)) {
		return Checkpoint{}, errs.E(errs.Invalid, "checkpoint %q: want SEQ:HEAD, a sequence number ≥ 1 and the entry's 64-digit hex hash", s)
	}
	return Checkpoint{Seq: seq, Head: strings.ToLower(head)}, nil
}

func (c *Chain) checkpointMAC(k chainKey, cp Checkpoint) string {
	m := hmac.New(sha256.New, k.checkpoint)
	fmt.Fprintf(m, "envplane audit checkpoint v1\n%d\n%s\n%s\n%s\n", cp.Seq, cp.Head, cp.At.UTC().Format(time.RFC3339Nano), k.id)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign makes a checkpoint of entry seq with hash head, signed by the
// current key.
func (c *Chain) Sign(seq int64, head string, at time.Time) Checkpoint {
	cp := Checkpoint{Seq: seq, Head: head, At: at.UTC().Truncate(time.Microsecond), Key: c.KeyID()}
	cp.MAC = c.checkpointMAC(c.keys[0], cp)
	return cp
}

// CheckSignature reports whether cp was signed by the current key.
func (c *Chain) CheckSignature(cp Checkpoint) bool {
	return cp.Key == c.KeyID() && hmac.Equal([]byte(cp.MAC), []byte(c.checkpointMAC(c.keys[0], cp)))
}

// CheckpointOptions configure a Checkpointer. Zero values take the defaults.
type CheckpointOptions struct {
	// File keeps the latest checkpoints, one JSON object a line, replaced
	// atomically at every checkpoint. "": checkpoints go to the log only
	// and are forgotten on restart.
	File string
	// Every: a checkpoint after this many new entries (default 100).
	Every int
	// Interval: a checkpoint at least this often while entries are
	// appended (default 1 minute).
	Interval time.Duration
	// Keep is how many checkpoints File holds (default 100).
	Keep int
	// Clock stamps checkpoints (default time.Now).
	Clock func() time.Time
}

// Checkpointer writes signed checkpoints of the log's head to the log and
// to its file, and remembers the newest, which Verify then requires.
type Checkpointer struct {
	chain *Chain
	st    store.Store
	log   *slog.Logger
	o     CheckpointOptions

	mu      sync.Mutex // serializes checkpoints
	history []Checkpoint
	latest  *Checkpoint // newest checkpoint signed by the current key
	foreign bool        // the file holds checkpoints this key did not sign
	warned  string      // the last problem logged, so it is logged once
}

// NewCheckpointer loads opts.File (a missing file is an empty history).
// Lines that do not parse or whose MAC does not match are logged and
// dropped; checkpoints signed by another key (before a master key rotation
// re-keyed the chain) are kept in the file but not enforced.
func NewCheckpointer(c *Chain, st store.Store, log *slog.Logger, o CheckpointOptions) (*Checkpointer, error) {
	if o.Every <= 0 {
		o.Every = 100
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Keep <= 0 {
		o.Keep = 100
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Checkpointer{chain: c, st: st, log: log, o: o}
	if o.File == "" {
		return p, nil
	}
	b, err := os.ReadFile(o.File)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit checkpoints: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var cp Checkpoint
		if err := json.Unmarshal([]byte(text), &cp); err != nil || cp.Seq < 1 {
			log.Warn("audit checkpoint file: ignoring a line that is not a checkpoint", "file", o.File, "line", line)
			continue
		}
		switch {
		case cp.Key != c.KeyID():
			p.foreign = true
		case !c.CheckSignature(cp):
			log.Error("audit checkpoint file: ignoring a checkpoint whose MAC does not match: the file was edited", "file", o.File, "line", line, "seq", cp.Seq)
			continue
		case p.latest == nil || cp.Seq >= p.latest.Seq:
			cp := cp
			p.latest = &cp
		}
		p.history = append(p.history, cp)
	}
	return p, nil
}

// Latest is the newest checkpoint signed by the current key.
func (p *Checkpointer) Latest() (Checkpoint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latest == nil {
		return Checkpoint{}, false
	}
	return *p.latest, true
}

// Anchors are the checkpoints Verify must honour: the latest, if any.
func (p *Checkpointer) Anchors() []Checkpoint {
	if cp, ok := p.Latest(); ok {
		return []Checkpoint{cp}
	}
	return nil
}

// LegacyAllowed reports whether a legacy (unkeyed) chain may be migrated:
// only when no checkpoint was ever written. A keyed chain that turns up
// unkeyed after that was rewritten by someone without the key, and
// re-signing it would launder the rewrite.
func (p *Checkpointer) LegacyAllowed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.history) == 0 && !p.foreign
}

// Checkpoint signs the log's head when it moved past the latest
// checkpoint, after verifying the entries since then (the whole log the
// first time), so that a checkpoint never vouches for a broken chain. It
// reports whether it wrote one. A chain still partly signed by a previous
// key (a rotation in progress) gets no checkpoint until it is re-keyed.
func (p *Checkpointer) Checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	after, prev := int64(0), Genesis
	if p.latest != nil {
		after, prev = p.latest.Seq, p.latest.Head
	}
	var old bool
	res, err := p.chain.walk(ctx, p.st, after, prev, false, func(_ store.AuditEntry, s int) error {
		old = old || s != 0
		return nil
	})
	if err != nil {
		return Checkpoint{}, false, err
	}
	switch {
	case !res.OK:
		if res.Problem != p.warned {
			p.warned = res.Problem
			p.log.Error("audit chain does not verify; no checkpoint written", "badSeq", res.BadSeq, "problem", res.Problem)
		}
		return Checkpoint{}, false, nil
	case old || res.Entries == after:
		return Checkpoint{}, false, nil
	}
	cp := p.chain.Sign(res.Entries, res.Head, p.o.Clock())
	p.log.Info("audit checkpoint", "seq", cp.Seq, "head", cp.Head, "key", cp.Key, "mac", cp.MAC)
	p.latest = &cp
	p.history = append(p.history, cp)
	if len(p.history) > p.o.Keep {
		p.history = append([]Checkpoint(nil), p.history[len(p.history)-p.o.Keep:]...)
	}
	if p.o.File != "" {
		if err := p.write(); err != nil {
			p.log.Warn("audit checkpoint file not written; the checkpoint is in this log only", "file", p.o.File, "err", err)
		}
	}
	return cp, true, nil
}

// write replaces the file atomically (temporary file, sync, rename).
func (p *Checkpointer) write() error {
	var b bytes.Buffer
	for _, cp := range p.history {
		line, err := json.Marshal(cp)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return fsutil.WriteFile(p.o.File, b.Bytes(), 0o600)
}

// Run checkpoints now, then whenever Every entries were appended (as the
// store's audit events tell) or Interval passed with new entries, and once
// more when ctx ends. Errors are logged: the server keeps serving.
func (p *Checkpointer) Run(ctx context.Context) {
	events, err := p.st.Subscribe(ctx)
	if err != nil {
		p.log.Warn("audit checkpoints: no store events; checkpointing on the interval only", "err", err)
	}
	run := func(ctx context.Context) {
		if _, _, err := p.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("audit checkpoint failed", "err", err)
		}
	}
	run(ctx)
	tick := time.NewTicker(p.o.Interval)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			run(final)
			cancel()
			return
		case <-tick.C:
			n = 0
			run(ctx)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Kind == "audit" || ev.Kind == "resync" {
				if n++; n >= p.o.Every {
					n = 0
					run(ctx)
				}
			}
		}
	}
}
