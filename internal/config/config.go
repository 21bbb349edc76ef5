// Package config is the one way from a workspace's files to a usable
// configuration, shared by the CLI, the server and release validation.
// Compile builds a workspace's resolver (and, when asked, its CEL policies);
// Check names unknown environments and services; Strict resolves one
// (environment, service) and returns the tree, or every problem that makes
// it unusable — resolution problems, then schema violations — as structured
// Problems that each transport prints its own way.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/policy"
	"github.com/envplane/envplane/internal/render"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/schema"
	"github.com/envplane/envplane/internal/workspace"
)

// RuleSchema names schema violations among problems and lint findings.
const RuleSchema = "schema"

// Compiled is a loaded workspace ready for resolution.
type Compiled struct {
	Workspace *workspace.Workspace
	Resolver  *resolve.Resolver
	Policies  *policy.Compiled
}

// Compile loads the workspace at the root of fsys and prepares it for any
// command, reporting every problem of it at once as a diag.List:
// envplane.yaml, the schema and the CEL policies.
//
// The policies are always compiled, so a policy that does not compile is
// an error for resolve, explain, diff, run and the server too, not only for
// lint. CEL's first compile in a process costs about 3 ms of CPU (its
// parser's tables are built on first use), so it runs on its own goroutine
// while the schema is loaded; see docs/PERFORMANCE.md §7.
//
// When envplane.yaml itself has errors, the parts that could be read — the
// schema and the policies — are checked too, so fixing one problem does not
// reveal the next.
func Compile(fsys fs.FS) (*Compiled, error) { return CompileWith(fsys, Options{}) }

// Options are how a caller wants Compile to cut its work.
type Options struct {
	// Cache remembers between processes the policy sets and schemas this
	// binary compiled without error (internal/usercache); nil remembers
	// nothing. Which problems are reported never depends on it.
	Cache Cache
	// CheckPoliciesOnly is for callers that never evaluate policies (the
	// CLI's resolve, explain, diff, run, …): when Cache knows the
	// workspace's policies compile, they are not compiled again and
	// Compiled.Policies is nil. A policy that does not compile is still an
	// error, as with Compile.
	CheckPoliciesOnly bool
}

// Cache is what Options.Cache needs: a store of small values by key.
type Cache interface {
	Get(key string) ([]byte, bool)
	Put(key string, value []byte)
}

// CompileWith is Compile with options; the problems it reports are the
// same. See docs/PERFORMANCE.md §8 for what the cache saves.
func CompileWith(fsys fs.FS, o Options) (*Compiled, error) {
	ws, wsErr := workspace.LoadPartial(fsys)
	if ws == nil {
		return nil, slices.CompactFunc(diag.Of(wsErr).Sort(), func(a, b diag.Diagnostic) bool { return a == b })
	}
	type policies struct {
		compiled *policy.Compiled
		err      error
	}
	var rules []workspace.Policy
	for _, pol := range ws.Policies {
		if strings.TrimSpace(pol.Rule) != "" {
			rules = append(rules, pol)
		}
	}
	var done chan policies
	key := policyKey(rules)
	if _, known := o.cacheGet(key); !known || !o.CheckPoliciesOnly {
		done = make(chan policies, 1)
		go func() {
			var p policies
			p.compiled, p.err = policy.Compile(rules)
			if p.err == nil && !known {
				o.cachePut(key, []byte("ok"))
			}
			done <- p
		}()
	}
	var c *Compiled
	var err error
	if wsErr != nil {
		err = wsErr
	} else {
		var r *resolve.Resolver
		if r, err = resolve.NewCached(ws, o.schemaCache()); err == nil {
			c = &Compiled{Workspace: ws, Resolver: r}
		}
	}
	var p policies
	if done != nil {
		p = <-done
	}
	if err == nil && p.err == nil {
		c.Policies = p.compiled
		return c, nil
	}
	all := diag.Of(err)
	if wsErr != nil && ws.Config.Schema != "" && !mentions(all, ws.Config.SchemaPos) {
		// envplane.yaml has errors, so the schema was not loaded above.
		_, serr := resolve.New(ws)
		all = append(all, diag.Of(serr)...)
	}
	all = append(all, diag.Of(p.err)...)
	all = all.Sort()
	return nil, slices.CompactFunc(all, func(a, b diag.Diagnostic) bool { return a == b })
}

// schemaCache is o.Cache for schema.LoadCached (nil when there is none:
// an interface holding a nil Cache is not nil).
func (o Options) schemaCache() schema.Cache {
	if o.Cache == nil {
		return nil
	}
	return o.Cache
}

func (o Options) cacheGet(key string) ([]byte, bool) {
	if o.Cache == nil {
		return nil, false
	}
	return o.Cache.Get(key)
}

func (o Options) cachePut(key string, value []byte) {
	if o.Cache != nil {
		o.Cache.Put(key, value)
	}
}

