// Package schema loads the optional JSON Schema (2020-12) of a workspace and
// serves three uses of it: the defaults it declares (the lowest layer of every
// resolved config), the type it gives a key (so "${PORT}" becomes a number),
// and validation of resolved configs with each violation placed at the value
// that causes it.
package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// Schema is a compiled workspace schema.
type Schema struct {
	File     string
	doc      *tree.Value // the schema document with positions
	defaults *tree.Value
	// compiled is the compiled schema, compiled on first use when the
	// cache says it compiles (LoadCached); trusted when it is compiled
	// under trustedURL.
	compiled func() (*jsonschema.Schema, error)
	trusted  bool
}

// Load reads and compiles the schema at file in fsys. References ($ref and
// the like) may name other files of fsys, relative to the file that holds
// them, and the JSON Schema metaschemas; any other reference is an error at
// its place, and nothing outside fsys is opened: neither the disk nor the
// network of the process that compiles it.
func Load(fsys fs.FS, file string, at diag.Pos) (*Schema, error) {
	return LoadCached(fsys, file, at, nil)
}

// Cache remembers, between processes of one binary, the schemas it
// compiled without error (internal/usercache keys its entries by binary).
type Cache interface {
	Get(key string) ([]byte, bool)
	Put(key string, value []byte)
}

// LoadCached is Load that does less for a schema this binary compiled
// without error before, as cache says: the schema files are parsed (for
// Defaults and KindAt) and their digests checked, and the compile waits
// for the first Validate, which a caller that never validates (explain,
// diff) never pays. That compile then skips checking the files against the
// JSON Schema metaschema: the check would pass again, and it is about half
// of compiling a schema (docs/PERFORMANCE.md §8).
//
// The cache holds digests only: the key names file and the SHA-256 of its
// bytes, the value lists every file the compile read (file and the files
// it references) with the SHA-256 of each, which must all match now, and
// be what the deferred compile reads. Otherwise — a miss, a changed
// referenced file, any error — the schema is compiled with every check,
// exactly as Load does, so the problems reported never depend on the
// cache. A nil cache is Load.
func LoadCached(fsys fs.FS, file string, at diag.Pos, cache Cache) (*Schema, error) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, diag.List{diag.Errorf(at, "config.schema: cannot read %s: %v", file, unwrapPathError(err))}
	}
	if cache == nil {
		s, _, err := compile(fsys, file, data, false)
		return s, err
	}
	sum := sha256.Sum256(data)
	key := "schema\x00" + file + "\x00" + hex.EncodeToString(sum[:])
	if read, ok := cache.Get(key); ok {
		if s := known(fsys, file, data, string(read)); s != nil {
			return s, nil
		}
	}
	s, read, err := compile(fsys, file, data, false)
	if err == nil {
		cache.Put(key, []byte(read))
	}
	return s, err
}

// known is the schema in file for LoadCached when every file in read (what
// a compile without error read before) is unchanged; nil otherwise.
func known(fsys fs.FS, file string, data []byte, read string) *Schema {
	var sums map[string]string
	if json.Unmarshal([]byte(read), &sums) != nil || len(sums) > maxFiles+1 || sums[file] != digest(data) {
		return nil
	}
	for name, sum := range sums {
		if name == file {
			continue
		}
		if b, err := fs.ReadFile(fsys, name); err != nil || digest(b) != sum {
			return nil
		}
	}
	refs := map[string]diag.Pos{}
	doc, problems := parseTree(file, data, refs)
	if len(problems) > 0 {
		return nil
	}
	s := newSchema(file, doc)
	s.trusted = true
	s.compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
		if t, got, err := compileTree(fsys, file, data, doc, refs, true); err == nil && got == read {
			return t.compiled()
		}
		// The files changed since: compile as Load does. An error is
		// reported by Validate; the process would not get this far
		// without the cache.
		full, _, err := compile(fsys, file, data, false)
		if err != nil {
			return nil, err
		}
		return full.compiled()
	})
	return s
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func newSchema(file string, doc *tree.Value) *Schema {
	s := &Schema{File: file, doc: doc}
	s.defaults = defaultsOf(doc, 0)
	if s.defaults == nil {
		s.defaults = &tree.Value{Kind: tree.Map}
	}
	return s
}

