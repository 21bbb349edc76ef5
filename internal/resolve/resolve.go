// Package resolve assembles the configuration one environment (and optionally
// one service) gets: schema defaults, then the workspace's file layers, then
// the environment's secrets, then runtime environment variables, with
// interpolation, type coercion and per-value provenance. Resolution is pure:
// files are read once into memory and everything after that is computation.
package resolve

import (
	"errors"
	"github.com/envplane/envplane/internal/domain"
	"io/fs"
	"path"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/dotenv"
	"github.com/envplane/envplane/internal/schema"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/workspace"
)

// Rule names the kind of a resolution problem; lint reports them under these names.
const (
	RuleParse      = "parse-error"
	RuleUnresolved = "unresolved-reference"
	RuleCoercion   = "coercion"
	RuleLayer      = "layer"
	RuleBinding    = "binding"
)

// Problem is one thing that went wrong resolving a config.
type Problem struct {
	diag.Diagnostic
	Rule string
	Path string // dotted key, when the problem belongs to one
}

// Lookup reports the value of a runtime variable and whether it is set.
type Lookup func(name string) (string, bool)

// GetenvLookup adapts a getenv function: an empty value counts as unset.
func GetenvLookup(getenv func(string) string) Lookup {
	if getenv == nil {
		return nil
	}
	return func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}
}

// Request names what to resolve.
type Request struct {
	Env     string
	Service string
	// Getenv supplies runtime variables; nil means none (as on the server).
	Getenv Lookup
	// Secrets of the environment, by name.
	Secrets map[string]domain.Secret
}

// Result is a resolved config and every problem met on the way.
type Result struct {
	Env, Service string
	Tree         *tree.Value
	Problems     []Problem
	// Files lists the layer files that contributed, lowest first.
	Files []string
}

// Err returns the problems as a diag.List error, or nil.
func (r *Result) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	l := make(diag.List, len(r.Problems))
	for i, p := range r.Problems {
		l[i] = p.Diagnostic
	}
	return l
}

// Resolver resolves configs of one workspace. It reads each file once and
// keeps its bytes; every Resolve parses from those bytes afresh, so results
// never share mutable state. A Resolver is not safe for concurrent use.
type Resolver struct {
	ws        *workspace.Workspace
	schema    *schema.Schema
	sensitive Sensitivity
	files     map[string][]byte
	fileErrs  map[string]error
	hints     map[string]*tree.Value // raw merged trees of environments, for type hints
}

// New prepares a resolver for ws, loading its schema if it has one.
func New(ws *workspace.Workspace) (*Resolver, error) { return NewCached(ws, nil) }

// NewCached is New that loads the schema through cache (schema.LoadCached):
// the same resolver and problems, less work for a schema this binary
// compiled before. A nil cache is New.
func NewCached(ws *workspace.Workspace, cache schema.Cache) (*Resolver, error) {
	r := &Resolver{
		ws:        ws,
		sensitive: NewSensitivity(ws.Config.Sensitive),
		files:     map[string][]byte{},
		fileErrs:  map[string]error{},
		hints:     map[string]*tree.Value{},
	}
	if ws.Config.Schema != "" {
		s, err := schema.LoadCached(ws.FS, ws.Config.Schema, ws.Config.SchemaPos, cache)
		if err != nil {
			return nil, err
		}
		r.schema = s
	}
	return r, nil
}

// Workspace returns the workspace being resolved.
func (r *Resolver) Workspace() *workspace.Workspace { return r.ws }

// Schema returns the workspace schema, or nil.
func (r *Resolver) Schema() *schema.Schema { return r.schema }

// Sensitivity returns the workspace's rule for sensitive keys.
func (r *Resolver) Sensitivity() Sensitivity { return r.sensitive }

// LendingFS is a file system that can lend a file's bytes instead of
// copying them (fs.ReadFile returns a copy its caller may change). A
// Resolver keeps the bytes it reads for its whole life and only ever reads
// them, so over a LendingFS (a release's files, internal/release) it holds
// no second copy of the workspace. The lender must not change the bytes
// either.
type LendingFS interface {
	fs.FS
	LendFile(name string) ([]byte, error)
}

func (r *Resolver) read(name string) ([]byte, error) {
	if b, ok := r.files[name]; ok {
		return b, nil
	}
	if err, ok := r.fileErrs[name]; ok {
		return nil, err
	}
	var b []byte
	var err error
	if l, ok := r.ws.FS.(LendingFS); ok {
		b, err = l.LendFile(name)
	} else {
		b, err = fs.ReadFile(r.ws.FS, name)
	}
	if err != nil {
		r.fileErrs[name] = err
		return nil, err
	}
	r.files[name] = b
	return b, nil
}

