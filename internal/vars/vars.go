// Package vars lists the environment variables a workspace reads: the
// ${…} references in an environment's files, the names of config.env.bind
// and every name the prefix rule (PREFIX_A__B) can set, with the key each
// feeds, its type, whether it is required or what applies without it, and
// whether it is set now — never its value. It is the "complete variable
// reference" teams keep by hand, generated; and it finds process variables
// that carry the prefix but set nothing (a typo such as ARKA_SERVR__PORT).
package vars

import (
	"sort"
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/interp"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/tree"
)

// Kinds of variables, by the rule that reads them.
const (
	KindReference = "reference" // ${NAME} in a config file
	KindBind      = "bind"      // config.env.bind
	KindPrefix    = "prefix"    // PREFIX_A__B
)

// Redacted stands for a default that belongs to a sensitive key.
const Redacted = "<redacted>"

// Var is one variable and the key it feeds. Its JSON form is `envplane vars
// --format json`.
type Var struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	Kind string `json:"kind"`
	Type string `json:"type"`
	// Required is set for ${NAME} and ${NAME:?message}: resolution fails
	// without it. When is "" or names the variable whose absence makes a
	// nested reference needed ("DB_URL is unset" for ${DB_URL:-${DB_HOST}}).
	Required bool   `json:"required"`
	When     string `json:"when,omitempty"`
	// Default is what applies when the variable is not set: a reference's
	// fallback as written, or for bind and prefix names the key's value from
	// the files. Redacted for sensitive keys; absent when nothing applies.
	Default *string `json:"default,omitempty"`
	// Set is "environment" or "secret" when the variable is set now, else "".
	Set string `json:"set"`
	// Source is where a reference is written (file:line:col).
	Source    string `json:"source,omitempty"`
	Sensitive bool   `json:"sensitive"`
}

// Options say what is set now: Getenv for the process environment, Secret
// for the names in the environment's secrets (values are never needed).
type Options struct {
	Getenv resolve.Lookup
	Secret func(name string) bool
}

// For lists the variables env (and service) reads: references first, in
// the order of the keys, then the explicit bindings, then the prefix names.
func For(r *resolve.Resolver, env, service string, o Options) []Var {
	ws := r.Workspace()
	sens := r.Sensitivity()
	res := r.Resolve(resolve.Request{Env: env, Service: service})
	types := typeOf(r, res.Tree, service)
	set := func(name string) string {
		if o.Getenv != nil {
			if _, ok := o.Getenv(name); ok {
				return "environment"
			}
		}
		if o.Secret != nil && o.Secret(name) {
			return "secret"
		}
		return ""
	}
	var out []Var
	visitLeaves(res.Tree, "", func(path string, v *tree.Value) {
		if v.Template == "" {
			return
		}
		t, err := interp.Parse(v.Template)
		if err != nil {
			return // a parse error, reported by resolve and lint
		}
		src := v.Src
		if v.Via != nil {
			src = *v.Via
		}
		sensitive := sens.Path(path) || v.Secret
		var refs func(t interp.Template, when string)
		refs = func(t interp.Template, when string) {
			for _, p := range t.Parts {
				ref := p.Ref
				if ref == nil {
					continue
				}
				vr := Var{Name: ref.Name, Key: path, Kind: KindReference, Type: types(path),
					When: when, Set: set(ref.Name), Source: src.String(), Sensitive: sensitive}
				switch ref.Op {
				case interp.OpNone, interp.OpRequired, interp.OpRequiredUnset:
					vr.Required = true
				default:
					d := ref.Arg.String()
					if sensitive && d != "" {
						d = Redacted
					}
					vr.Default = &d
				}
				out = append(out, vr)
				if ref.Op == interp.OpDefault || ref.Op == interp.OpDefaultUnset {
					refs(ref.Arg, ref.Name+" is unset")
				}
			}
		}
		refs(t, "")
	})
	current := func(path string) *string {
		v := res.Tree.Lookup(tree.SplitKey(path))
		if v == nil || v.Kind == tree.Map {
			return nil
		}
		d := v.Scalar()
		if v.Template != "" {
			d = v.Template
		}
		if v.Kind == tree.Array {
			d = render(v)
		}
		if sens.Path(path) || v.Secret {
			d = Redacted
		}
		return &d
	}
	for _, b := range ws.Config.Env.Bind {
		out = append(out, Var{Name: b.Var, Key: b.Path, Kind: KindBind, Type: types(b.Path),
			Default: current(b.Path), Set: set(b.Var), Sensitive: sens.Path(b.Path)})
	}
	resolve.PrefixNames(ws.Config.Env.Prefix, res.Tree, func(name, path string, v *tree.Value) {
		out = append(out, Var{Name: name, Key: path, Kind: KindPrefix, Type: types(path),
			Default: current(path), Set: set(name), Sensitive: sens.Path(path) || v.Secret})
	})
	return out
}

