package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/flags"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/tree"

	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/store"
)

// snapshot is an immutable view of every environment and its loaded current
// release. Reloading builds a new one and swaps the pointer, so readers
// never lock and keep being served from memory while the store is down.
type snapshot struct {
	envs     []*envState // in promotion order
	byName   map[string]*envState
	releases map[string]*loadedRelease
}

func emptySnapshot() *snapshot {
	return &snapshot{byName: map[string]*envState{}, releases: map[string]*loadedRelease{}}
}

// envState is one environment as of a snapshot.
type envState struct {
	env   store.Environment
	cfg   *envConfig // nil while the environment has no release
	flags *envFlags  // the compiled flags of its release (flags.go)
}

// loadedRelease is a stored release ready for resolution.
type loadedRelease struct {
	id     string
	loaded *config.Compiled
	// secrets are its workspace secrets files, each opened with the
	// server's age identity once, on first use (nil: the release does not
	// load).
	secrets *release.Secrets
	err     error      // why a stored release no longer loads
	mu      sync.Mutex // resolve.Resolver is not safe for concurrent use
	// flagDoc is its flag files, parsed on first use (flags.go).
	flagOnce sync.Once
	flagDoc  *flags.Document
}

// envConfig holds the configs of one environment under one release. Each
// service's config is resolved the first time it is asked for, then kept
// until the environment's release changes.
type envConfig struct {
	env       string
	rel       *loadedRelease
	mu        sync.Mutex
	byService map[string]*resolved
	read      atomic.Pointer[map[string]*resolved] // a copy of byService for readers
	// secrets are what resolution gets as of secretsGen: the release's
	// secrets file for the environment (when the server's identity opens
	// it) under the environment's server-side secrets; secretsErr says why
	// they cannot be had (a file that fails authentication, server-side
	// secrets that do not decrypt).
	secrets    map[string]domain.Secret
	secretsErr error
	secretsGen uint64
	// secretsFile is the release's secrets file for the environment as the
	// server opened it, or not (for the hint in problems).
	secretsFile *release.EnvSecrets
}

// resolved is one (environment, service) config, immutable once built.
type resolved struct {
	res *resolve.Result // nil when the release does not load
	// treeDropped: res.Tree was let go after rendering (a large config);
	// tree resolves it again for explain and diff.
	treeDropped bool
	cfg         *envConfig
	service     string
	// err says why the config cannot be served (unresolved references,
	// parse errors, schema violations), listing every problem.
	err  error
	opts render.Options
	// revealable lists the keys whose values only a reveal shows.
	revealable []string
	plain      body // sensitive values redacted
	revealed   body
}

// body is a rendered config and its ETag, with header values prebuilt so
// serving it allocates nothing.
type body struct {
	data    []byte
	etag    string
	etagHdr []string
	lenHdr  []string
}

// keepTreeBelow is the largest rendered config whose resolved tree is kept
// in memory for explain and diff. A larger one's tree (several times the
// size of its body) is resolved again when they ask for it.
var keepTreeBelow = 1 << 20

// tree returns the resolved tree of r, resolving it again if it was not
// kept.
func (r *resolved) tree() *tree.Value {
	if !r.treeDropped {
		return r.res.Tree
	}
	c := r.cfg
	c.rel.mu.Lock()
	defer c.rel.mu.Unlock()
	return c.rel.loaded.Resolver.Resolve(resolve.Request{Env: c.env, Service: r.service, Secrets: c.secrets}).Tree
}

func newBody(data []byte) body {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return body{data: data, etag: etag, etagHdr: []string{etag}, lenHdr: []string{strconv.Itoa(len(data))}}
}