// Resolve computes the config of req.Env (and req.Service). Problems do not
// stop resolution: the result holds as much as could be resolved, with
// unresolved strings kept as their template text.
func (r *Resolver) Resolve(req Request) *Result {
	res := &Result{Env: req.Env, Service: req.Service}
	if _, ok := r.ws.Environment(req.Env); !ok {
		res.Problems = append(res.Problems, Problem{Rule: RuleLayer, Diagnostic: diag.Errorf(diag.Pos{File: workspace.FileName},
			"unknown environment %q (known: %s)", req.Env, strings.Join(r.ws.EnvironmentNames(), ", "))})
		return res
	}
	if req.Service != "" && !r.ws.HasService(req.Service) {
		res.Problems = append(res.Problems, Problem{Rule: RuleLayer, Diagnostic: diag.Errorf(diag.Pos{File: workspace.FileName},
			"unknown service %q (known: %s)", req.Service, strings.Join(r.ws.Services, ", "))})
		return res
	}
	s := &session{r: r, req: req, res: res}
	root := s.layers(req.Env, req.Service, true)
	// The size is measured before interpolation, kept up to date by it, and
	// measured again after binding, which adds at most a variable or secret
	// a key.
	if !s.measure(root) {
		return res
	}
	s.interpolate(root, nil)
	if s.tooLarge {
		return res
	}
	s.bindSecrets(root)
	s.bindEnv(root)
	if s.size = 0; !s.measure(root) {
		return res
	}
	res.Tree = root
	return res
}

// session is the state of one Resolve call.
type session struct {
	r       *Resolver
	req     Request
	res     *Result
	hinting bool // building another environment's tree for type hints
	// size is the bytes of the tree as measured (see MaxTreeBytes);
	// tooLarge is set once it went beyond.
	size     int
	tooLarge bool
}

func (s *session) problem(rule, path string, pos diag.Pos, format string, args ...any) {
	s.res.Problems = append(s.res.Problems, Problem{Rule: rule, Path: path, Diagnostic: diag.Errorf(pos, format, args...)})
}

// layers merges schema defaults and the file layers of (env, service). With
// record set, problems and contributing files go into the result; without,
// the tree only serves as a type hint.
func (s *session) layers(env, service string, record bool) *tree.Value {
	root := &tree.Value{Kind: tree.Map}
	for _, l := range s.r.ws.Config.Layers {
		file, err := s.r.ws.LayerFiles(l, env, service)
		if err != nil {
			if record {
				s.addErr(RuleLayer, err)
			}
			continue
		}
		if file == "" {
			continue
		}
		data, err := s.r.read(file)
		if err != nil {
			if record {
				if errors.Is(err, fs.ErrNotExist) && !l.Required {
					continue
				}
				s.problem(RuleLayer, "", l.Pos, "layer %q: cannot read %s: %v", l.Path, file, unwrap(err))
			}
			continue
		}
		var layer *tree.Value
		var errs diag.List
		switch formatOf(file) {
		case tree.FormatYAML:
			layer, errs = tree.ParseYAML(file, data)
		case tree.FormatJSON:
			layer, errs = tree.ParseJSON(file, data)
		case tree.FormatDotenv:
			entries, derrs := dotenv.Parse(file, data)
			errs = derrs
			target := root
			if l.At != "" {
				target = ensurePath(root, strings.Split(l.At, "."), tree.Source{Name: file, Line: 1, Column: 1})
			}
			s.applyDotenv(target, l.At, entries, record)
		default:
			if record {
				s.problem(RuleLayer, "", l.Pos, "layer %q: %s is not YAML (.yaml/.yml), JSON (.json) or dotenv (.env)", l.Path, file)
			}
			continue
		}
		if record {
			for _, d := range errs {
				s.res.Problems = append(s.res.Problems, Problem{Rule: RuleParse, Diagnostic: d})
			}
			s.res.Files = append(s.res.Files, file)
		}
		if layer == nil {
			continue
		}
		if l.At != "" {
			layer = mount(layer, strings.Split(l.At, "."))
		}
		merge(root, layer)
	}
	// Schema defaults are the lowest layer, but merged last so that keys keep
	// the order the files give them.
	if s.r.schema != nil {
		mergeUnder(root, s.r.schema.Defaults())
	}
	return root
}