// render prints a list's items as a comma list, as variables give them.
func render(v *tree.Value) string {
	parts := make([]string, len(v.Items))
	for i, it := range v.Items {
		if it.Kind == tree.Map || it.Kind == tree.Array {
			return "[…]"
		}
		parts[i] = it.Scalar()
		if it.Template != "" {
			parts[i] = it.Template
		}
	}
	return strings.Join(parts, ",")
}

// visitLeaves calls fn for every scalar under v, array items included (a
// reference typed as a number or boolean is a scalar that keeps its
// template).
func visitLeaves(v *tree.Value, path string, fn func(string, *tree.Value)) {
	switch v.Kind {
	case tree.Map:
		for _, f := range v.Fields {
			visitLeaves(f.Value, join(path, f.Key), fn)
		}
	case tree.Array:
		if v.Template != "" {
			fn(path, v) // "${HOSTS}" typed as a list
			return
		}
		for i, it := range v.Items {
			visitLeaves(it, join(path, strconv.Itoa(i)), fn)
		}
	default:
		fn(path, v)
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// typeOf returns the type of a key: the schema's, else the value's in
// this environment unless it is an unresolved reference, else the first
// other environment's, else string.
func typeOf(r *resolve.Resolver, here *tree.Value, service string) func(path string) string {
	var others []*tree.Value
	loaded := false
	return func(path string) string {
		segs := tree.SplitKey(path)
		if s := r.Schema(); s != nil {
			if k, elem, ok := s.KindAt(segs); ok {
				return kindName(k, elem)
			}
		}
		if k, elem, ok := kindOf(here.Lookup(segs)); ok {
			return kindName(k, elem)
		}
		if !loaded {
			loaded = true
			for _, e := range r.Workspace().Environments {
				others = append(others, r.Resolve(resolve.Request{Env: e.Name, Service: service}).Tree)
			}
		}
		for _, t := range others {
			if t == nil {
				continue
			}
			if k, elem, ok := kindOf(t.Lookup(segs)); ok {
				return kindName(k, elem)
			}
		}
		return "string"
	}
}

func kindOf(v *tree.Value) (tree.Kind, tree.Kind, bool) {
	if v == nil || v.Kind == tree.Null || v.Unresolved {
		return 0, 0, false
	}
	elem := tree.String
	if v.Kind == tree.Array && len(v.Items) > 0 {
		elem = v.Items[0].Kind
	}
	return v.Kind, elem, true
}

func kindName(k, elem tree.Kind) string {
	if k == tree.Array {
		return "list of " + elem.String()
	}
	return k.String()
}

// Unused is a process variable that carries the prefix and sets nothing.
type Unused struct {
	Name    string
	Suggest string // the closest name that would set a key, or ""
}

// UnusedVariables returns the names among names (the process environment's)
// that start with the workspace prefix but are neither bound explicitly nor
// a name the prefix rule looks up in any environment or service, sorted.
func UnusedVariables(r *resolve.Resolver, names []string) []Unused {
	ws := r.Workspace()
	prefix := ws.Config.Env.Prefix
	if prefix == "" {
		return nil
	}
	var candidates []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix+"_") {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	known := map[string]bool{}
	for _, b := range ws.Config.Env.Bind {
		known[b.Var] = true
	}
	services := append([]string{""}, ws.Services...)
	for _, e := range ws.Environments {
		for _, s := range services {
			if s != "" && !ws.UsesServices() {
				continue
			}
			res := r.Resolve(resolve.Request{Env: e.Name, Service: s})
			resolve.PrefixNames(prefix, res.Tree, func(name, _ string, _ *tree.Value) { known[name] = true })
		}
	}
	var all []string
	for n := range known {
		all = append(all, n)
	}
	sort.Strings(all)
	var out []Unused
	for _, n := range candidates {
		if known[n] {
			continue
		}
		out = append(out, Unused{Name: n, Suggest: suggest.Closest(n, all)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
