package resolve

import (
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/dotenv"
	"github.com/envplane/envplane/internal/interp"
	"github.com/envplane/envplane/internal/tree"
)

// binding is one variable found for a key, from the process environment, a
// secret or a dotenv file.
type binding struct {
	name   string
	text   string
	src    tree.Source
	secret bool
}

// found looks a variable up in one kind of source.
type found func(name string) (binding, bool)

func (s *session) bindEnv(root *tree.Value) {
	if s.req.Getenv == nil {
		return
	}
	s.bindAll(root, func(name string) (binding, bool) {
		text, ok := s.req.Getenv(name)
		return binding{name: name, text: text, src: tree.Source{Kind: tree.SourceEnv, Name: name}}, ok
	})
}

func (s *session) bindSecrets(root *tree.Value) {
	if len(s.req.Secrets) == 0 {
		return
	}
	s.bindAll(root, func(name string) (binding, bool) {
		sec, ok := s.req.Secrets[name]
		if sec.Sealed {
			return binding{}, false // an unknown value cannot replace a known one
		}
		return binding{name: name, text: sec.Value, secret: true,
			src: tree.Source{Kind: tree.SourceSecret, Name: name, Version: int32(sec.Version), File: sec.File}}, ok
	})
}

// bindAll applies the prefix rule over every existing key, then the explicit
// bindings, which win.
func (s *session) bindAll(root *tree.Value, look found) {
	envCfg := s.r.ws.Config.Env
	if envCfg.Prefix != "" {
		applied := map[string]string{}
		buf := make([]byte, 0, 64)
		buf = append(buf, envCfg.Prefix...)
		buf = append(buf, '_')
		s.bindPrefix(root, buf, nil, look, applied)
	}
	for _, b := range envCfg.Bind {
		bd, ok := look(b.Var)
		if !ok {
			continue
		}
		s.setPath(root, strings.Split(b.Path, "."), bd, true)
	}
}

// bindPrefix walks the tree building each key's variable name
// (PREFIX_SERVER__PORT for server.port) and looks it up: one lookup per key,
// so the process environment never needs to be enumerated.
func (s *session) bindPrefix(v *tree.Value, name []byte, path []string, look found, applied map[string]string) {
	switch v.Kind {
	case tree.Map:
		for i := range v.Fields {
			f := &v.Fields[i]
			n := name
			if len(path) > 0 {
				n = append(n, '_', '_')
			}
			n, ok := appendEnvSegment(n, f.Key)
			if !ok {
				continue
			}
			p := append(path, f.Key)
			if f.Value.Kind != tree.Map {
				if bd, ok := look(string(n)); ok {
					if s.checkAmbiguous(bd.name, p, applied) {
						f.Value = s.bound(f.Value, bd, p)
					}
					continue
				}
			}
			if f.Value.Kind == tree.Map || f.Value.Kind == tree.Array {
				s.bindPrefix(f.Value, n, p, look, applied)
			}
		}
	case tree.Array:
		for i, it := range v.Items {
			n := strconv.AppendInt(append(name, '_', '_'), int64(i), 10)
			p := append(path, strconv.Itoa(i))
			if it.Kind != tree.Map {
				if bd, ok := look(string(n)); ok {
					if s.checkAmbiguous(bd.name, p, applied) {
						v.Items[i] = s.bound(it, bd, p)
					}
					continue
				}
			}
			if it.Kind == tree.Map || it.Kind == tree.Array {
				s.bindPrefix(it, n, p, look, applied)
			}
		}
	}
}

func (s *session) checkAmbiguous(name string, path []string, applied map[string]string) bool {
	p := joinPath(path)
	if prev, ok := applied[name]; ok && prev != p {
		s.problem(RuleBinding, p, diag.Pos{}, "%s matches both %s and %s; bind it explicitly with config.env.bind", name, prev, p)
		return false
	}
	applied[name] = p
	return true
}

// envSegment is a key's part of a variable name: upper-cased, '-' dropped.
// Keys with other characters cannot be addressed by a variable.
func envSegment(key string) ([]byte, bool) {
	return appendEnvSegment(nil, key)
}

// appendEnvSegment appends key's part of a variable name to dst.
func appendEnvSegment(dst []byte, key string) ([]byte, bool) {
	start := len(dst)
	out := dst
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z':
			out = append(out, c-('a'-'A'))
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			out = append(out, c)
		case c == '-':
		default:
			return nil, false
		}
	}
	seg := out[start:]
	if len(seg) == 0 || (len(seg) > 1 && seg[0] == '_') {
		return dst, false
	}
	return out, true
}

