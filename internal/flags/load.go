package flags

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// File is one flag file: its workspace-relative name (the extension
// picks YAML or JSON) and its content.
type File struct {
	Name string
	Data []byte
}

// EnvRef is an environment name a flag file uses under `environments:`.
type EnvRef struct {
	Name string
	Flag string
	Pos  diag.Pos
}

// Document is every flag of a workspace's flag files, parsed once, with
// every problem found in them. It compiles into one Set per environment.
type Document struct {
	defs     []*def
	problems []Problem
	envRefs  []EnvRef
	base     *Set
	envs     map[string]*Set
	digest   string
}

// def is one flag as written.
type def struct {
	key        string
	pos        diag.Pos
	base       spec
	envs       map[string]spec
	short      *shorthand
	problems   []Problem // make the flag unusable in every environment
	evaluators map[string]*tree.Value
	setMeta    map[string]any
}

// spec holds the native fields of a flag or of one environment's override.
type spec struct {
	state, variants, defaultVariant, targeting, metadata *tree.Value
}

// shorthand is the seeds' form: default, environments: {env: bool}, rollout.
type shorthand struct {
	def     *tree.Value
	envs    map[string]*tree.Value
	rollout *tree.Value
}

var nativeFields = []string{"state", "variants", "defaultVariant", "targeting", "metadata", "environments"}

// Parse reads flag files. It never fails as a whole: problems are kept
// (Problems) and a flag with problems evaluates to PARSE_ERROR.
func Parse(files ...File) *Document {
	d := &Document{envs: map[string]*Set{}}
	h := sha256.New()
	seen := map[string]*def{}
	for _, f := range files {
		fmt.Fprintf(h, "%d:%s\n%d:", len(f.Name), f.Name, len(f.Data))
		h.Write(f.Data)
		d.parseFile(f, seen)
	}
	d.digest = hex.EncodeToString(h.Sum(nil))[:32]
	// Compile the base and every environment named anywhere, so that
	// Problems covers every override.
	d.base = d.compile("")
	names := map[string]bool{}
	for _, r := range d.envRefs {
		names[r.Name] = true
	}
	for n := range names {
		d.envs[n] = d.compile(n)
	}
	seenProblem := map[string]bool{}
	add := func(p Problem) {
		k := p.Error()
		if !seenProblem[k] {
			seenProblem[k] = true
			d.problems = append(d.problems, p)
		}
	}
	for _, p := range d.problems {
		seenProblem[p.Error()] = true
	}
	for _, s := range append([]*Set{d.base}, mapValues(d.envs)...) {
		for _, key := range s.keys {
			for _, p := range s.flags[key].problems {
				add(p)
			}
		}
	}
	sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Pos.Before(d.problems[j].Pos) })
	sort.SliceStable(d.envRefs, func(i, j int) bool { return d.envRefs[i].Pos.Before(d.envRefs[j].Pos) })
	return d
}

