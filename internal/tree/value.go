// Package tree is envplane's configuration data model: an ordered tree of values
// in which every value remembers where it came from (a file position, an
// environment variable, a secret or a schema default) and which lower values it
// replaced. It also parses YAML and JSON-with-comments files into such trees.
package tree

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/diag"
)

// Kind is the type of a Value.
type Kind uint8

const (
	Null Kind = iota
	Bool
	Int
	Float
	String
	Array
	Map
	// Uint is an integer above math.MaxInt64 (up to math.MaxUint64), kept
	// exactly in Value.Uint rather than rounded to a float. Smaller
	// integers are always Int, so one number has one representation.
	Uint
)

var kindNames = [...]string{"null", "boolean", "integer", "number", "string", "array", "map", "integer"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsLeaf reports whether values of kind k are compared and replaced whole.
// Arrays are leaves: a higher layer replaces an array, it never merges into it.
func (k Kind) IsLeaf() bool { return k != Map }

// SourceKind says what kind of layer a value came from. The names are part of
// the `explain --format json` contract.
type SourceKind uint8

const (
	SourceFile SourceKind = iota
	SourceDefault
	SourceSecret
	SourceEnv
)

var sourceKindNames = [...]string{"file", "default", "secret", "env"}

func (k SourceKind) String() string { return sourceKindNames[k] }

// Source is the provenance of a value: the layer it came from and, for files,
// the position of the value in that file.
type Source struct {
	Kind SourceKind
	// Version is a server-side secret's version, when known (an int32
	// beside Kind, where it costs no space).
	Version int32
	Name    string // file path relative to the workspace, variable or secret name
	Line    int
	Column  int
	// File is the workspace secrets file a secret came from; "" for a
	// server-side secret and for every other kind.
	File string
}

// Pos returns the source as a diagnostic position.
func (s Source) Pos() diag.Pos { return diag.Pos{File: s.Name, Line: s.Line, Column: s.Column} }

func (s Source) String() string {
	switch s.Kind {
	case SourceFile, SourceDefault:
		return s.Pos().String()
	case SourceSecret:
		if s.File != "" {
			return "secret:" + s.Name + " (" + s.File + ")"
		}
		if s.Version > 0 {
			return "secret:" + s.Name + "@v" + strconv.Itoa(int(s.Version))
		}
		return "secret:" + s.Name
	default:
		return "env:" + s.Name
	}
}

// Field is one key of a map.
type Field struct {
	Key   string
	Value *Value
}

// Value is one node of a configuration tree.
type Value struct {
	Kind   Kind
	Bool   bool
	Int    int64
	Uint   uint64 // Uint: above math.MaxInt64
	Float  float64
	Str    string
	Items  []*Value // Array
	Fields []Field  // Map, in the order keys were first seen

	Src Source
	// Overridden lists the values this one replaced, highest precedence first.
	Overridden []*Value
	// Template is the original text of a string that was interpolated.
	Template string
	// Via is where the reference was written when the value came from
	// interpolating a single reference out of a file.
	Via *Source
	// Secret marks values that came from, or were built from, a secret.
	Secret bool
	// Sealed marks a value built from a secret whose value is not known
	// here (its name is); it must not be compared or typed.
	Sealed bool
	// Quoted marks strings written in quotes, so columns inside them shift by one.
	Quoted bool
	// Unresolved marks a string whose references could not all be resolved;
	// Str then holds the template text.
	Unresolved bool
}

// Get returns the value of key in a map, or nil.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Map {
		return nil
	}
	for i := range v.Fields {
		if v.Fields[i].Key == key {
			return v.Fields[i].Value
		}
	}
	return nil
}

// Index returns the position of key in a map's fields, or -1.
func (v *Value) Index(key string) int {
	for i := range v.Fields {
		if v.Fields[i].Key == key {
			return i
		}
	}
	return -1
}

// Set puts val under key, keeping the key's place when it exists.
func (v *Value) Set(key string, val *Value) {
	if i := v.Index(key); i >= 0 {
		v.Fields[i].Value = val
		return
	}
	v.Fields = append(v.Fields, Field{Key: key, Value: val})
}

// Delete removes key from a map.
func (v *Value) Delete(key string) {
	if i := v.Index(key); i >= 0 {
		v.Fields = append(v.Fields[:i], v.Fields[i+1:]...)
	}
}

// keyIndex answers "is this key already in the map?" while a map is being
// built. Small maps scan their fields; large ones switch to a set, so a
// hostile file with many keys cannot make parsing quadratic.
type keyIndex struct{ set map[string]struct{} }

const keyIndexThreshold = 32

// seen reports whether key is among v's fields; when it is not, the caller
// appends it, so it is remembered.
func (ki *keyIndex) seen(v *Value, key string) bool {
	if ki.set == nil {
		if len(v.Fields) < keyIndexThreshold {
			return v.Index(key) >= 0
		}
		ki.set = make(map[string]struct{}, 2*len(v.Fields))
		for _, f := range v.Fields {
			ki.set[f.Key] = struct{}{}
		}
	}
	if _, ok := ki.set[key]; ok {
		return true
	}
	ki.set[key] = struct{}{}
	return false
}

// Lookup follows a path of keys (and decimal array indexes) from v.
func (v *Value) Lookup(path []string) *Value {
	cur := v
	for _, seg := range path {
		switch {
		case cur == nil:
			return nil
		case cur.Kind == Map:
			cur = cur.Get(seg)
		case cur.Kind == Array:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(cur.Items) {
				return nil
			}
			cur = cur.Items[i]
		default:
			return nil
		}
	}
	return cur
}

