package secrets

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// SOPS format (https://github.com/getsops/sops), YAML store, as SOPS 3.13
// writes it. What envplane adds is the binding entry, bindingKey.
const (
	sopsKey     = "sops"
	sopsVersion = "3.13.3" // the SOPS version whose output Marshal reproduces
	// bindingKey is a top-level entry whose value is the environment's name,
	// sealed and covered by the MAC like any value: a file copied to another
	// environment fails to open there, and SOPS keeps it on `sops edit`.
	bindingKey = "envplane_environment"
	// defaultUnencryptedSuffix is SOPS's default rule: values of keys ending
	// with it stay in clear.
	defaultUnencryptedSuffix = "_unencrypted"
)

// macOnlyEncryptedInit starts the MAC of files with mac_only_encrypted, as
// SOPS's MACOnlyEncryptedInitialization.
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

var semver = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`) })

// rules are the SOPS metadata that decide which values are encrypted and
// which the MAC covers. At most one of the four selectors is set.
type rules struct {
	unencryptedSuffix, encryptedSuffix string
	unencryptedRegex, encryptedRegex   string
	macOnlyEncrypted                   bool
	unencRe, encRe                     *regexp.Regexp
}

// encrypted reports whether SOPS encrypts the value at path.
func (r *rules) encrypted(path []string) bool {
	enc := true
	if r.unencryptedSuffix != "" {
		for _, p := range path {
			if strings.HasSuffix(p, r.unencryptedSuffix) {
				enc = false
				break
			}
		}
	}
	if r.encryptedSuffix != "" {
		enc = false
		for _, p := range path {
			if strings.HasSuffix(p, r.encryptedSuffix) {
				enc = true
				break
			}
		}
	}
	if r.unencRe != nil {
		for _, p := range path {
			if r.unencRe.MatchString(p) {
				enc = false
				break
			}
		}
	}
	if r.encRe != nil {
		enc = false
		for _, p := range path {
			if r.encRe.MatchString(p) {
				enc = true
				break
			}
		}
	}
	return enc
}

// nodeKind is the shape of a node of a SOPS document.
type nodeKind uint8

const (
	leafNode nodeKind = iota
	mapNode
	listNode
)

// node is one value of the document, kept so that a file written by sops
// with nested maps and lists is written back in the same shape.
type node struct {
	key   string // in a map
	kind  nodeKind
	leaf  *leaf
	kids  []*node // fields of a map, items of a list
	pos   diag.Pos
	empty bool // a map or list with no items, written {} or []
}

// leaf is one scalar of the document: a secret.
type leaf struct {
	name  string   // envplane's name: the keys joined with ".", list items by index
	path  []string // the keys, as SOPS's additional data sees them
	pos   diag.Pos
	clear bool      // left unencrypted by the file's rules
	kind  tree.Kind // of a clear value
	text  string    // ENC[…], "" for an empty value, or the clear text
	box   box

	// Known once opened.
	value string // envplane's string
	typ   string // SOPS type to seal with: str, int, float, bool, bytes, time
	plain string // the bytes sealed under typ, which the MAC covers
	orig  string // value as read or last marshalled
	fresh bool   // added since
}

// dirty reports whether the value changed since the file was read or last
// marshalled.
func (l *leaf) dirty() bool { return l.fresh || l.value != l.orig }

// sopsMeta is the sops: block.
type sopsMeta struct {
	rules        rules
	version      string
	lastModified string // as written, the MAC's additional data
	mac          box
	macText      string
	macPos       diag.Pos
}

// isSOPS reports whether a parsed document is a SOPS file.
func isSOPS(root *tree.Value) bool { return root.Get(sopsKey) != nil }

// fromSOPS checks a SOPS document and builds the File.
func fromSOPS(file string, root *tree.Value) (*File, error) {
	f := &File{Path: file, SOPS: true, wrapped: map[string]string{}, recPos: map[string]diag.Pos{}}
	if base := path.Base(strings.ReplaceAll(file, `\`, "/")); strings.HasSuffix(base, ".enc.yaml") {
		if env := strings.TrimSuffix(base, ".enc.yaml"); validEnv(env) {
			f.Environment = env
		}
	}
	var errs diag.List
	errorf := func(at diag.Pos, format string, args ...any) {
		errs = append(errs, diag.Errorf(at, format, args...))
	}
	meta := root.Get(sopsKey)
	if meta.Kind != tree.Map {
		return nil, diag.List{diag.Errorf(meta.Src.Pos(), "sops: expected a mapping, found %s", meta.Kind)}
	}
	f.sops.macPos = meta.Src.Pos()
	seen := map[string]bool{}
	str := func(k string, v *tree.Value) (string, bool) {
		if v.Kind != tree.String {
			errorf(v.Src.Pos(), "sops.%s: expected a string, found %s", k, v.Kind)
			return "", false
		}
		return v.Str, true
	}
	r := &f.sops.rules
	selectors := 0
	for _, fl := range meta.Fields {
		v := fl.Value
		seen[fl.Key] = true
		switch fl.Key {
		case "age":
			f.sopsRecipients(v, errorf)
		case "lastmodified":
			if s, ok := str(fl.Key, v); ok {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					errorf(v.Src.Pos(), "sops.lastmodified: expected an RFC 3339 time such as \"2026-11-22T02:45:04Z\"")
					continue
				}
				f.LastModified, f.sops.lastModified = t, t.Format(time.RFC3339)
			}
		case "mac":
			if s, ok := str(fl.Key, v); ok {
				b, err := parseBox(s)
				if err != nil {
					errorf(v.Src.Pos(), "sops.mac: %v", err)
					continue
				}
				f.sops.mac, f.sops.macText, f.sops.macPos = b, s, v.Src.Pos()
			}
		case "version":
			if v.Kind != tree.String || !semver().MatchString(v.Str) {
				errorf(v.Src.Pos(), "sops.version: expected the SOPS version that wrote the file, such as %s", sopsVersion)
				continue
			}
			f.sops.version = v.Str
		case "unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex":
			s, ok := str(fl.Key, v)
			if !ok || s == "" {
				continue
			}
			selectors++
			switch fl.Key {
			case "unencrypted_suffix":
				r.unencryptedSuffix = s
			case "encrypted_suffix":
				r.encryptedSuffix = s
			case "unencrypted_regex", "encrypted_regex":
				re, err := regexp.Compile(s)
				if err != nil {
					errorf(v.Src.Pos(), "sops.%s: not a valid regular expression", fl.Key)
					continue
				}
				if fl.Key == "unencrypted_regex" {
					r.unencryptedRegex, r.unencRe = s, re
				} else {
					r.encryptedRegex, r.encRe = s, re
				}
			}
		case "mac_only_encrypted":
			if v.Kind != tree.Bool {
				errorf(v.Src.Pos(), "sops.mac_only_encrypted: expected true or false")
				continue
			}
			r.macOnlyEncrypted = v.Bool
		case "shamir_threshold":
			if v.Kind != tree.Int || v.Int > 1 {
				errorf(v.Src.Pos(), "sops.shamir_threshold: envplane opens files with one key group only")
			}
		case "unencrypted_comment_regex", "encrypted_comment_regex", "key_groups",
			"kms", "gcp_kms", "azure_kv", "hc_vault", "hckms", "pgp":
			errorf(v.Src.Pos(), "sops.%s: envplane opens SOPS files whose data key is wrapped for age recipients, in one key group, without comment rules; open this one with sops", fl.Key)
		default:
			errorf(v.Src.Pos(), "sops.%s: unknown key (known: age, lastmodified, mac, version, unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex, mac_only_encrypted)", fl.Key)
		}
	}
	if selectors > 1 {
		errorf(meta.Src.Pos(), "sops: more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex")
	}
	if selectors == 0 {
		r.unencryptedSuffix = defaultUnencryptedSuffix
	}
	for _, k := range []string{"age", "lastmodified", "mac", "version"} {
		if !seen[k] {
			errorf(meta.Src.Pos(), "sops.%s is missing: the file is truncated, or its data key is not wrapped for age", k)
		}
	}

	// The document, in order; the walk order is the MAC's. Nodes, leaves,
	// top-level paths and decoded boxes are carved out of a few shared
	// allocations: a 500-secret file would otherwise cost thousands.
	var (
		arena  = boxArena{chunk: 16 << 10}
		nodes  = slab[node]{size: len(root.Fields)}
		leaves = slab[leaf]{size: len(root.Fields)}
		paths  = make([]string, len(root.Fields))
	)
	f.leaves = make([]*leaf, 0, len(root.Fields))
	var walk func(v *tree.Value, key, name string, path []string) *node
	walk = func(v *tree.Value, key, name string, path []string) *node {
		n := nodes.alloc() // zeroed: set field by field, cheaper than a copy
		n.key, n.pos = key, v.Src.Pos()
		switch v.Kind {
		case tree.Map:
			n.kind, n.empty = mapNode, len(v.Fields) == 0
			for _, fl := range v.Fields {
				if !validSyntax(fl.Key) {
					errorf(fl.Value.Src.Pos(), "%q is not a valid secret name (letters, digits, _ . and -, not starting with a digit, . or -)", fl.Key)
					continue
				}
				if c := walk(fl.Value, fl.Key, joinName(name, fl.Key), append(slices.Clip(path), fl.Key)); c != nil {
					n.kids = append(n.kids, c)
				}
			}
		case tree.Array:
			n.kind, n.empty = listNode, len(v.Items) == 0
			for i, it := range v.Items {
				if c := walk(it, "", joinName(name, strconv.Itoa(i)), path); c != nil {
					n.kids = append(n.kids, c)
				}
			}
		case tree.Null:
			errorf(v.Src.Pos(), "%s: the value is null, which SOPS neither encrypts nor authenticates; give it a value or remove it", name)
			return nil
		default:
			l := leaves.alloc()
			l.name, l.path, l.pos, l.kind = name, path, v.Src.Pos(), v.Kind
			l.clear = !r.encrypted(path)
			switch {
			case l.clear:
				l.text = clearText(v)
			case v.Kind != tree.String:
				// Never echo the text: it may be a secret written in clear.
				errorf(v.Src.Pos(), "%s: the value is not sealed (expected ENC[AES256_GCM,…]); set secrets with envplane secrets set or edit, or encrypt the file with sops", name)
				return nil
			case v.Str == "":
				// SOPS leaves empty strings as they are.
			case !strings.HasPrefix(v.Str, "ENC["):
				errorf(v.Src.Pos(), "%s: the value is not sealed (expected ENC[AES256_GCM,…]); set secrets with envplane secrets set or edit, or encrypt the file with sops", name)
				return nil
			default:
				b, err := arena.parse(v.Str)
				if err != nil {
					errorf(v.Src.Pos(), "%s: %v", name, err)
					return nil
				}
				l.text, l.box = v.Str, b
			}
			f.leaves = append(f.leaves, l) // names checked unique below
			n.leaf = l
		}
		return n
	}
	for i, fl := range root.Fields {
		if fl.Key == sopsKey {
			continue
		}
		if fl.Key != bindingKey && !validName(fl.Key) {
			errorf(fl.Value.Src.Pos(), "%q is not a valid secret name (letters, digits, _ . and -, not starting with a digit, . or -; not %q)", fl.Key, metaKey)
			continue
		}
		paths[i] = fl.Key
		if n := walk(fl.Value, fl.Key, fl.Key, paths[i:i+1:i+1]); n != nil {
			f.doc = append(f.doc, n)
			f.bound = f.bound || fl.Key == bindingKey
		}
	}
	// Names are unique: sorted (stably, so that the first in the document
	// stays first), a name equal to the one before is a second value of it.
	byName := slices.Clone(f.leaves)
	slices.SortStableFunc(byName, func(a, b *leaf) int { return strings.Compare(a.name, b.name) })
	for i := 1; i < len(byName); i++ {
		if l := byName[i]; l.name == byName[i-1].name {
			errorf(l.pos, "%s: two values have this name (a key with dots and a nested key, or a list index)", l.name)
		}
	}
	if len(errs) > 0 {
		return nil, errs.Sort()
	}
	f.names = make([]string, 0, len(byName))
	for _, l := range byName {
		if l.name != bindingKey {
			f.names = append(f.names, l.name)
		}
	}
	slices.Sort(f.Recipients)
	f.root = root
	return f, nil
}

// slab hands out values of T carved from shared chunks of size elements,
// for many small objects that live and die together.
type slab[T any] struct {
	size int
	buf  []T
}

func (s *slab[T]) alloc() *T {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, max(s.size, 8))
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

// joinName is a nested value's envplane name.
func joinName(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// clearText is a clear scalar as text.
func clearText(v *tree.Value) string {
	switch v.Kind {
	case tree.Bool:
		return strconv.FormatBool(v.Bool)
	case tree.Int:
		return strconv.FormatInt(v.Int, 10)
	case tree.Float:
		return strconv.FormatFloat(v.Float, 'f', -1, 64)
	}
	return v.Str
}

// macBytes is what SOPS's MAC covers for a clear scalar (sops.ToBytes).
func (l *leaf) macBytes() string {
	if l.clear {
		switch l.kind {
		case tree.Bool:
			if l.text == "true" {
				return "True"
			}
			return "False"
		}
		return l.text
	}
	return l.plain
}

// sopsRecipients reads sops.age: a list of {recipient, enc}.
func (f *File) sopsRecipients(v *tree.Value, errorf func(diag.Pos, string, ...any)) {
	if v.Kind != tree.Array || len(v.Items) == 0 {
		errorf(v.Src.Pos(), "sops.age: expected a list of {recipient: age1…, enc: <armored age file>}")
		return
	}
	for _, it := range v.Items {
		if it.Kind != tree.Map {
			errorf(it.Src.Pos(), "sops.age: expected {recipient: age1…, enc: <armored age file>}, found %s", it.Kind)
			continue
		}
		r, enc := it.Get("recipient"), it.Get("enc")
		for _, fl := range it.Fields {
			if fl.Key != "recipient" && fl.Key != "enc" {
				errorf(fl.Value.Src.Pos(), "sops.age: unknown key %q (known: recipient, enc)", fl.Key)
			}
		}
		if r == nil || enc == nil {
			errorf(it.Src.Pos(), "sops.age: each entry needs recipient and enc")
			continue
		}
		if r.Kind != tree.String {
			errorf(r.Src.Pos(), "sops.age: expected an age recipient (age1…)")
			continue
		}
		if _, err := ParseRecipient(r.Str); err != nil {
			errorf(r.Src.Pos(), "sops.age: %v", err)
			continue
		}
		if _, dup := f.wrapped[r.Str]; dup {
			errorf(r.Src.Pos(), "sops.age: %s is listed twice", r.Str)
			continue
		}
		if enc.Kind != tree.String || !validArmor(enc.Str) {
			errorf(enc.Src.Pos(), "sops.age: the enc of %s is not an armored age file (-----BEGIN AGE ENCRYPTED FILE----- … -----END AGE ENCRYPTED FILE-----); the file may be truncated", r.Str)
			continue
		}
		f.Recipients = append(f.Recipients, r.Str)
		f.wrapped[r.Str] = strings.TrimRight(enc.Str, " \n") + "\n"
		f.recPos[r.Str] = enc.Src.Pos()
	}
}

// additionalData is SOPS's additional data for a value: its keys, each
// followed by a colon.
func additionalData(path []string) string { return strings.Join(path, ":") + ":" }

// decode turns a value SOPS decrypted into envplane's string and the bytes
// SOPS's MAC covers, as SOPS's aes.Cipher and sops.ToBytes do.
func decode(typ, plain string) (value, mac string, err error) {
	switch typ {
	case "", "str", "bytes":
		return plain, plain, nil
	case "int":
		i, err := strconv.Atoi(plain)
		if err != nil {
			return "", "", fmt.Errorf("type int, but not an integer")
		}
		s := strconv.Itoa(i)
		return s, s, nil
	case "float":
		x, err := strconv.ParseFloat(plain, 64)
		if err != nil {
			return "", "", fmt.Errorf("type float, but not a number")
		}
		s := strconv.FormatFloat(x, 'f', -1, 64)
		return s, s, nil
	case "bool":
		b, err := strconv.ParseBool(plain)
		if err != nil {
			return "", "", fmt.Errorf("type bool, but not a boolean")
		}
		if b {
			return "true", "True", nil
		}
		return "false", "False", nil
	case "time":
		var t time.Time
		if err := t.UnmarshalText([]byte(plain)); err != nil {
			return "", "", fmt.Errorf("type time, but not a time")
		}
		b, _ := t.MarshalText()
		return string(b), string(b), nil
	}
	return "", "", fmt.Errorf("unknown type %q", typ)
}

// sopsMAC is SOPS's MAC: SHA-512 over the MAC bytes of every value in
// document order, in upper-case hex.
func sopsMAC(r *rules, leaves []*leaf) string {
	h := sha512.New()
	if r.macOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	var buf []byte
	for _, l := range leaves {
		if r.macOnlyEncrypted && l.clear {
			continue
		}
		buf = append(buf[:0], l.macBytes()...)
		h.Write(buf)
	}
	var sum [sha512.Size]byte
	var out [2 * sha512.Size]byte
	hex.Encode(out[:], h.Sum(sum[:0]))
	return strings.ToUpper(string(out[:]))
}