// get returns the config of service, resolving it on first use; hit
// reports whether it was already there.
func (c *envConfig) get(service string) (r *resolved, hit bool) {
	if m := c.read.Load(); m != nil {
		if r = (*m)[service]; r != nil {
			return r, true // no lock: every config read passes here
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r = c.byService[service]; r != nil {
		return r, true
	}
	r = c.resolve(service)
	// Services often get the same bytes: they are kept once.
	for _, o := range c.byService {
		r.plain = o.plain.share(r.plain)
		r.plain = o.revealed.share(r.plain)
		r.revealed = o.revealed.share(r.revealed)
		r.revealed = o.plain.share(r.revealed)
	}
	c.byService[service] = r
	read := maps.Clone(c.byService)
	c.read.Store(&read)
	return r, false
}

// share returns b when it holds the same bytes as other, else other.
func (b body) share(other body) body {
	if b.data != nil && b.etag == other.etag && bytes.Equal(b.data, other.data) {
		return b
	}
	return other
}

// hasService reports whether the release declares service ("" always).
func (c *envConfig) hasService(service string) error {
	if service == "" || c.rel.loaded == nil || c.rel.loaded.Workspace.HasService(service) {
		return nil
	}
	known := strings.Join(c.rel.loaded.Workspace.Services, ", ")
	if known == "" {
		known = "none declared"
	}
	return errs.Field("service", fmt.Sprintf("unknown service %q (known: %s)", service, known))
}

func (c *envConfig) resolve(service string) *resolved {
	if c.rel.err != nil {
		return &resolved{err: c.rel.err}
	}
	if c.secretsErr != nil {
		return &resolved{err: c.secretsErr}
	}
	l := c.rel.loaded
	c.rel.mu.Lock()
	defer c.rel.mu.Unlock()
	// No Getenv: the server's own environment never leaks into configs;
	// runtime variables are applied on the application's side.
	req := resolve.Request{Env: c.env, Service: service, Secrets: c.secrets}
	r := &resolved{opts: l.RenderOptions(c.env, service, false), cfg: c, service: service}
	res := l.Resolver.Resolve(req)
	// explain and diff still show a config whose only problems are
	// references nothing sets.
	r.res = res
	problems := l.Problems(res)
	if r.err = problems.NotServable(c.env, service); r.err != nil {
		c.hintSkipped(r.err, problems)
		return r
	}
	r.revealable = hiddenKeys(res.Tree, "", r.opts.Sensitive)
	var b bytes.Buffer
	if err := render.Write(&b, "json", res.Tree, r.opts); err != nil {
		r.err = errs.Wrap(errs.Unprocessable, err, "the config of %s cannot be served: %v", c.env, err)
		return r
	}
	r.plain = newBody(bytes.Clone(b.Bytes()))
	b.Reset()
	o := r.opts
	o.Reveal = true
	if err := render.Write(&b, "json", res.Tree, o); err != nil {
		r.err = errs.Wrap(errs.Unprocessable, err, "the config of %s cannot be served: %v", c.env, err)
		return r
	}
	if bytes.Equal(b.Bytes(), r.plain.data) {
		// Nothing was hidden: the same bytes are kept once.
		r.revealed = r.plain
	} else {
		r.revealed = newBody(b.Bytes())
	}
	if len(r.plain.data) > keepTreeBelow {
		r.res = &resolve.Result{Env: res.Env, Service: res.Service, Problems: res.Problems, Files: res.Files}
		r.treeDropped = true
	}
	return r
}

// hiddenKeys lists the keys at and under root (itself at key) that a
// redacted render hides: sensitive by name or from a secret.
func hiddenKeys(root *tree.Value, key string, sensitive func(string) bool) []string {
	var out []string
	var walk func(v *tree.Value, path string)
	walk = func(v *tree.Value, path string) {
		switch v.Kind {
		case tree.Map:
			for _, f := range v.Fields {
				walk(f.Value, joinKey(path, f.Key))
			}
		case tree.Array:
			for i, it := range v.Items {
				walk(it, joinKey(path, strconv.Itoa(i)))
			}
		default:
			if v.Secret || (path != "" && sensitive(path)) {
				out = append(out, path)
			}
		}
	}
	if root != nil {
		walk(root, key)
	}
	return out
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// reload rebuilds the snapshot from the store, reusing what did not change,
// and tells SSE subscribers of environments whose release changed. It keeps
// the old snapshot when the store cannot be read.
func (s *Server) reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	envs, err := s.st.ListEnvironments(ctx)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	sort.SliceStable(envs, func(i, j int) bool { return envs[i].Position < envs[j].Position })
	overrides, err := s.flagOverrides(ctx)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	var drops []overrideDrop
	old := s.snap.Load()
	next := emptySnapshot()
	type change struct {
		env  string
		kind string
		data any
	}
	var changes []change
	for _, e := range envs {
		prev := old.byName[e.Name]
		st := &envState{env: e}
		// Read before loading secrets: a change meanwhile bumps it again.
		gen := s.secretGens.get(e.Name)
		switch {
		case prev != nil && prev.env.Release == e.Release && (prev.cfg == nil || prev.cfg.secretsGen == gen):
			st.cfg = prev.cfg
		case e.Release != "":
			rel, err := s.loadRelease(ctx, e.Release, old, next)
			if err == nil {
				st.cfg = &envConfig{env: e.Name, rel: rel, byService: map[string]*resolved{}, secretsGen: gen}
				err = s.loadSecrets(ctx, st.cfg)
			}
			if err != nil {
				s.metrics.reloads.WithLabelValues("error").Inc()
				return err
			}
		}
		if st.cfg != nil {
			next.releases[st.cfg.rel.id] = st.cfg.rel
		}
		var dropped []overrideDrop
		st.flags, dropped = flagsFor(prev, st, overrides[e.Name])
		drops = append(drops, dropped...)
		next.envs = append(next.envs, st)
		next.byName[e.Name] = st
		switch {
		case prev == nil || prev.env.Release != e.Release:
			previous := ""
			if prev != nil {
				previous = prev.env.Release
			}
			if e.Release != "" || previous != "" {
				changes = append(changes, change{e.Name, "release", map[string]string{"environment": e.Name, "release": e.Release, "previous": previous}})
			}
		case !prev.env.SameDefinition(e):
			changes = append(changes, change{e.Name, "environment", e})
		}
		if data, ok := flagsChanged(prev, st); ok {
			changes = append(changes, change{e.Name, "flags", data})
		}
		if prev != nil && prev.cfg != nil && st.cfg != nil && prev.cfg != st.cfg && !sameSecrets(prev.cfg.secrets, st.cfg.secrets) {
			changes = append(changes, change{e.Name, "secrets", map[string]string{"environment": e.Name}})
		}
	}
	s.snap.Store(next)
	// The last release no environment uses any more stays loaded: going
	// back to it (a rollback, a toggle) does not read and compile it again.
	for id, rel := range old.releases {
		if next.releases[id] == nil {
			s.lastReleased = rel
		}
	}
	if s.lastReleased != nil && next.releases[s.lastReleased.id] != nil {
		s.lastReleased = nil
	}
	s.metrics.reloads.WithLabelValues("ok").Inc()
	for _, c := range changes {
		data, _ := json.Marshal(c.data)
		s.hub.publish(c.env, []byte("event: "+c.kind+"\ndata: "+string(data)+"\n\n"))
	}
	s.dropOverrides(drops)
	return nil
}

// loadRelease finds release id loaded in the snapshots or the last upload,
// else reads and loads it. A release that no longer loads is kept with its
// error; only store failures abort.
func (s *Server) loadRelease(ctx context.Context, id string, old, next *snapshot) (*loadedRelease, error) {
	if rel := next.releases[id]; rel != nil {
		return rel, nil
	}
	if rel := old.releases[id]; rel != nil {
		return rel, nil
	}
	if rel := s.lastReleased; rel != nil && rel.id == id {
		return rel, nil
	}
	l, err := s.app.LoadRelease(ctx, id)
	if errs.Is(err, errs.Conflict) {
		return &loadedRelease{id: id, err: err}, nil
	}
	if err != nil {
		return nil, err
	}
	return &loadedRelease{id: id, loaded: l.Compiled, secrets: l.Secrets}, nil
}

// refresh reloads after a write of this replica, so that its own reads
// see the write at once; other replicas learn of it through store events.
func (s *Server) refresh(ctx context.Context) {
	if err := s.reload(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("reload after write failed; will retry on the next store event", "err", err)
		s.dirty.Store(true)
	}
}

// follow applies store events until ctx ends: token changes empty the
// principal cache, everything else about releases and environments reloads
// the snapshot. A failed reload is retried with backoff; a subscription that
// ends is reopened, followed by a full resync.
func (s *Server) follow(ctx context.Context, events <-chan store.Event) {
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				s.dirty.Store(true)
				retry.Reset(backoff)
				continue
			}
			s.apply(ev)
			// Coalesce a burst of events into one reload.
		drain:
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						events = nil
						s.dirty.Store(true)
						break drain
					}
					s.apply(ev)
				default:
					break drain
				}
			}
		case <-retry.C:
			if events == nil {
				ch, err := s.st.Subscribe(ctx)
				if err != nil {
					s.log.Warn("store events: resubscribe failed", "err", err)
					backoff = min(2*backoff, maxBackoff)
					retry.Reset(backoff)
					continue
				}
				events = ch
				// Whatever happened meanwhile is unknown: start over.
				s.tokens.clear()
				s.secretGens.bump("")
				s.dirty.Store(true)
			}
		}
		// Cleared before reloading: an event that arrives meanwhile sets it
		// again and is not lost.
		if s.dirty.Swap(false) {
			if err := s.reload(ctx); err != nil {
				s.dirty.Store(true)
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("reload from store failed; serving the previous snapshot", "err", err)
				backoff = min(2*backoff, maxBackoff)
				retry.Reset(backoff)
				continue
			}
			backoff = 100 * time.Millisecond
		}
		if events == nil {
			retry.Reset(backoff)
		}
	}
}

