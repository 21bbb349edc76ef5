package secrets

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/tree"
)

// emit writes the document and the sops: block as SOPS's YAML store does:
// yaml.v3 with an indent of 4, each scalar encoded as SOPS encodes it, the
// metadata keys in alphabetical order.
func (o *Opened) emit() ([]byte, error) {
	if out, ok := o.emitFlat(); ok {
		return out, nil
	}
	return o.emitYAML()
}

// emitFlat writes what emitYAML writes for a flat file with SOPS's default
// rules, without yaml.v3, which takes tens of milliseconds for 500 secrets.
// TestEmitFlat and FuzzParse check the two agree.
func (o *Opened) emitFlat() ([]byte, bool) {
	if o.rules != (rules{unencryptedSuffix: defaultUnencryptedSuffix}) {
		return nil, false
	}
	size := 256
	for _, n := range o.doc {
		if n.leaf == nil || n.leaf.clear {
			return nil, false
		}
		size += len(n.key) + len(n.leaf.text) + 6
	}
	for _, r := range o.recipients {
		size += len(r) + len(o.wrapped[r]) + 160
	}
	var b bytes.Buffer
	b.Grow(size)
	for _, n := range o.doc {
		if yamlQuotes(n.key) {
			b.WriteString(`"` + n.key + `"`)
		} else {
			b.WriteString(n.key)
		}
		b.WriteString(": ")
		if n.leaf.text == "" {
			b.WriteString(`""`)
		} else {
			b.WriteString(n.leaf.text)
		}
		b.WriteByte('\n')
	}
	b.WriteString("sops:\n    age:\n")
	for _, r := range o.recipients {
		b.WriteString("        - enc: |\n")
		for line := range strings.SplitSeq(strings.TrimSuffix(o.wrapped[r], "\n"), "\n") {
			b.WriteString("            ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
		b.WriteString("          recipient: ")
		b.WriteString(r)
		b.WriteByte('\n')
	}
	b.WriteString("    lastmodified: \"" + o.lastModified.UTC().Format(time.RFC3339) + "\"\n")
	b.WriteString("    mac: " + o.mac.text + "\n")
	b.WriteString("    unencrypted_suffix: " + defaultUnencryptedSuffix + "\n")
	b.WriteString("    version: " + sopsVersion + "\n")
	return b.Bytes(), true
}

// emitYAML writes any document through yaml.v3, as SOPS does.
func (o *Opened) emitYAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, n := range o.doc {
		root.Content = append(root.Content, scalar(n.key), o.yamlNode(n))
	}
	root.Content = append(root.Content, scalar(sopsKey), o.metaNode())
	var b bytes.Buffer
	b.Grow(256 + 160*len(o.byName) + 420*len(o.recipients))
	e := yaml.NewEncoder(&b)
	e.SetIndent(4)
	if err := e.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// scalar is a value encoded as SOPS encodes it (yaml.Node.Encode).
func scalar(v any) *yaml.Node {
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		panic(err) // scalars always encode
	}
	return n
}

func (o *Opened) yamlNode(n *node) *yaml.Node {
	switch n.kind {
	case mapNode:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range n.kids {
			m.Content = append(m.Content, scalar(k.key), o.yamlNode(k))
		}
		return m
	case listNode:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for _, k := range n.kids {
			s.Content = append(s.Content, o.yamlNode(k))
		}
		return s
	}
	l := n.leaf
	if !l.clear {
		return scalar(l.text)
	}
	switch l.kind {
	case tree.Bool:
		return scalar(l.text == "true")
	case tree.Int:
		if i, err := strconv.ParseInt(l.text, 10, 64); err == nil {
			return scalar(i)
		}
	case tree.Float:
		if f, err := strconv.ParseFloat(l.text, 64); err == nil {
			return scalar(f)
		}
	}
	return scalar(l.text)
}

// metaNode is the sops: block.
func (o *Opened) metaNode() *yaml.Node {
	type kv struct {
		k string
		v *yaml.Node
	}
	var fields []kv
	add := func(k string, v any) {
		if s, ok := v.(string); ok && s == "" {
			return
		}
		fields = append(fields, kv{k, scalar(v)})
	}
	ageList := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range o.recipients {
		ageList.Content = append(ageList.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			scalar("enc"), scalar(o.wrapped[r]), scalar("recipient"), scalar(r),
		}})
	}
	fields = append(fields, kv{"age", ageList})
	add("lastmodified", o.lastModified.UTC().Format(time.RFC3339))
	add("mac", o.mac.text)
	if o.rules.macOnlyEncrypted {
		add("mac_only_encrypted", true)
	}
	add("unencrypted_suffix", o.rules.unencryptedSuffix)
	add("encrypted_suffix", o.rules.encryptedSuffix)
	add("unencrypted_regex", o.rules.unencryptedRegex)
	add("encrypted_regex", o.rules.encryptedRegex)
	add("version", sopsVersion)
	slices.SortFunc(fields, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range fields {
		m.Content = append(m.Content, scalar(f.k), f.v)
	}
	return m
}

// describe names the rule that decides what SOPS encrypts, for messages.
func (r *rules) describe() string {
	switch {
	case r.unencryptedSuffix != "":
		return "unencrypted_suffix " + r.unencryptedSuffix
	case r.encryptedSuffix != "":
		return "encrypted_suffix " + r.encryptedSuffix
	case r.unencryptedRegex != "":
		return "unencrypted_regex " + r.unencryptedRegex
	}
	return "encrypted_regex " + r.encryptedRegex
}