// bound coerces a variable's text to the type of the value it replaces.
func (s *session) bound(old *tree.Value, bd binding, path []string) *tree.Value {
	kind, elem := old.Kind, tree.String
	if old.Kind == tree.Array && len(old.Items) > 0 {
		elem = old.Items[0].Kind
	}
	if old.Kind == tree.Null || (old.Kind == tree.String && old.Unresolved) {
		if k, e, ok := s.hint(old, path); ok {
			kind, elem = k, e
		} else {
			kind = tree.String
		}
	}
	nv := s.coerced(bd, path, kind, elem)
	if nv == nil {
		return old
	}
	override(old, nv)
	return nv
}

// coerced is the binding's value coerced to kind (arrays of elem), carrying
// the binding as its source; nil after reporting a coercion problem.
func (s *session) coerced(bd binding, path []string, kind, elem tree.Kind) *tree.Value {
	nv, err := s.coerceBinding(bd, kind, elem)
	if err != nil {
		s.coercionProblem(bd, path, err)
		return nil
	}
	nv.Src, nv.Secret = bd.src, bd.secret
	for _, it := range nv.Items {
		it.Src, it.Secret = bd.src, bd.secret
	}
	return nv
}

func (s *session) coercionProblem(bd binding, path []string, err error) {
	p := joinPath(path)
	what := "environment variable " + bd.name
	switch bd.src.Kind {
	case tree.SourceSecret:
		what = "secret " + bd.name
	case tree.SourceFile:
		what = bd.name
	}
	// Never echo a value that may be a credential.
	shown := ""
	if !bd.secret && !s.r.sensitive.Path(p) {
		shown = " (got " + strconv.Quote(bd.text) + ")"
	}
	pos := diag.Pos{}
	if bd.src.Kind == tree.SourceFile {
		pos = bd.src.Pos()
	}
	s.problem(RuleCoercion, p, pos, "%s: %s %v%s", what, p, err, shown)
}

// setPath applies an explicit binding, creating the key when it is missing.
func (s *session) setPath(root *tree.Value, path []string, bd binding, create bool) {
	cur := root
	for i, seg := range path {
		last := i == len(path)-1
		switch cur.Kind {
		case tree.Map:
			idx := cur.Index(seg)
			if idx < 0 {
				if !create {
					return
				}
				if last {
					nv := s.fresh(bd, path)
					if nv != nil {
						cur.Fields = append(cur.Fields, tree.Field{Key: seg, Value: nv})
					}
					return
				}
				m := &tree.Value{Kind: tree.Map, Src: bd.src}
				cur.Fields = append(cur.Fields, tree.Field{Key: seg, Value: m})
				cur = m
				continue
			}
			if last {
				if cur.Fields[idx].Value.Kind == tree.Map {
					s.coercionProblem(bd, path, errMap)
					return
				}
				cur.Fields[idx].Value = s.bound(cur.Fields[idx].Value, bd, path)
				return
			}
			cur = cur.Fields[idx].Value
		case tree.Array:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(cur.Items) {
				s.problem(RuleBinding, joinPath(path), diag.Pos{}, "%s: %s has no item %s", bd.name, joinPath(path[:i]), seg)
				return
			}
			if last {
				cur.Items[n] = s.bound(cur.Items[n], bd, path)
				return
			}
			cur = cur.Items[n]
		default:
			s.problem(RuleBinding, joinPath(path), diag.Pos{}, "%s: %s is a %s, not a map", bd.name, joinPath(path[:i]), cur.Kind)
			return
		}
	}
}

var errMap = mapError{}

type mapError struct{}

func (mapError) Error() string { return "is a map of keys; set its keys one by one" }

// coerceBinding converts a bound text. Text from a dotenv file that holds
// references stays a string here: interpolation expands it later and then
// types it like any single reference.
func (s *session) coerceBinding(bd binding, kind, elem tree.Kind) (*tree.Value, error) {
	if bd.src.Kind == tree.SourceFile && interp.HasRefs(bd.text) {
		return &tree.Value{Kind: tree.String, Str: bd.text}, nil
	}
	return coerce(bd.text, kind, elem)
}

// fresh builds the value of a key that no layer set, typed by any hint.
func (s *session) fresh(bd binding, path []string) *tree.Value {
	kind, elem := tree.String, tree.String
	probe := &tree.Value{}
	if k, e, ok := s.hint(probe, path); ok {
		kind, elem = k, e
	}
	return s.coerced(bd, path, kind, elem)
}