func (s *Server) apply(ev domain.Event) {
	switch ev.Kind {
	case domain.EventToken:
		s.tokens.clear()
	case domain.EventResync:
		s.tokens.clear()
		s.secretGens.bump("")
		s.dirty.Store(true)
	case domain.EventSecret:
		s.secretGens.bump(ev.Environment)
		s.dirty.Store(true)
	case domain.EventAudit:
	case domain.EventPromotion:
		// Published from the store's events only (they include this
		// replica's), so a stream sees each once.
		data, _ := json.Marshal(map[string]string{"promotion": ev.ID, "environment": ev.Environment, "state": ev.State})
		s.hub.publish(ev.Environment, []byte("event: promotion\ndata: "+string(data)+"\n\n"))
	case domain.EventFlagChange:
		data, _ := json.Marshal(map[string]string{"change": ev.ID, "environment": ev.Environment, "state": ev.State})
		s.hub.publish(ev.Environment, []byte("event: flag-change\ndata: "+string(data)+"\n\n"))
	default: // release, environment, and kinds added later
		s.dirty.Store(true)
	}
}

// committed applies the events of a write this replica's App committed and
// reloads at once, so that its own reads see the write; other replicas
// learn of it through store events.
func (s *Server) committed(ctx context.Context, events []domain.Event) {
	reload := false
	for _, ev := range events {
		if ev.Kind == domain.EventPromotion || ev.Kind == domain.EventFlagChange {
			continue // follow publishes it, from the store's events
		}
		s.apply(ev)
		reload = reload || (ev.Kind != domain.EventToken && ev.Kind != domain.EventAudit)
	}
	// Always a reload that starts after the commit: the follow loop may
	// have taken the dirty flag and be reloading from before it.
	if reload {
		s.refresh(ctx)
	}
}