// policyKey names a set of policy rules in the cache: whether rules compile
// depends on their text alone (and on the binary, which the cache keys on).
func policyKey(rules []workspace.Policy) string {
	h := sha256.New()
	for _, r := range rules {
		fmt.Fprintf(h, "%d:%s\x00", len(r.Rule), r.Rule)
	}
	return "policies\x00" + hex.EncodeToString(h.Sum(nil))
}

// mentions reports whether a problem is already placed on pos's line.
func mentions(l diag.List, pos diag.Pos) bool {
	for _, d := range l {
		if pos.Line > 0 && d.Pos.File == pos.File && d.Pos.Line == pos.Line {
			return true
		}
	}
	return false
}

// Check rejects unknown environment and service names up front.
func (c *Compiled) Check(env, service string) Problems {
	var out Problems
	ws := c.Workspace
	if _, ok := ws.Environment(env); !ok {
		out = append(out, workspaceProblem("unknown environment %q (known: %s)", env, strings.Join(ws.EnvironmentNames(), ", ")))
	}
	if service != "" && !ws.HasService(service) {
		known := strings.Join(ws.Services, ", ")
		if known == "" {
			known = "none declared"
		}
		out = append(out, workspaceProblem("unknown service %q (known: %s)", service, known))
	}
	return out
}

func workspaceProblem(format string, args ...any) resolve.Problem {
	return resolve.Problem{Rule: resolve.RuleLayer, Diagnostic: diag.Errorf(diag.Pos{File: workspace.FileName}, format, args...)}
}

// Strict resolves req and returns the result only when it is usable as it
// is: no resolution problem and no schema violation. Otherwise the error is
// Problems, every one of them. Unknown environment or service names are
// problems too.
func (c *Compiled) Strict(req resolve.Request) (*resolve.Result, error) {
	if p := c.Check(req.Env, req.Service); len(p) > 0 {
		return nil, p
	}
	res := c.Resolver.Resolve(req)
	if p := c.Problems(res); len(p) > 0 {
		return nil, p
	}
	return res, nil
}

// Problems is why res is not usable as it is: its resolution problems, or
// when it has none, its schema violations.
func (c *Compiled) Problems(res *resolve.Result) Problems {
	if len(res.Problems) > 0 {
		return Problems(res.Problems)
	}
	var out Problems
	for _, v := range SchemaViolations(c.Resolver, res.Tree) {
		out = append(out, v.Problem())
	}
	return out
}

// Blocking is the problems of results that make them unfit for explain and
// diff: everything but references nothing sets, which those show as
// written. Sorted by place, a problem two results share once.
func Blocking(results ...*resolve.Result) Problems {
	var out Problems
	for _, res := range results {
		for _, p := range res.Problems {
			if p.Rule != resolve.RuleUnresolved {
				out = append(out, p)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pos.Before(out[j].Pos) })
	return slices.CompactFunc(out, func(a, b resolve.Problem) bool { return a.Diagnostic == b.Diagnostic })
}

// RenderOptions are how a config of (env, service) is rendered: the
// workspace's sensitivity rules and a name for manifests.
func (c *Compiled) RenderOptions(env, service string, reveal bool) render.Options {
	name := c.Workspace.Name
	if name == "" {
		name = "config"
	}
	name += "-" + env
	if service != "" {
		name += "-" + service
	}
	return render.Options{Reveal: reveal, Sensitive: c.Resolver.Sensitivity().Path, Name: name}
}

// Problems are the reasons a config is not usable, each with its rule, key
// (when it belongs to one) and place. As an error it prints one problem a
// line.
type Problems []resolve.Problem

func (p Problems) Error() string { return p.Diagnostics().Error() }

// Err returns p as an error, or nil when it is empty.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// Diagnostics are the problems as positioned diagnostics.
func (p Problems) Diagnostics() diag.List {
	out := make(diag.List, len(p))
	for i, pr := range p {
		out[i] = pr.Diagnostic
	}
	return out
}

// Fields are the problems as API field errors: the config key when known,
// else the file.
func (p Problems) Fields() []errs.FieldError {
	out := make([]errs.FieldError, len(p))
	for i, pr := range p {
		out[i] = errs.FieldError{Field: Field(pr.Path, pr.Pos), Message: pr.Error()}
	}
	return out
}

// Field names where a problem is, for API field errors.
func Field(key string, pos diag.Pos) string {
	switch {
	case key != "":
		return "config." + key
	case pos.File != "":
		return "files." + pos.File
	}
	return "config"
}

// NotServable is p as the server's answer for a config that cannot be
// served: the request is fine, but the environment's current release does
// not resolve (a Conflict listing every problem; Unprocessable when the
// resolved config is larger than the server serves).
func (p Problems) NotServable(env, service string) error {
	if len(p) == 0 {
		return nil
	}
	what := env
	if service != "" {
		what += " (service " + service + ")"
	}
	kind := errs.Conflict
	for _, pr := range p {
		if pr.Rule == resolve.RuleSize {
			kind = errs.Unprocessable // the release is fine; its config is too big to serve
		}
	}
	return &errs.Error{Kind: kind, Fields: p.Fields(),
		Message: fmt.Sprintf("the config of %s does not resolve on the server: %d problem(s)", what, len(p))}
}