// formatOf is the format of a layer file: by extension, and .env.{name}
// (.env.staging, the usual name of an environment's dotenv file) is dotenv.
func formatOf(file string) tree.Format {
	if f := tree.FormatOf(file); f != tree.FormatUnknown {
		return f
	}
	if strings.HasPrefix(path.Base(file), ".env.") {
		return tree.FormatDotenv
	}
	return tree.FormatUnknown
}

// mergeUnder adds src beneath dst: keys dst lacks are added, and values dst
// has record src's value as the lowest one they overrode.
func mergeUnder(dst, src *tree.Value) {
	for _, f := range src.Fields {
		old := dst.Get(f.Key)
		switch {
		case old == nil:
			dst.Fields = append(dst.Fields, f)
		case old.Kind == tree.Map && f.Value.Kind == tree.Map:
			mergeUnder(old, f.Value)
		case old.Kind != tree.Map && f.Value.Kind != tree.Map:
			old.Overridden = append(old.Overridden, f.Value)
		}
	}
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (s *session) addErr(rule string, err error) {
	var d diag.Diagnostic
	var l diag.List
	switch {
	case errors.As(err, &l):
		for _, d := range l {
			s.res.Problems = append(s.res.Problems, Problem{Rule: rule, Diagnostic: d})
		}
	case errors.As(err, &d):
		s.res.Problems = append(s.res.Problems, Problem{Rule: rule, Diagnostic: d})
	default:
		s.res.Problems = append(s.res.Problems, Problem{Rule: rule, Diagnostic: diag.Diagnostic{Message: err.Error()}})
	}
}

// mount places a file's tree under a dotted key path.
func mount(v *tree.Value, path []string) *tree.Value {
	for i := len(path) - 1; i >= 0; i-- {
		v = &tree.Value{Kind: tree.Map, Src: v.Src, Fields: []tree.Field{{Key: path[i], Value: v}}}
	}
	return v
}

// ensurePath returns the map at path under root, creating maps on the way.
func ensurePath(root *tree.Value, path []string, src tree.Source) *tree.Value {
	cur := root
	for _, seg := range path {
		next := cur.Get(seg)
		if next == nil || next.Kind != tree.Map {
			next = &tree.Value{Kind: tree.Map, Src: src}
			cur.Set(seg, next)
		}
		cur = next
	}
	return cur
}

// merge deep-merges src into dst (both maps). Maps merge; scalars and arrays
// replace and remember what they replaced; an explicit null deletes.
func merge(dst, src *tree.Value) {
	// Large maps get a key index so merging stays linear, also when a large
	// layer goes into a small map (200,000 keys into the empty root took
	// minutes).
	var idx map[string]int
	large := len(dst.Fields)+len(src.Fields) > 32 && len(src.Fields) > 8
	for _, f := range src.Fields {
		i := -1
		if large {
			if idx == nil {
				idx = make(map[string]int, len(dst.Fields)+len(src.Fields))
				for j, g := range dst.Fields {
					idx[g.Key] = j
				}
			}
			if j, ok := idx[f.Key]; ok {
				i = j
			}
		} else {
			i = dst.Index(f.Key)
		}
		if i < 0 {
			if idx != nil {
				idx[f.Key] = len(dst.Fields)
			}
			dst.Fields = append(dst.Fields, f)
			continue
		}
		old := dst.Fields[i].Value
		nv := f.Value
		switch {
		case nv.Kind == tree.Null:
			dst.Fields = append(dst.Fields[:i], dst.Fields[i+1:]...)
			idx = nil // positions moved; rebuilt on next use
		case nv.Kind == tree.Map && old.Kind == tree.Map:
			merge(old, nv)
		default:
			if old.Kind != tree.Map {
				chain := make([]*tree.Value, 0, 1+len(old.Overridden))
				chain = append(chain, old)
				nv.Overridden = append(chain, old.Overridden...)
				old.Overridden = nil
			}
			dst.Fields[i].Value = nv
		}
	}
}

// override replaces the leaf at parent[key] (or items[index]) with nv,
// recording the old value in nv's chain.
func override(old, nv *tree.Value) {
	if old == nil || old.Kind == tree.Map {
		return
	}
	chain := make([]*tree.Value, 0, 1+len(old.Overridden))
	chain = append(chain, old)
	nv.Overridden = append(chain, old.Overridden...)
	old.Overridden = nil
}