// Interface converts the tree to plain Go values (map[string]any, []any,
// string, int64, uint64, float64, bool, nil) for encoders and CEL. redact, when non-nil,
// is asked for each leaf and its path and may replace the value.
func (v *Value) Interface() any {
	switch v.Kind {
	case Bool:
		return v.Bool
	case Int:
		return v.Int
	case Uint:
		return v.Uint
	case Float:
		return v.Float
	case String:
		return v.Str
	case Array:
		out := make([]any, len(v.Items))
		for i, it := range v.Items {
			out[i] = it.Interface()
		}
		return out
	case Map:
		out := make(map[string]any, len(v.Fields))
		for _, f := range v.Fields {
			out[f.Key] = f.Value.Interface()
		}
		return out
	}
	return nil
}

// Equal reports whether a and b hold the same data, ignoring provenance.
func Equal(a, b *Value) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case Null:
		return true
	case Bool:
		return a.Bool == b.Bool
	case Int:
		return a.Int == b.Int
	case Uint:
		return a.Uint == b.Uint
	case Float:
		return a.Float == b.Float
	case String:
		return a.Str == b.Str
	case Array:
		if len(a.Items) != len(b.Items) {
			return false
		}
		for i := range a.Items {
			if !Equal(a.Items[i], b.Items[i]) {
				return false
			}
		}
		return true
	case Map:
		if len(a.Fields) != len(b.Fields) {
			return false
		}
		for _, f := range a.Fields {
			if !Equal(f.Value, b.Get(f.Key)) {
				return false
			}
		}
		return true
	}
	return false
}

// Scalar formats a leaf the way environment variables and dotenv files carry
// it: arrays as comma lists, null as empty.
func (v *Value) Scalar() string {
	switch v.Kind {
	case Bool:
		return strconv.FormatBool(v.Bool)
	case Int:
		return strconv.FormatInt(v.Int, 10)
	case Uint:
		return strconv.FormatUint(v.Uint, 10)
	case Float:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case String:
		return v.Str
	case Array:
		var b []byte
		for i, it := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, it.Scalar()...)
		}
		return string(b)
	}
	return ""
}

// Walk calls fn for every leaf under v with its dotted path. Arrays are leaves.
func Walk(v *Value, fn func(path string, leaf *Value)) {
	walk(v, "", fn)
}

// WalkDeep is Walk that also descends into arrays holding maps or arrays,
// naming their items by index (alerts.channels.0.webhook).
func WalkDeep(v *Value, fn func(path string, leaf *Value)) {
	walkDeep(v, "", fn)
}

func walkDeep(v *Value, prefix string, fn func(string, *Value)) {
	switch {
	case v.Kind == Map:
		for _, f := range v.Fields {
			walkDeep(f.Value, join(prefix, f.Key), fn)
		}
	case v.Kind == Array && !scalarItems(v):
		for i, it := range v.Items {
			walkDeep(it, join(prefix, strconv.Itoa(i)), fn)
		}
	default:
		fn(prefix, v)
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func scalarItems(v *Value) bool {
	for _, it := range v.Items {
		if it.Kind == Map || it.Kind == Array {
			return false
		}
	}
	return true
}

func walk(v *Value, prefix string, fn func(string, *Value)) {
	if v.Kind != Map {
		fn(prefix, v)
		return
	}
	for _, f := range v.Fields {
		p := f.Key
		if prefix != "" {
			p = prefix + "." + f.Key
		}
		walk(f.Value, p, fn)
	}
}

// SplitKey splits a dotted key for Lookup, accepting list indexes written
// either way: a.b.0.c or a.b[0].c.
func SplitKey(k string) []string {
	if k == "" {
		return nil
	}
	k = strings.NewReplacer("[", ".", "]", "").Replace(k)
	return strings.Split(k, ".")
}

// WrittenAt is where a value was written, for messages: the reference in a
// file for a value that came through ${…}, else its source (file position,
// schema default, env:NAME, secret:NAME).
func (v *Value) WrittenAt() diag.Pos {
	if v.Via != nil {
		return v.Via.Pos()
	}
	switch v.Src.Kind {
	case SourceFile, SourceDefault:
		return v.Src.Pos()
	}
	return diag.Pos{File: v.Src.String()}
}

// AppendJSON appends v to dst as compact JSON, map keys in their order.
// NaN and the infinities, which JSON cannot hold, are written as null.
func AppendJSON(dst []byte, v *Value) []byte {
	switch v.Kind {
	case Map:
		dst = append(dst, '{')
		for i, f := range v.Fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, f.Key)
			dst = append(dst, ':')
			dst = AppendJSON(dst, f.Value)
		}
		return append(dst, '}')
	case Array:
		dst = append(dst, '[')
		for i, it := range v.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSON(dst, it)
		}
		return append(dst, ']')
	case String:
		return appendJSONString(dst, v.Str)
	case Float:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
	case Bool, Int, Uint:
		return append(dst, v.Scalar()...)
	}
	return append(dst, "null"...)
}

// appendJSONString appends s as a JSON string (valid UTF-8 is kept as it
// is; encoding/json's quoting, which Go's %q is not).
func appendJSONString(dst []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(dst, q...)
}
