// Package render writes resolved configs in the formats deploys consume:
// JSON, YAML, dotenv, shell, Java properties and Kubernetes ConfigMap (plus a
// Secret when revealing),
// redacting sensitive and secret values unless told to reveal them.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/dotenv"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/tree"
)

// MaxOutput bounds what Write and Flatten produce, in bytes. A resolved tree
// is at most 64 MiB (resolve.MaxTreeBytes); rendering adds quotes, escapes,
// indentation and, in the flat formats, each leaf's whole path, which
// typically doubles it. What would go beyond is refused as it is written,
// before it costs more memory: deep paths with many leaves could otherwise
// multiply a small tree into gigabytes.
const MaxOutput = 128 << 20

// maxOutput is MaxOutput, lowered by tests.
var maxOutput = MaxOutput

// ErrTooLarge is the cause of the error Write and Flatten return for output
// beyond MaxOutput; the error's kind is errs.Invalid (the workspace's
// content, not the request, is at fault). Test for it with errors.Is.
var ErrTooLarge = errors.New("output too large")

// sized gives a bare ErrTooLarge its message.
func sized(err error, format string, o Options) error {
	if err == ErrTooLarge {
		return tooLarge(format, o)
	}
	return err
}

func tooLarge(format string, o Options) error {
	what := "the config"
	if o.Name != "" {
		what = o.Name
	}
	return &errs.Error{Kind: errs.Invalid, Cause: ErrTooLarge,
		Message: fmt.Sprintf("rendering %s as %s: more than %d MiB", what, format, maxOutput>>20)}
}

// Redacted replaces hidden values in every output.
const Redacted = "<redacted>"

// Formats lists the names Write accepts.
var Formats = []string{"json", "yaml", "dotenv", "shell", "k8s", "properties"}

// Options control redaction and naming.
type Options struct {
	// Reveal prints sensitive and secret values as they are.
	Reveal bool
	// Sensitive reports whether a dotted key path is sensitive.
	Sensitive func(path string) bool
	// Name is used for Kubernetes object names.
	Name string
}

// Hidden reports whether the leaf v at path must be redacted.
func (o Options) Hidden(path string, v *tree.Value) bool {
	if o.Reveal {
		return false
	}
	return v.Secret || (o.Sensitive != nil && o.Sensitive(path))
}

// Write renders root in format to w. Output beyond MaxOutput is an error
// (see ErrTooLarge) and nothing is written.
func Write(w io.Writer, format string, root *tree.Value, o Options) error {
	var b bytes.Buffer
	switch format {
	case "json":
		writeJSON(&b, root, "", "", o)
		b.WriteByte('\n')
	case "yaml":
		if err := marshalYAML(&b, toYAML(root, "", o)); err != nil {
			return sized(err, format, o)
		}
	case "dotenv", "shell":
		vars, err := flatten(root, o, format)
		if err != nil {
			return err
		}
		for _, kv := range vars {
			if format == "shell" {
				b.WriteString("export " + kv.Name + "=" + shellQuote(kv.Value) + "\n")
			} else {
				b.WriteString(kv.Name + "=" + dotenv.Quote(kv.Value) + "\n")
			}
		}
	case "properties":
		writeProperties(&b, root, "", o)
	case "k8s":
		if err := writeK8s(&b, root, o); err != nil {
			return sized(err, format, o)
		}
	default:
		return fmt.Errorf("unknown format %q (use %s)", format, strings.Join(Formats, ", "))
	}
	if b.Len() > maxOutput {
		return tooLarge(format, o)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func childPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// JSON encodes one value (with redaction) as compact JSON; a value beyond
// MaxOutput becomes a JSON string saying so.
func JSON(v *tree.Value, path string, o Options) string {
	var b, c bytes.Buffer
	writeJSON(&b, v, "", path, o)
	if b.Len() > maxOutput {
		return fmt.Sprintf(`"<more than %d MiB>"`, maxOutput>>20)
	}
	if v.Kind != tree.Map && v.Kind != tree.Array {
		return b.String()
	}
	if err := json.Compact(&c, b.Bytes()); err != nil {
		return b.String()
	}
	return c.String()
}

// writeJSON stops writing once b holds more than maxOutput bytes; the
// caller checks.
func writeJSON(b *bytes.Buffer, v *tree.Value, indent, path string, o Options) {
	if b.Len() > maxOutput {
		return
	}
	if v.Kind != tree.Map && o.Hidden(path, v) {
		writeJSONString(b, Redacted)
		return
	}
	switch v.Kind {
	case tree.Map:
		if len(v.Fields) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, f := range v.Fields {
			b.WriteString(indent + "  ")
			writeJSONString(b, f.Key)
			b.WriteString(": ")
			writeJSON(b, f.Value, indent+"  ", childPath(path, f.Key), o)
			if i < len(v.Fields)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case tree.Array:
		if len(v.Items) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, it := range v.Items {
			b.WriteString(indent + "  ")
			writeJSON(b, it, indent+"  ", childPath(path, strconv.Itoa(i)), o)
			if i < len(v.Items)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	case tree.String:
		writeJSONString(b, v.Str)
	case tree.Int:
		b.WriteString(strconv.FormatInt(v.Int, 10))
	case tree.Uint:
		b.WriteString(strconv.FormatUint(v.Uint, 10))
	case tree.Float:
		if math.IsInf(v.Float, 0) || math.IsNaN(v.Float) {
			writeJSONString(b, v.Scalar())
			return
		}
		b.WriteString(strconv.FormatFloat(v.Float, 'g', -1, 64))
	case tree.Bool:
		b.WriteString(strconv.FormatBool(v.Bool))
	default:
		b.WriteString("null")
	}
}

const hexDigits = "0123456789abcdef"

func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xF])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else if r == '\u2028' || r == '\u2029' {
			fmt.Fprintf(b, `\u%04x`, r)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

func toYAML(v *tree.Value, path string, o Options) *yaml.Node {
	if v.Kind != tree.Map && o.Hidden(path, v) {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Redacted}
	}
	switch v.Kind {
	case tree.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range v.Fields {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: f.Key},
				toYAML(f.Value, childPath(path, f.Key), o))
		}
		return n
	case tree.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i, it := range v.Items {
			n.Content = append(n.Content, toYAML(it, childPath(path, strconv.Itoa(i)), o))
		}
		return n
	case tree.String:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.Str}
	case tree.Int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int, 10)}
	case tree.Uint:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v.Uint, 10)}
	case tree.Float:
		s := strconv.FormatFloat(v.Float, 'g', -1, 64)
		switch {
		case math.IsInf(v.Float, 1):
			s = ".inf"
		case math.IsInf(v.Float, -1):
			s = "-.inf"
		case math.IsNaN(v.Float):
			s = ".nan"
		case !strings.ContainsAny(s, ".eE"):
			s += ".0"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
	case tree.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}