func mapValues(m map[string]*Set) []*Set {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*Set, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// Problems returns every problem of every file and flag, by place.
func (d *Document) Problems() []Problem { return d.problems }

// Environments returns the environment names the files use, by place,
// for checking against the workspace's environments.
func (d *Document) Environments() []EnvRef { return d.envRefs }

// Set returns the compiled flags of env. Environments no flag mentions
// share one Set of the flags as written (shorthand flags use `default`).
func (d *Document) Set(env string) *Set {
	if s, ok := d.envs[env]; ok {
		return s
	}
	return d.base
}

func (d *Document) fileProblem(pos diag.Pos, field, format string, args ...any) {
	d.problems = append(d.problems, Problem{Pos: pos, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (d *Document) parseFile(f File, seen map[string]*def) {
	var root *tree.Value
	var errs diag.List
	switch tree.FormatOf(f.Name) {
	case tree.FormatYAML:
		root, errs = tree.ParseYAML(f.Name, f.Data)
	case tree.FormatJSON:
		root, errs = tree.ParseJSON(f.Name, f.Data)
	default:
		d.fileProblem(diag.Pos{File: f.Name}, "", "a flag file must be YAML (.yaml, .yml) or JSON (.json)")
		return
	}
	for _, e := range errs {
		d.problems = append(d.problems, Problem{Pos: e.Pos, Message: e.Message})
	}
	if root == nil {
		return
	}
	top := root.Src.Pos()
	var flagsV, evalsV *tree.Value
	var setMeta map[string]any
	for _, fl := range root.Fields {
		switch fl.Key {
		case "flags":
			flagsV = fl.Value
		case "$evaluators":
			evalsV = fl.Value
		case "metadata":
			if fl.Value.Kind != tree.Map {
				d.fileProblem(fl.Value.Src.Pos(), "metadata", "expected a map of values, found %s", describe(fl.Value))
			} else {
				setMeta, _ = literal(fl.Value).(map[string]any)
			}
		case "$schema":
		default:
			d.fileProblem(fl.Value.Src.Pos(), fl.Key, "unknown top-level key (expected flags, $evaluators, metadata, $schema)")
		}
	}
	if flagsV == nil {
		d.fileProblem(top, "flags", "the file defines no flags: expected a top-level `flags:` map of flag definitions")
		return
	}
	evaluators := map[string]*tree.Value{}
	if evalsV != nil {
		if evalsV.Kind != tree.Map {
			d.fileProblem(evalsV.Src.Pos(), "$evaluators", "expected a map of named rules, found %s", describe(evalsV))
		} else {
			for _, e := range evalsV.Fields {
				evaluators[e.Key] = e.Value
			}
		}
	}
	add := func(key string, v *tree.Value) {
		if prev, ok := seen[key]; ok {
			d.problems = append(d.problems, Problem{Pos: v.Src.Pos(), Flag: key, Message: fmt.Sprintf("defined again (first at %s); the first definition is used", prev.pos)})
			return
		}
		df := d.parseFlag(key, v)
		df.evaluators, df.setMeta = evaluators, setMeta
		seen[key] = df
		d.defs = append(d.defs, df)
	}
	switch flagsV.Kind {
	case tree.Map:
		for _, fl := range flagsV.Fields {
			add(fl.Key, fl.Value)
		}
	case tree.Array:
		for _, it := range flagsV.Items {
			k := it.Get("key")
			if k == nil || k.Kind != tree.String || k.Str == "" {
				d.fileProblem(it.Src.Pos(), "flags", "a flag in a list needs a `key` (a string)")
				continue
			}
			add(k.Str, it)
		}
	default:
		d.fileProblem(flagsV.Src.Pos(), "flags", "expected a map of flag key to definition, found %s", describe(flagsV))
	}
}

func (d *Document) parseFlag(key string, v *tree.Value) *def {
	df := &def{key: key, pos: v.Src.Pos(), envs: map[string]spec{}}
	bad := func(at *tree.Value, field, format string, args ...any) {
		df.problems = append(df.problems, Problem{Pos: at.Src.Pos(), Flag: key, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if v.Kind != tree.Map {
		bad(v, "", "expected a flag definition (a map with state, variants, defaultVariant, targeting, or the shorthand default/environments/rollout), found %s", describe(v))
		return df
	}
	if v.Get("variants") == nil && (v.Get("default") != nil || v.Get("rollout") != nil || v.Get("environments") != nil) {
		d.parseShorthand(df, v, bad)
		return df
	}
	for _, f := range v.Fields {
		switch f.Key {
		case "state":
			df.base.state = f.Value
		case "variants":
			df.base.variants = f.Value
		case "defaultVariant":
			df.base.defaultVariant = f.Value
		case "targeting":
			df.base.targeting = f.Value
		case "metadata":
			df.base.metadata = f.Value
		case "key", "source", "selector", "flagSetId":
		case "environments":
			if f.Value.Kind != tree.Map {
				bad(f.Value, "environments", "expected a map of environment name to overrides, found %s", describe(f.Value))
				continue
			}
			for _, e := range f.Value.Fields {
				d.envRefs = append(d.envRefs, EnvRef{Name: e.Key, Flag: key, Pos: e.Value.Src.Pos()})
				field := "environments." + e.Key
				if e.Value.Kind != tree.Map {
					bad(e.Value, field, "expected overrides (state, variants, defaultVariant, targeting, metadata), found %s", describe(e.Value))
					continue
				}
				var s spec
				for _, o := range e.Value.Fields {
					switch o.Key {
					case "state":
						s.state = o.Value
					case "variants":
						s.variants = o.Value
					case "defaultVariant":
						s.defaultVariant = o.Value
					case "targeting":
						s.targeting = o.Value
					case "metadata":
						s.metadata = o.Value
					default:
						bad(o.Value, field+"."+o.Key, "unknown field (expected state, variants, defaultVariant, targeting, metadata)")
					}
				}
				df.envs[e.Key] = s
			}
		default:
			bad(f.Value, f.Key, "unknown field (expected %s)", strings.Join(nativeFields, ", "))
		}
	}
	if df.base.variants == nil {
		bad(v, "variants", "missing: a flag needs variants (a map of variant name to value)")
	}
	return df
}

func (d *Document) parseShorthand(df *def, v *tree.Value, bad func(*tree.Value, string, string, ...any)) {
	sh := &shorthand{envs: map[string]*tree.Value{}}
	df.short = sh
	for _, f := range v.Fields {
		switch f.Key {
		case "default":
			sh.def = f.Value
			if f.Value.Kind != tree.Bool {
				bad(f.Value, "default", "expected true or false, found %s", describe(f.Value))
			}
		case "environments":
			if f.Value.Kind != tree.Map {
				bad(f.Value, "environments", "expected a map of environment name to true or false, found %s", describe(f.Value))
				continue
			}
			for _, e := range f.Value.Fields {
				d.envRefs = append(d.envRefs, EnvRef{Name: e.Key, Flag: df.key, Pos: e.Value.Src.Pos()})
				if e.Value.Kind != tree.Bool {
					bad(e.Value, "environments."+e.Key, "expected true or false, found %s", describe(e.Value))
					continue
				}
				sh.envs[e.Key] = e.Value
			}
		case "rollout":
			sh.rollout = f.Value
			checkRollout(f.Value, bad)
		case "metadata", "description":
		default:
			bad(f.Value, f.Key, "unknown field of a shorthand flag (expected default, environments, rollout, metadata, description)")
		}
	}
	if sh.def == nil {
		bad(v, "default", "missing: a shorthand flag needs `default: true|false` (the value of environments it does not list)")
	}
}

func checkRollout(v *tree.Value, bad func(*tree.Value, string, string, ...any)) {
	if v.Kind != tree.Map {
		bad(v, "rollout", "expected {type: percentage, value: 0-100} or {type: user_attribute, attribute: NAME}, found %s", describe(v))
		return
	}
	t := v.Get("type")
	switch {
	case t == nil:
		bad(v, "rollout.type", "missing: percentage or user_attribute")
	case t.Str == "percentage" && t.Kind == tree.String:
		val := v.Get("value")
		if val == nil {
			bad(v, "rollout.value", "missing: the percentage of users who get the flag (0-100)")
		} else if n, ok := number(val); !ok || n < 0 || n > 100 {
			bad(val, "rollout.value", "expected a number from 0 to 100, found %s", describe(val))
		}
	case t.Str == "user_attribute" && t.Kind == tree.String:
		a := v.Get("attribute")
		if a == nil || a.Kind != tree.String || a.Str == "" {
			at := v
			if a != nil {
				at = a
			}
			bad(at, "rollout.attribute", "expected the name of the context attribute that turns the flag on")
		}
	default:
		bad(t, "rollout.type", "expected percentage or user_attribute, found %s", describe(t))
	}
	for _, f := range v.Fields {
		switch f.Key {
		case "type", "value", "attribute":
		default:
			bad(f.Value, "rollout."+f.Key, "unknown field (expected type, value, attribute)")
		}
	}
}

func number(v *tree.Value) (float64, bool) {
	switch v.Kind {
	case tree.Int, tree.Uint, tree.Float:
		return literal(v).(float64), true
	}
	return 0, false
}