// applyDotenv merges a dotenv layer: each NAME maps like an environment
// variable (explicit binding, else PREFIX_A__B) onto existing keys matched
// case-insensitively, and creates keys that do not exist yet.
func (s *session) applyDotenv(root *tree.Value, at string, entries []dotenv.Entry, record bool) {
	envCfg := s.r.ws.Config.Env
	var idx keyIndex
	for _, e := range entries {
		bd := binding{name: e.Name, text: e.Value, src: tree.Source{Kind: tree.SourceFile, Name: e.ValuePos.File, Line: e.ValuePos.Line, Column: e.ValuePos.Column}}
		var path []string
		for _, b := range envCfg.Bind {
			if b.Var == e.Name && at == "" {
				path = strings.Split(b.Path, ".")
			}
		}
		if path == nil {
			name := e.Name
			if envCfg.Prefix != "" {
				name = strings.TrimPrefix(name, envCfg.Prefix+"_")
			}
			path = idx.matchPath(root, strings.Split(name, "__"))
		}
		if !record {
			saved := len(s.res.Problems)
			s.setPath(root, path, bd, true)
			s.res.Problems = s.res.Problems[:saved]
			continue
		}
		s.setPath(root, path, bd, true)
	}
}

// keyIndex finds a map's key by its variable-name segment in constant
// time: a dotenv layer of thousands of names would otherwise scan every
// key for every name. Each map is indexed when first visited; keys added
// later by the same layer are created from a segment in lower case, so a
// name that misses the index gets exactly the key it would have found.
type keyIndex map[*tree.Value]map[string]int

// matchPath maps variable-name segments onto existing keys, ignoring case and
// dashes; segments with no matching key become lower-case keys.
func (idx *keyIndex) matchPath(root *tree.Value, segs []string) []string {
	if *idx == nil {
		*idx = keyIndex{}
	}
	out := make([]string, len(segs))
	cur := root
	for i, seg := range segs {
		out[i] = strings.ToLower(seg)
		if cur == nil || cur.Kind != tree.Map {
			cur = nil
			continue
		}
		keys, ok := (*idx)[cur]
		if !ok {
			keys = make(map[string]int, len(cur.Fields))
			for j, f := range cur.Fields {
				if b, ok := envSegment(f.Key); ok {
					if _, dup := keys[string(b)]; !dup {
						keys[string(b)] = j // the first key wins, as a scan would
					}
				}
			}
			(*idx)[cur] = keys
		}
		var next *tree.Value
		if j, ok := keys[strings.ToUpper(seg)]; ok && j < len(cur.Fields) {
			out[i], next = cur.Fields[j].Key, cur.Fields[j].Value
		}
		cur = next
	}
	return out
}

// PrefixNames calls fn for every variable the prefix rule would look up in
// root — PREFIX_SERVER__PORT for server.port, PREFIX_HOSTS and
// PREFIX_HOSTS__0 for a list and its items — with the dotted key it sets
// and the value there now. Maps are not bound whole, so they get no name;
// keys with characters a variable name cannot hold are skipped.
func PrefixNames(prefix string, root *tree.Value, fn func(name, path string, v *tree.Value)) {
	if prefix == "" || root == nil {
		return
	}
	var walk func(v *tree.Value, name []byte, path []string)
	walk = func(v *tree.Value, name []byte, path []string) {
		switch v.Kind {
		case tree.Map:
			for _, f := range v.Fields {
				n := name
				if len(path) > 0 {
					n = append(n, '_', '_')
				}
				n, ok := appendEnvSegment(n, f.Key)
				if !ok {
					continue
				}
				p := append(path[:len(path):len(path)], f.Key)
				if f.Value.Kind != tree.Map {
					fn(string(n), joinPath(p), f.Value)
				}
				if f.Value.Kind == tree.Map || f.Value.Kind == tree.Array {
					walk(f.Value, n, p)
				}
			}
		case tree.Array:
			for i, it := range v.Items {
				n := strconv.AppendInt(append(name[:len(name):len(name)], '_', '_'), int64(i), 10)
				p := append(path[:len(path):len(path)], strconv.Itoa(i))
				if it.Kind != tree.Map {
					fn(string(n), joinPath(p), it)
				}
				if it.Kind == tree.Map || it.Kind == tree.Array {
					walk(it, n, p)
				}
			}
		}
	}
	walk(root, append([]byte(prefix), '_'), nil)
}