// marshalYAML encodes n into b. The encoder writes as it goes; past
// maxOutput the writer refuses, which stops it.
func marshalYAML(b *bytes.Buffer, n *yaml.Node) error {
	w := &capped{b: b}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	err := enc.Encode(n)
	if err == nil {
		err = enc.Close()
	}
	if w.over {
		return ErrTooLarge
	}
	return err
}

// capped is a writer into b that fails once b would exceed maxOutput.
type capped struct {
	b    *bytes.Buffer
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if c.b.Len()+len(p) > maxOutput {
		c.over = true
		return 0, ErrTooLarge
	}
	return c.b.Write(p)
}

// Var is one flattened variable.
type Var struct {
	Name  string
	Value string
	Path  string
	// Hidden is set when Value was redacted (or would be, without Reveal).
	Hidden bool
}

// Flatten names every leaf Spring-style (server.port → SERVER_PORT,
// security.jwtSecret → SECURITY_JWTSECRET): keys upper-cased, '-' dropped,
// joined with '_'. Arrays of scalars become comma lists; arrays holding maps
// or arrays are indexed (REDIS_NODES_0_HOST). Two keys with one name are an
// error naming both. Names and values beyond MaxOutput bytes in all are an
// error (see ErrTooLarge).
func Flatten(root *tree.Value, o Options) ([]Var, error) {
	return flatten(root, o, "environment variables")
}

