package schema

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"path"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// A schema is a file of a workspace or release, so it may reference only
// files of the same workspace (relative $refs, # pointers) and the JSON
// Schema metaschemas the compiler embeds; never the disk or the network of
// whoever compiles it (DESIGN §8, Bounds). Two layers enforce this:
//
//   - checkRefs reads every $ref, $dynamicRef, $recursiveRef and $schema of
//     each schema file before compiling, and reports each one that points
//     elsewhere at its place, without opening anything;
//   - fsLoader is the compiler's only URL loader: it serves envplane:///PATH
//     from the workspace fs.FS and refuses every other URL, so a reference
//     checkRefs cannot foresee (one made absolute by an $id) is refused too.

const (
	// baseURL is the URL of the workspace root: a schema file F is
	// baseURL+F, so relative references resolve between workspace files.
	baseURL = "envplane:///"
	// trustedURL is baseURL for a compile that skips the metaschema check
	// of the workspace's files (LoadCached): the compiler checks no
	// document under json-schema.org.
	trustedURL = "https://json-schema.org/x-envplane-workspace/"
	// maxDepth bounds the nesting of a schema file, checked on the raw
	// bytes before any parser recurses into it; the same bound as config
	// layers in internal/tree.
	maxDepth = 200
	// maxFiles bounds the schema files one schema may pull in through $ref.
	maxFiles = 64
)

// refKeywords are the keywords whose string value is a URI reference that
// the compiler follows.
var refKeywords = map[string]bool{"$ref": true, "$dynamicRef": true, "$recursiveRef": true}

// dataKeywords hold instance data, not subschemas: a "$ref" key inside them
// is just data.
var dataKeywords = map[string]bool{"const": true, "enum": true, "default": true, "examples": true}

const sandboxHelp = `a schema may reference only schema files of the same workspace, by relative path (such as "common.json#/$defs/port"), and the JSON Schema metaschemas; it is not read`

// isMetaschema reports whether ref names a JSON Schema metaschema, which
// the compiler serves from its embedded copies.
func isMetaschema(ref string) bool {
	return strings.HasPrefix(ref, "https://json-schema.org/") || strings.HasPrefix(ref, "http://json-schema.org/")
}

// checkRefs reports every reference in the schema file `file` (parsed as
// doc) that leads outside the workspace, at its place. refs receives the
// workspace file each relative reference names, with the place of its
// first mention, so that a missing file can be reported where it is named.
func checkRefs(file string, doc *tree.Value, refs map[string]diag.Pos) diag.List {
	ids := map[string]bool{}
	collectIDs(doc, ids)
	var problems diag.List
	var walk func(v *tree.Value)
	walk = func(v *tree.Value) {
		switch v.Kind {
		case tree.Array:
			for _, it := range v.Items {
				walk(it)
			}
		case tree.Map:
			for _, f := range v.Fields {
				switch {
				case dataKeywords[f.Key]:
					continue
				case f.Key == "$schema" && f.Value.Kind == tree.String:
					if !isMetaschema(f.Value.Str) {
						problems = append(problems, diag.Errorf(f.Value.Src.Pos(),
							"$schema %q is not a JSON Schema metaschema (such as \"https://json-schema.org/draft/2020-12/schema\"); %s", short(f.Value.Str), sandboxHelp))
					}
				case refKeywords[f.Key] && f.Value.Kind == tree.String:
					if msg, target := checkRef(file, f.Value.Str, ids); msg != "" {
						problems = append(problems, diag.Errorf(f.Value.Src.Pos(), "%s %q %s; %s", f.Key, short(f.Value.Str), msg, sandboxHelp))
					} else if target != "" {
						if _, seen := refs[target]; !seen {
							refs[target] = f.Value.Src.Pos()
						}
					}
				default:
					walk(f.Value)
				}
			}
		}
	}
	walk(doc)
	return problems
}

// collectIDs gathers the $id values of a document: a reference to one of
// them stays inside the document.
func collectIDs(v *tree.Value, ids map[string]bool) {
	for _, it := range v.Items {
		collectIDs(it, ids)
	}
	for _, f := range v.Fields {
		if dataKeywords[f.Key] {
			continue
		}
		if f.Key == "$id" && f.Value.Kind == tree.String {
			id, _, _ := strings.Cut(f.Value.Str, "#")
			ids[id] = true
		}
		collectIDs(f.Value, ids)
	}
}

