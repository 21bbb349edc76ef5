// Package lint runs envplane's checks over a whole workspace: every
// environment (alone and for every service) is resolved, and the built-in
// rules (resolution problems, schema, type drift, missing keys, sensitive
// literals, copied secrets, unused layers, environments without a file of
// their own, flag files that do not load) and the workspace's CEL policies
// report findings, sorted by place, in text, JSON or SARIF.
package lint

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/policy"

	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/vars"
	"github.com/envplane/envplane/internal/workspace"
)

// Rule names of the built-in checks (resolution problems keep their own
// names: parse-error, unresolved-reference, coercion, layer, binding).
const (
	RuleSchema       = config.RuleSchema
	RuleTypeDrift    = "type-drift"
	RuleMissingKey   = "missing-key"
	RuleSensitive    = "sensitive-literal"
	RuleCopiedSecret = "copied-secret"
	RuleUnusedLayer  = "unused-layer"
	RuleMissingFile  = "missing-environment-file"
	RuleUnusedVar    = "unused-variable"
	RulePolicy       = "policy"
	SeverityError    = "error"
	SeverityWarning  = "warning"
)

// Finding is one lint result. Its JSON form is part of the CLI contract.
type Finding struct {
	Rule        string `json:"rule"`
	Severity    string `json:"severity"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
	Path        string `json:"path"`
	Message     string `json:"message"`
	Source      string `json:"source"`
}

// Options select what to lint.
type Options struct {
	// Environments limits findings to these environments; empty means all.
	Environments []string
	Getenv       resolve.Lookup
	Secrets      func(env string) map[string]domain.Secret
	// Environ names the process environment's variables, for the
	// unused-variable rule.
	Environ []string
}

// Run resolves every environment (alone and for every service) and runs
// every rule, returning findings sorted by place.
func Run(r *resolve.Resolver, pol *policy.Compiled, o Options) []Finding {
	ws := r.Workspace()
	services := append([]string{""}, ws.Services...)
	l := &linter{r: r, ws: ws, sens: r.Sensitivity(), seen: map[string]bool{}, only: o.Environments}
	l.hashKey = make([]byte, 32)
	_, _ = rand.Read(l.hashKey)
	for _, svc := range services {
		results := make([]*resolve.Result, len(ws.Environments))
		for i, e := range ws.Environments {
			req := resolve.Request{Env: e.Name, Service: svc, Getenv: o.Getenv}
			if o.Secrets != nil {
				req.Secrets = o.Secrets(e.Name)
			}
			res := r.Resolve(req)
			results[i] = res
			l.problems(e, res)
			l.schema(e, res)
			l.sensitiveLiterals(e, res)
			for _, v := range pol.Evaluate(e, svc, res.Tree) {
				l.add(Finding{Rule: RulePolicy + "/" + v.Policy, Severity: v.Severity, Environment: e.Name, Service: svc, Path: v.Path, Message: v.Message, Source: v.Source})
			}
		}
		l.typeDrift(svc, results)
		l.missingKeys(svc, results)
		l.copiedSecrets(svc, results)
	}
	l.unusedLayers()
	l.missingEnvironmentFiles()
	l.flags()
	for _, u := range vars.UnusedVariables(r, o.Environ) {
		msg := fmt.Sprintf("%s carries the prefix %s_ but sets no key in any environment", u.Name, ws.Config.Env.Prefix)
		if u.Suggest != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", u.Suggest)
		}
		l.add(Finding{Rule: RuleUnusedVar, Severity: SeverityWarning, Message: msg, Source: "env:" + u.Name})
	}
	return filter(l.out, o.Environments)
}

type linter struct {
	r       *resolve.Resolver
	ws      *workspace.Workspace
	sens    resolve.Sensitivity
	out     []Finding
	seen    map[string]bool
	hashKey []byte
	only    []string // report findings of these environments only
}

// add records a finding once: the same problem found again for another
// service (or through a shared file) is not repeated.
func (l *linter) add(f Finding) {
	// Filter before deduplication, so that a problem shared by several
	// environments is reported under a selected one.
	if len(l.only) > 0 && f.Environment != "" && !contains(l.only, f.Environment) {
		return
	}
	key := f.Rule + "\x00" + f.Severity + "\x00" + f.Path + "\x00" + f.Source + "\x00" + f.Message
	if f.Source == "" {
		key += "\x00" + f.Environment
	}
	if l.seen[key] {
		return
	}
	l.seen[key] = true
	l.out = append(l.out, f)
}

func (l *linter) problems(e workspace.Environment, res *resolve.Result) {
	for _, p := range res.Problems {
		l.add(Finding{Rule: p.Rule, Severity: SeverityError, Environment: e.Name, Service: res.Service, Path: p.Path, Message: p.Message, Source: p.Pos.String()})
	}
}

func (l *linter) schema(e workspace.Environment, res *resolve.Result) {
	for _, v := range config.SchemaViolations(l.r, res.Tree) {
		if v.Leaf != nil && (v.Leaf.Unresolved || v.Leaf.Sealed) {
			continue // reported as unresolved, or its value is not known here
		}
		l.add(Finding{Rule: RuleSchema, Severity: SeverityError, Environment: e.Name, Service: res.Service, Path: v.Key, Message: v.Message(), Source: v.Pos.String()})
	}
}

// sensitiveLiterals flags credentials written as plain text in committed
// files of environments that hold more than synthetic data.
func (l *linter) sensitiveLiterals(e workspace.Environment, res *resolve.Result) {
	if e.Lower() || res.Tree == nil {
		return
	}
	tree.WalkDeep(res.Tree, func(path string, v *tree.Value) {
		if v.Kind != tree.String || v.Str == "" || v.Src.Kind != tree.SourceFile || v.Template != "" || v.Unresolved {
			return
		}
		if !l.sens.Path(path) {
			return
		}
		l.add(Finding{Rule: RuleSensitive, Severity: SeverityError, Environment: e.Name, Service: res.Service, Path: path,
			Message: fmt.Sprintf("%s holds a literal value in a committed file; keep it in %s's secrets and reference it, e.g. ${%s}", path, e.Name, suggestName(path)),
			Source:  v.Src.String()})
	})
}

func suggestName(path string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "").Replace(path))
}

func kindName(k tree.Kind) string {
	if k == tree.Float || k == tree.Int {
		return "number"
	}
	return k.String()
}

// typeDrift reports a key whose type differs between environments.
func (l *linter) typeDrift(svc string, results []*resolve.Result) {
	type seen struct {
		env  string
		kind tree.Kind
		src  string
	}
	byPath := map[string][]seen{}
	var order []string
	l.eachKey(results, func(env, path string, v *tree.Value) {
		if v.Kind == tree.Null || v.Unresolved || v.Sealed {
			return
		}
		if _, ok := byPath[path]; !ok {
			order = append(order, path)
		}
		byPath[path] = append(byPath[path], seen{env, v.Kind, v.WrittenAt().String()})
	})
	for _, path := range order {
		ss := byPath[path]
		first := ss[0]
		for _, s := range ss[1:] {
			if kindName(s.kind) == kindName(first.kind) {
				continue
			}
			l.add(Finding{Rule: RuleTypeDrift, Severity: SeverityError, Environment: s.env, Service: svc, Path: path,
				Message: fmt.Sprintf("%s is %s %s in %s but %s %s in %s", path, article(kindName(s.kind)), kindName(s.kind), s.env, article(kindName(first.kind)), kindName(first.kind), first.env),
				Source:  s.src})
		}
	}
}

func article(k string) string {
	if strings.ContainsAny(k[:1], "aeiou") {
		return "an"
	}
	return "a"
}

// eachKey visits the maps and leaves of every environment's resolved tree
// (results are in the workspace's environment order).
func (l *linter) eachKey(results []*resolve.Result, fn func(env, path string, v *tree.Value)) {
	for i, res := range results {
		if res.Tree == nil {
			continue
		}
		env := l.ws.Environments[i].Name
		collectKinds(res.Tree, "", func(path string, v *tree.Value) { fn(env, path, v) })
	}
}

// collectKinds visits maps and leaves (not array items) with their paths.
func collectKinds(v *tree.Value, path string, fn func(string, *tree.Value)) {
	if path != "" {
		fn(path, v)
	}
	if v.Kind == tree.Map {
		for _, f := range v.Fields {
			p := f.Key
			if path != "" {
				p = path + "." + f.Key
			}
			collectKinds(f.Value, p, fn)
		}
	}
}

// missingKeys warns about a key some environments set and others do not,
// naming only the top-most missing key.
func (l *linter) missingKeys(svc string, results []*resolve.Result) {
	type where struct {
		envs []string
		src  string
	}
	present := map[string]*where{}
	var order []string
	l.eachKey(results, func(env, path string, v *tree.Value) {
		w, ok := present[path]
		if !ok {
			w = &where{src: v.WrittenAt().String()}
			present[path] = w
			order = append(order, path)
		}
		w.envs = append(w.envs, env)
	})
	for i, res := range results {
		if res.Tree == nil {
			continue
		}
		env := l.ws.Environments[i].Name
		for _, path := range order {
			w := present[path]
			if contains(w.envs, env) {
				continue
			}
			parent := ""
			if j := strings.LastIndexByte(path, '.'); j >= 0 {
				parent = path[:j]
			}
			if parent != "" && (present[parent] == nil || !contains(present[parent].envs, env)) {
				continue // the parent is missing too and is reported instead
			}
			if parent != "" {
				if pv := res.Tree.Lookup(tree.SplitKey(parent)); pv == nil || pv.Kind != tree.Map {
					continue // the parent is a leaf here: that is type drift
				}
			}
			l.add(Finding{Rule: RuleMissingKey, Severity: SeverityWarning, Environment: env, Service: svc, Path: path,
				Message: fmt.Sprintf("%s is set in %s but not in %s", path, strings.Join(w.envs, ", "), env),
				Source:  w.src})
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copiedSecrets flags a credential of a higher environment that equals one
// of a synthetic-data environment. Values are compared by keyed hash and
// never leave this function.
func (l *linter) copiedSecrets(svc string, results []*resolve.Result) {
	lower := map[string]string{} // hash → "env's path"
	for i, res := range results {
		e := l.ws.Environments[i]
		if !e.Lower() || res.Tree == nil {
			continue
		}
		tree.WalkDeep(res.Tree, func(path string, v *tree.Value) {
			if l.credential(path, v) {
				h := l.hash(v.Scalar())
				if _, ok := lower[h]; !ok {
					lower[h] = e.Name + "'s " + path
				}
			}
		})
	}
	if len(lower) == 0 {
		return
	}
	for i, res := range results {
		e := l.ws.Environments[i]
		if e.Lower() || res.Tree == nil {
			continue
		}
		tree.WalkDeep(res.Tree, func(path string, v *tree.Value) {
			if !l.credential(path, v) {
				return
			}
			if from, ok := lower[l.hash(v.Scalar())]; ok {
				l.add(Finding{Rule: RuleCopiedSecret, Severity: SeverityError, Environment: e.Name, Service: svc, Path: path,
					Message: fmt.Sprintf("%s in %s has the same value as %s; give each environment its own credentials", path, e.Name, from),
					Source:  v.WrittenAt().String()})
			}
		})
	}
}

func (l *linter) credential(path string, v *tree.Value) bool {
	if v.Unresolved || v.Sealed || v.Kind == tree.Null || v.Kind == tree.Map || v.Scalar() == "" {
		return false
	}
	return v.Secret || l.sens.Path(path)
}

func (l *linter) hash(s string) string {
	m := hmac.New(sha256.New, l.hashKey)
	m.Write([]byte(s))
	return string(m.Sum(nil))
}

// unusedLayers warns about a layer that matches no file in any environment,
// which is usually a typo in its path.
func (l *linter) unusedLayers() {
	for _, layer := range l.ws.Config.Layers {
		used := false
		services := append([]string{""}, l.ws.Services...)
		for _, e := range l.ws.Environments {
			for _, s := range services {
				if f, err := l.ws.LayerFiles(layer, e.Name, s); f != "" || err != nil {
					used = true
				}
			}
		}
		if !used {
			l.add(Finding{Rule: RuleUnusedLayer, Severity: SeverityWarning, Path: "",
				Message: fmt.Sprintf("layer %q matches no file in any environment; check the path", layer.Path),
				Source:  layer.Pos.String()})
		}
	}
}

// missingEnvironmentFiles warns about an environment that no {env} layer
// gives a file: it silently resolves from the shared layers alone (a
// production.yaml forgotten or misnamed gives `{}` and exit 0).
func (l *linter) missingEnvironmentFiles() {
	for _, e := range l.ws.Environments {
		if msg := MissingFileNote(l.ws, e.Name); msg != "" {
			l.add(Finding{Rule: RuleMissingFile, Severity: SeverityWarning, Environment: e.Name,
				Message: msg, Source: firstEnvLayer(l.ws).String()})
		}
	}
}

// MissingFileNote is the message for an environment that gets no file of
// its own, or "" when it has one (resolve prints it as a note).
func MissingFileNote(ws *workspace.Workspace, env string) string {
	expected, missing := ws.MissingOwnFile(env)
	if !missing {
		return ""
	}
	verb := "does"
	if len(expected) > 1 {
		verb = "do"
	}
	return fmt.Sprintf("%s gets no file of its own: %s %s not exist, so it resolves from the shared layers alone; create one, or check the environment name",
		env, strings.Join(expected, ", "), verb)
}

func firstEnvLayer(ws *workspace.Workspace) diag.Pos {
	for _, layer := range ws.Config.Layers {
		if strings.Contains(layer.Path, "{env}") {
			return layer.Pos
		}
	}
	return diag.Pos{File: workspace.FileName}
}

func filter(fs []Finding, envs []string) []Finding {
	out := fs[:0]
	for _, f := range fs {
		if len(envs) == 0 || f.Environment == "" || contains(envs, f.Environment) {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Source != b.Source {
			return lessSource(a.Source, b.Source)
		}
		return a.Rule < b.Rule
	})
	return out
}

// lessSource orders "file:line:col" places numerically.
func lessSource(a, b string) bool {
	fa, la, ca := splitSource(a)
	fb, lb, cb := splitSource(b)
	if fa != fb {
		return fa < fb
	}
	if la != lb {
		return la < lb
	}
	return ca < cb
}

func splitSource(s string) (string, int, int) {
	parts := strings.Split(s, ":")
	nums := []int{0, 0}
	k := 1
	for i := len(parts) - 1; i >= 1 && k >= 0; i-- {
		n := 0
		ok := parts[i] != ""
		for _, c := range parts[i] {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			n = n*10 + int(c-'0')
		}
		if !ok {
			break
		}
		nums[k] = n
		k--
		parts = parts[:i]
	}
	if k == 0 { // only a line number
		nums[0], nums[1] = nums[1], 0
	}
	return strings.Join(parts, ":"), nums[0], nums[1]
}