// compile parses and compiles the schema file whose bytes are data, and
// returns it with the list of every file it read (fsLoader.readList).
//
// trusted compiles the workspace's files under trustedURL instead of
// baseURL. jsonschema/v6 does not check documents it loads from
// json-schema.org against the metaschema (they are the metaschemas), and
// that check is all the difference: every other step, reference and
// keyword is the same, and the problems found while validating configs
// are the same. Should a later jsonschema check those documents too, the
// trusted compile is only slower, never different; TestTrustedCompile
// says when that happens.
func compile(fsys fs.FS, file string, data []byte, trusted bool) (*Schema, string, error) {
	refs := map[string]diag.Pos{}
	doc, problems := parseTree(file, data, refs)
	if len(problems) > 0 {
		return nil, "", problems
	}
	return compileTree(fsys, file, data, doc, refs, trusted)
}

// compileTree is compile after parseTree(file, data, refs) returned doc.
func compileTree(fsys fs.FS, file string, data []byte, doc *tree.Value, refs map[string]diag.Pos, trusted bool) (*Schema, string, error) {
	base := baseURL
	if trusted {
		base = trustedURL
	}
	loader := &fsLoader{fsys: fsys, base: base, refs: refs, read: map[string]string{file: digest(data)}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(loader) // the only loader: no file:// or http(s):// ever
	url := base + file
	if err := c.AddResource(url, compilerDoc(doc)); err != nil {
		return nil, "", diag.List{compileError(file, err)}
	}
	compiled, err := c.Compile(url)
	if len(loader.problems) > 0 {
		return nil, "", loader.problems.Sort()
	}
	if err != nil {
		return nil, "", diag.List{compileError(file, err)}
	}
	s := newSchema(file, doc)
	s.trusted = trusted
	s.compiled = func() (*jsonschema.Schema, error) { return compiled, nil }
	return s, loader.readList(), nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// standardJSON re-encodes the parsed document as plain JSON.
func standardJSON(v *tree.Value) []byte { return tree.AppendJSON(nil, v) }

// compilerDoc is the parsed document as the compiler takes it: what
// jsonschema.UnmarshalJSON(standardJSON(v)) returns (maps, slices,
// json.Number, string, bool, nil), built without writing and reading the
// JSON text. Comments and trailing commas are allowed in schema files, as
// tree.ParseJSON allows them.
func compilerDoc(v *tree.Value) any {
	switch v.Kind {
	case tree.Map:
		m := make(map[string]any, len(v.Fields))
		for _, f := range v.Fields {
			if !utf8.ValidString(f.Key) {
				return roundTrip(v)
			}
			m[f.Key] = compilerDoc(f.Value)
		}
		return m
	case tree.Array:
		a := make([]any, len(v.Items))
		for i, it := range v.Items {
			a[i] = compilerDoc(it)
		}
		return a
	case tree.String:
		if !utf8.ValidString(v.Str) {
			return roundTrip(v) // encoding/json writes U+FFFD for each bad byte
		}
		return v.Str
	case tree.Bool:
		return v.Bool
	case tree.Int, tree.Uint, tree.Float:
		b := tree.AppendJSON(nil, v)
		if string(b) == "null" { // NaN, ±Inf
			return nil
		}
		return json.Number(b)
	case tree.Null:
		return nil
	}
	return roundTrip(v)
}

// roundTrip is compilerDoc the long way, for what it does not build itself.
func roundTrip(v *tree.Value) any {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(standardJSON(v)))
	if err != nil {
		return nil // AppendJSON writes valid JSON
	}
	return doc
}

// Defaults returns a fresh copy of the tree of `default` values declared
// under `properties`, each carrying the schema file position as provenance.
func (s *Schema) Defaults() *tree.Value {
	return clone(s.defaults)
}

func defaultsOf(node *tree.Value, depth int) *tree.Value {
	if node == nil || node.Kind != tree.Map || depth > 64 {
		return nil
	}
	props := node.Get("properties")
	if props == nil || props.Kind != tree.Map {
		return nil
	}
	var out *tree.Value
	for _, f := range props.Fields {
		var v *tree.Value
		if d := f.Value.Get("default"); d != nil {
			v = markDefault(clone(d))
		} else {
			v = defaultsOf(f.Value, depth+1)
		}
		if v == nil {
			continue
		}
		if out == nil {
			out = &tree.Value{Kind: tree.Map, Src: tree.Source{Kind: tree.SourceDefault, Name: node.Src.Name, Line: node.Src.Line, Column: node.Src.Column}}
		}
		out.Fields = append(out.Fields, tree.Field{Key: f.Key, Value: v})
	}
	return out
}

func markDefault(v *tree.Value) *tree.Value {
	v.Src.Kind = tree.SourceDefault
	for _, it := range v.Items {
		markDefault(it)
	}
	for _, f := range v.Fields {
		markDefault(f.Value)
	}
	return v
}

func clone(v *tree.Value) *tree.Value {
	if v == nil {
		return nil
	}
	c := *v
	if v.Items != nil {
		c.Items = make([]*tree.Value, len(v.Items))
		for i, it := range v.Items {
			c.Items[i] = clone(it)
		}
	}
	if v.Fields != nil {
		c.Fields = make([]tree.Field, len(v.Fields))
		for i, f := range v.Fields {
			c.Fields[i] = tree.Field{Key: f.Key, Value: clone(f.Value)}
		}
	}
	return &c
}

// KindAt returns the type the schema declares for the key at path, following
// properties and items. ok is false when the schema says nothing definite
// (no type, or several).
func (s *Schema) KindAt(path []string) (kind tree.Kind, elem tree.Kind, ok bool) {
	node := s.doc
	for _, seg := range path {
		if node == nil {
			return 0, 0, false
		}
		if props := node.Get("properties"); props != nil && props.Get(seg) != nil {
			node = props.Get(seg)
			continue
		}
		if items := node.Get("items"); items != nil && isIndex(seg) {
			node = items
			continue
		}
		return 0, 0, false
	}
	kind, ok = kindOf(node)
	if ok && kind == tree.Array {
		elem, _ = kindOf(node.Get("items"))
	}
	return kind, elem, ok
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func kindOf(node *tree.Value) (tree.Kind, bool) {
	t := node.Get("type")
	if t == nil {
		return 0, false
	}
	name := t.Str
	if t.Kind == tree.Array {
		// ["integer","null"] still says integer.
		var nonNull []string
		for _, it := range t.Items {
			if it.Str != "null" {
				nonNull = append(nonNull, it.Str)
			}
		}
		if len(nonNull) != 1 {
			return 0, false
		}
		name = nonNull[0]
	}
	switch name {
	case "string":
		return tree.String, true
	case "integer":
		return tree.Int, true
	case "number":
		return tree.Float, true
	case "boolean":
		return tree.Bool, true
	case "array":
		return tree.Array, true
	case "object":
		return tree.Map, true
	}
	return 0, false
}

// groupedNumber matches numbers the message printer wrote with digit
// grouping (70,000); config values are shown as they are written.
var groupedNumber = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\b\d{1,3}(?:,\d{3})+\b`) })

// Violation is one way a config breaks the schema.
type Violation struct {
	Path    string // dotted key path, "" for the root
	Message string
}

// Validate checks a resolved config and returns every violation, sorted by
// path. Values are described by the schema's messages, which the caller must
// not show for sensitive keys.
func (s *Schema) Validate(config *tree.Value) []Violation {
	compiled, err := s.compiled()
	if err != nil {
		return []Violation{{Message: err.Error()}}
	}
	err = compiled.Validate(config.Interface())
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []Violation{{Message: err.Error()}}
	}
	p := message.NewPrinter(language.Und)
	var out []Violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			msg := groupedNumber().ReplaceAllStringFunc(e.ErrorKind.LocalizedString(p), func(n string) string { return strings.ReplaceAll(n, ",", "") })
			if s.trusted { // the few messages naming a schema URL name it as Load's would
				msg = strings.ReplaceAll(msg, trustedURL, baseURL)
			}
			out = append(out, Violation{Path: strings.Join(e.InstanceLocation, "."), Message: msg})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