// memTrim hands memory freed by large transient work (a big upload, a big
// config resolved, thousands of SSE streams gone) back to the OS a moment
// later, instead of whenever the runtime's scavenger gets to it: the heap
// such work grew would otherwise stay in the process's RSS. Requests are
// debounced: the trim runs trimDelay after the last one, but no later than
// trimMaxWait after the first.
type memTrim struct {
	mu    sync.Mutex
	timer *time.Timer
	first time.Time // of the pending requests; zero: none pending
}

const (
	trimDelay   = time.Second
	trimMaxWait = 5 * time.Second
)

func (m *memTrim) soon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.first.IsZero() {
		m.first = now
	} else if now.Sub(m.first) > trimMaxWait {
		return // the pending trim runs soon anyway
	}
	if m.timer == nil {
		m.timer = time.AfterFunc(trimDelay, m.run)
		return
	}
	m.timer.Reset(trimDelay)
}

func (m *memTrim) run() {
	m.mu.Lock()
	m.first = time.Time{}
	m.mu.Unlock()
	// Two collections: objects in a sync.Pool survive the first one in the
	// pool's victim cache. net/http pools every connection's read and write
	// buffers (about 10 KiB), so after 5,000 SSE streams end, 50 MB stay
	// live through one GC; the second frees them, and FreeOSMemory (whose
	// GC is the second) returns the pages.
	runtime.GC()
	debug.FreeOSMemory()
}