// checkRef says what is wrong with ref in file ("" when nothing) and, for a
// relative reference to another file, which workspace file it names.
func checkRef(file, ref string, ids map[string]bool) (problem, target string) {
	if strings.HasPrefix(ref, "#") {
		return "", ""
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "is not a valid URI reference", ""
	}
	base, _, _ := strings.Cut(ref, "#")
	switch {
	case u.Scheme != "" || u.Host != "" || strings.HasPrefix(ref, "//"):
		if isMetaschema(ref) || ids[base] {
			return "", ""
		}
		return "refers outside the workspace", ""
	case strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, `\`):
		return "is an absolute path", ""
	case u.Path == "":
		return "", ""
	}
	target = path.Join(path.Dir(file), u.Path)
	if target == ".." || strings.HasPrefix(target, "../") {
		return "leaves the workspace", ""
	}
	return "", target
}

// short keeps a quoted reference readable in a message.
func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// fsLoader loads referenced schema files from the workspace and nothing
// else. It records positioned problems, which Load reports in place of the
// compiler's less precise error.
type fsLoader struct {
	fsys     fs.FS
	base     string              // baseURL, or trustedURL
	refs     map[string]diag.Pos // workspace file -> where it is first referenced
	loaded   int
	problems diag.List
	read     map[string]string // file -> hex SHA-256 of what was read, for LoadCached
}

// readList is the files read with their digests, as JSON (names sorted).
func (l *fsLoader) readList() string {
	b, _ := json.Marshal(l.read)
	return string(b)
}

var errRefused = errors.New("refused: " + sandboxHelp)

// Load implements jsonschema.URLLoader.
func (l *fsLoader) Load(raw string) (any, error) {
	if l.base != baseURL { // trustedURL: the same files under another root
		rest, ok := strings.CutPrefix(raw, l.base)
		if !ok {
			return nil, errRefused
		}
		raw = baseURL + rest
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "envplane" || u.Host != "" {
		return nil, errRefused
	}
	file := strings.TrimPrefix(path.Clean(u.Path), "/")
	if !fs.ValidPath(file) || file == "." {
		return nil, errRefused
	}
	at, ok := l.refs[file]
	if !ok {
		at = diag.Pos{File: file}
	}
	if l.loaded++; l.loaded > maxFiles {
		l.problems = append(l.problems, diag.Errorf(at, "$ref %q: a schema may pull in at most %d files", file, maxFiles))
		return nil, errRefused
	}
	data, err := fs.ReadFile(l.fsys, file)
	if err != nil {
		l.problems = append(l.problems, diag.Errorf(at, "$ref: cannot read %s: %v", file, unwrapPathError(err)))
		return nil, errRefused
	}
	l.read[file] = digest(data)
	doc, problems := parseSchemaFile(file, data, l.refs)
	if len(problems) > 0 {
		l.problems = append(l.problems, problems...)
		return nil, errRefused
	}
	return doc, nil
}

// parseSchemaFile bounds, parses and checks one schema file and converts it
// to what the compiler takes. Comments and trailing commas are allowed.
func parseSchemaFile(file string, data []byte, refs map[string]diag.Pos) (any, diag.List) {
	tr, problems := parseTree(file, data, refs)
	if len(problems) > 0 {
		return nil, problems
	}
	return compilerDoc(tr), nil
}

func parseTree(file string, data []byte, refs map[string]diag.Pos) (*tree.Value, diag.List) {
	if line, col, deep := tooDeep(data, maxDepth); deep {
		return nil, diag.List{diag.Errorf(diag.Pos{File: file, Line: line, Column: col}, "nesting deeper than %d levels", maxDepth)}
	}
	doc, problems := tree.ParseJSON(file, data)
	if len(problems) > 0 {
		return nil, problems
	}
	if problems := checkRefs(file, doc, refs); len(problems) > 0 {
		return nil, problems
	}
	return doc, nil
}

// tooDeep reports the place of the first bracket that opens nesting level
// max+1 in JSON with comments (JWCC), skipping strings and comments. It
// recurses into nothing, so any input is safe to give it.
func tooDeep(data []byte, max int) (line, col int, deep bool) {
	depth := 0
	line, lineStart := 1, 0
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '\n':
			line, lineStart = line+1, i+1
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				switch data[i] {
				case '\\':
					i++
				case '\n': // invalid JSON; the parser reports it
					line, lineStart = line+1, i+1
				}
			}
		case '/':
			if i+1 >= len(data) {
				break
			}
			switch data[i+1] {
			case '/':
				for i < len(data) && data[i] != '\n' {
					i++
				}
				i-- // the newline is counted above
			case '*':
				for i += 2; i < len(data) && !(data[i] == '*' && i+1 < len(data) && data[i+1] == '/'); i++ {
					if data[i] == '\n' {
						line, lineStart = line+1, i+1
					}
				}
				i++
			}
		case '{', '[':
			if depth++; depth > max {
				return line, runeCol(data[lineStart:i]), true
			}
		case '}', ']':
			depth--
		}
	}
	return 0, 0, false
}

// runeCol is the 1-based column after prefix, counted in characters.
func runeCol(prefix []byte) int { return len([]rune(string(prefix))) + 1 }

// compileError turns a compiler error into a diagnostic at the schema file,
// with workspace URLs written as file names.
func compileError(file string, err error) diag.Diagnostic {
	msg := strings.ReplaceAll(err.Error(), baseURL, "")
	return diag.Errorf(diag.Pos{File: file, Line: 1, Column: 1}, "invalid schema: %s", msg)
}

var _ jsonschema.URLLoader = (*fsLoader)(nil)