func flatten(root *tree.Value, o Options, format string) ([]Var, error) {
	var out []Var
	var srcs []tree.Source // where each var's value was written, for errors
	size := 0              // bytes of names and values so far
	var walk func(v *tree.Value, name, path string)
	walk = func(v *tree.Value, name, path string) {
		if size > maxOutput {
			return
		}
		switch {
		case v.Kind == tree.Map:
			for _, f := range v.Fields {
				walk(f.Value, joinName(name, flatKey(f.Key)), childPath(path, f.Key))
			}
			return
		case v.Kind == tree.Array && !scalarItems(v):
			for i, it := range v.Items {
				walk(it, joinName(name, strconv.Itoa(i)), childPath(path, strconv.Itoa(i)))
			}
			return
		}
		hidden := v.Secret || (o.Sensitive != nil && o.Sensitive(path))
		val := v.Scalar()
		if hidden && !o.Reveal {
			val = Redacted
		}
		size += len(name) + len(val) + 2
		out = append(out, Var{Name: name, Value: val, Path: path, Hidden: hidden})
		src := v.Src
		if v.Via != nil {
			src = *v.Via
		}
		srcs = append(srcs, src)
	}
	walk(root, "", "")
	if size > maxOutput {
		return nil, tooLarge(format, o)
	}
	byName := map[string]string{}
	var dups diag.List
	for i, kv := range out {
		if prev, ok := byName[kv.Name]; ok {
			// Placed at the second key when it was written in a file.
			var pos diag.Pos
			if s := srcs[i]; s.Kind == tree.SourceFile || s.Kind == tree.SourceDefault {
				pos = s.Pos()
			}
			dups = append(dups, diag.Errorf(pos, "cannot flatten: %s and %s both flatten to %s; rename one of the keys", prev, kv.Path, kv.Name))
			continue
		}
		byName[kv.Name] = kv.Path
	}
	if len(dups) > 0 {
		return nil, dups
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func scalarItems(v *tree.Value) bool {
	for _, it := range v.Items {
		if it.Kind == tree.Map || it.Kind == tree.Array {
			return false
		}
	}
	return true
}

func joinName(prefix, seg string) string {
	if prefix == "" {
		return seg
	}
	return prefix + "_" + seg
}

func flatKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteByte(c - ('a' - 'A'))
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b.WriteByte(c)
		case c == '-':
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeProperties(b *bytes.Buffer, v *tree.Value, path string, o Options) {
	if b.Len() > maxOutput {
		return // Write reports it
	}
	switch v.Kind {
	case tree.Map:
		for _, f := range v.Fields {
			writeProperties(b, f.Value, childPath(path, f.Key), o)
		}
		return
	case tree.Array:
		for i, it := range v.Items {
			writeProperties(b, it, path+"["+strconv.Itoa(i)+"]", o)
		}
		return
	}
	val := v.Scalar()
	if o.Hidden(path, v) {
		val = Redacted
	}
	b.WriteString(propertiesEscape(path, true) + "=" + propertiesEscape(val, false) + "\n")
}

// propertiesEscape follows java.util.Properties: \ and line breaks always,
// separators in keys, leading spaces in values, non-ASCII as \uXXXX.
func propertiesEscape(s string, key bool) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case key && (r == '=' || r == ':' || r == ' '):
			b.WriteByte('\\')
			b.WriteRune(r)
		case (r == '#' || r == '!') && i == 0:
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == ' ' && i == 0:
			b.WriteString(`\ `)
		case r > 0x7e:
			if r > 0xffff {
				for _, u := range utf16Pair(r) {
					fmt.Fprintf(&b, `\u%04x`, u)
				}
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func utf16Pair(r rune) [2]rune {
	r -= 0x10000
	return [2]rune{0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff}
}

// writeK8s prints a ConfigMap with the plain values and, with Reveal, a
// Secret with the sensitive and secret ones, both keyed by flattened names
// for envFrom. Without Reveal the Secret is left out rather than filled
// with "<redacted>": `kubectl apply` of a placeholder Secret would
// overwrite the real one and start pods with the text "<redacted>" as
// their password. WithheldK8s names what was left out.
func writeK8s(b *bytes.Buffer, root *tree.Value, o Options) error {
	vars, err := flatten(root, o, "k8s")
	if err != nil {
		return err
	}
	name := k8sName(o.Name)
	cm := &yaml.Node{Kind: yaml.MappingNode}
	sec := &yaml.Node{Kind: yaml.MappingNode}
	for _, kv := range vars {
		target := cm
		if kv.Hidden {
			target = sec
		}
		target.Content = append(target.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv.Name},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv.Value, Style: yaml.DoubleQuotedStyle})
	}
	doc := func(kind, dataKey string, data *yaml.Node) *yaml.Node {
		meta := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "name"}, {Kind: yaml.ScalarNode, Value: name},
		}}
		n := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "apiVersion"}, {Kind: yaml.ScalarNode, Value: "v1"},
			{Kind: yaml.ScalarNode, Value: "kind"}, {Kind: yaml.ScalarNode, Value: kind},
			{Kind: yaml.ScalarNode, Value: "metadata"}, meta,
		}}
		if kind == "Secret" {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "type"}, &yaml.Node{Kind: yaml.ScalarNode, Value: "Opaque"})
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: dataKey}, data)
		return n
	}
	if err := marshalYAML(b, doc("ConfigMap", "data", cm)); err != nil {
		return err
	}
	if !o.Reveal {
		return nil
	}
	b.WriteString("---\n")
	return marshalYAML(b, doc("Secret", "stringData", sec))
}

// K8sWithheld lists the variables a k8s rendering without Reveal leaves
// out with its Secret, and the Secret's name: the note the CLI prints.
func K8sWithheld(root *tree.Value, o Options) (names []string, secret string) {
	if o.Reveal {
		return nil, ""
	}
	vars, err := Flatten(root, o)
	if err != nil {
		return nil, ""
	}
	for _, kv := range vars {
		if kv.Hidden {
			names = append(names, kv.Name)
		}
	}
	return names, k8sName(o.Name)
}

// k8sName makes a DNS-1123 name out of free text ("My App!" and
// "development" give my-app-development, not my-app--development).
func k8sName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.':
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > 253 {
		out = strings.TrimRight(out[:253], "-.")
	}
	if out == "" {
		out = "config"
	}
	return out
}
