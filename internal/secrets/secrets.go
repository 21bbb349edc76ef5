// Package secrets reads and writes a workspace's encrypted secrets files,
// secrets/{env}.enc.yaml: names in clear so that a diff shows which secrets
// changed, values sealed so that only the environment's recipients can read
// them.
//
// The file is YAML:
//
//	# envplane secrets for environment staging. Names are in clear; values are sealed.
//	# Edit with: envplane secrets edit --env staging
//	DATABASE_PASSWORD: ENC[AES256_GCM,data:<base64>,iv:<base64>,tag:<base64>,type:str]
//	JWT_SECRET: ENC[AES256_GCM,...]
//	envplane:
//	  version: 1
//	  environment: staging
//	  recipients:
//	    - recipient: age1...
//	      enc: |
//	        -----BEGIN AGE ENCRYPTED FILE-----
//	        ...
//	        -----END AGE ENCRYPTED FILE-----
//	  mac: ENC[AES256_GCM,data:...,iv:...,tag:...,type:str]
//	  lastmodified: "2026-11-22T02:45:04Z"
//
//	  - Names are flat, match [A-Za-z_][A-Za-z0-9_.-]*, and are written sorted
//	    (quoted when YAML 1.1 would read them as a boolean or null); "envplane"
//	    is reserved for the metadata block. Values are UTF-8 strings.
//	  - Each file has its own random 32-byte data key. A value is sealed with
//	    AES-256-GCM under that key with a random 12-byte nonce (iv) and the
//	    additional data "NAME:", so a sealed value moved to another name fails
//	    authentication. data, iv and tag are standard base64 with padding.
//	  - mac is HMAC-SHA256, keyed with the data key, over len‖environment,
//	    len‖version (decimal), then len‖name, len‖value for every secret in
//	    sorted order, each len an 8-byte big-endian byte count. Its lowercase
//	    hex is sealed like a value with the additional data "envplane.mac". It
//	    catches added and removed names and a file copied to another
//	    environment.
//	  - The data key is wrapped for each recipient as its own armored age file
//	    (filippo.io/age), so a recipient added or removed is one entry in a
//	    diff. `age -d -i key.txt` on an enc block prints the data key.
//	  - Output is stable: rewriting a file keeps the sealed text of every value
//	    that did not change and the wrapped key of every recipient that stayed;
//	    a file in which nothing changed comes out byte for byte the same.
//
// A File is a parsed, still sealed file: its names are readable without a
// key. File.Open unwraps the data key with the caller's age identities and
// returns an Opened file, which can be read, changed and marshalled again.
//
// No error from this package holds a secret value, a data key or an identity.
package secrets

import (
	"errors"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
)

// Version is the file format version this package reads and writes.
const Version = 1

// metaKey is the top-level key of the metadata block, never a secret name.
const metaKey = "envplane"

// FileName is the name of an environment's secrets file in the secrets
// directory.
func FileName(env string) string { return env + ".enc.yaml" }

// File is a parsed secrets file whose values are still sealed.
type File struct {
	Path         string // as given to Parse, for messages
	Environment  string
	Version      int
	Recipients   []string // sorted
	LastModified time.Time

	// SOPS is true for a file in SOPS format; false for envplane's format
	// before it (version 1), which still opens and is written back as SOPS.
	SOPS bool

	entries []entry           // legacy: sorted by name
	wrapped map[string]string // recipient → armored age file holding the data key
	recPos  map[string]diag.Pos
	mac     box
	macText string
	macPos  diag.Pos

	doc    []*node // SOPS: the document's top-level entries, in order
	leaves []*leaf // SOPS: every value, in document order
	names  []string
	sops   sopsMeta
	bound  bool // SOPS: an envplane_environment entry at the top

	// root is the parsed document, from which a later Open builds the
	// document again: the first Open takes doc and leaves for its own
	// (taken), saving a copy of them in the common case of one Open.
	root  *tree.Value
	taken atomic.Bool
}

// entry is one sealed secret and where its value is in the file.
type entry struct {
	name string
	text string // ENC[…], which parseBox accepts only as box.String writes it
	box  box
	pos  diag.Pos
}

// Names returns the secret names, sorted. Reading them needs no key.
func (f *File) Names() []string {
	if f.SOPS {
		return slices.Clone(f.names)
	}
	names := make([]string, len(f.entries))
	for i, e := range f.entries {
		names[i] = e.name
	}
	return names
}

// Bound reports whether a SOPS file has an envplane_environment entry (Open
// checks that it is genuine and names the file's environment).
func (f *File) Bound() bool { return f.bound }

// Parse parses a secrets file. path names the file in messages; when its
// base name is {env}.enc.yaml, env must be the environment the file holds.
// Problems come back as a diag.List positioned at file:line:col.
func Parse(path string, data []byte) (*File, error) {
	root, ok := parseCanonicalSOPS(path, data)
	if !ok {
		root, ok = parseCanonical(path, data)
	}
	if !ok {
		var errs diag.List
		root, errs = tree.ParseYAML(path, data)
		if len(errs) > 0 {
			return nil, errs
		}
	}
	if isSOPS(root) {
		if root.Get(metaKey) != nil {
			return nil, diag.List{diag.Errorf(root.Get(metaKey).Src.Pos(), "the file has both a sops: block and envplane's old envplane: block; keep one")}
		}
		return fromSOPS(path, root)
	}
	return fromTree(path, root)
}

// fromTree checks the parsed YAML against the format and builds the File.
func fromTree(file string, root *tree.Value) (*File, error) {
	start := diag.Pos{File: file, Line: 1, Column: 1}
	if len(root.Fields) == 0 {
		return nil, diag.List{diag.Errorf(start, "empty secrets file: it has no sops: block (the file is truncated, or not a SOPS file)")}
	}
	meta := root.Get(metaKey)
	if meta == nil {
		return nil, diag.List{diag.Errorf(start, "no sops: block: the file is truncated, or not a SOPS file")}
	}
	if meta.Kind != tree.Map {
		return nil, diag.List{diag.Errorf(meta.Src.Pos(), "envplane: expected a mapping, found %s", meta.Kind)}
	}
	f := &File{Path: file, wrapped: map[string]string{}, recPos: map[string]diag.Pos{}}
	var errs diag.List
	errorf := func(at *tree.Value, format string, args ...any) {
		errs = append(errs, diag.Errorf(at.Src.Pos(), format, args...))
	}

	// The version comes first: a newer format may mean anything else.
	switch v := meta.Get("version"); {
	case v == nil:
		return nil, diag.List{diag.Errorf(meta.Src.Pos(), "envplane.version is missing")}
	case v.Kind != tree.Int || v.Int < 1:
		return nil, diag.List{diag.Errorf(v.Src.Pos(), "envplane.version: expected format version %d", Version)}
	case v.Int > Version:
		return nil, diag.List{diag.Errorf(v.Src.Pos(), "written by a newer envplane (format version %d); this one reads version %d", v.Int, Version)}
	default:
		f.Version = int(v.Int)
	}

	var envV *tree.Value
	seen := map[string]bool{}
	for _, fl := range meta.Fields {
		v := fl.Value
		seen[fl.Key] = true
		switch fl.Key {
		case "version":
		case "environment":
			envV = v
			if v.Kind != tree.String || !validEnv(v.Str) {
				errorf(v, "envplane.environment: expected an environment name (lower-case letters, digits and -)")
				continue
			}
			f.Environment = v.Str
		case "recipients":
			f.recipients(v, errorf)
		case "mac":
			if v.Kind != tree.String {
				errorf(v, "envplane.mac: expected ENC[AES256_GCM,…], found %s", v.Kind)
				continue
			}
			b, err := parseBox(v.Str)
			if err != nil {
				errorf(v, "envplane.mac: %v", err)
				continue
			}
			f.mac, f.macText, f.macPos = b, v.Str, v.Src.Pos()
		case "lastmodified":
			if v.Kind != tree.String {
				errorf(v, "envplane.lastmodified: expected an RFC 3339 time in quotes")
				continue
			}
			t, err := time.Parse(time.RFC3339, v.Str)
			if err != nil {
				errorf(v, "envplane.lastmodified: expected an RFC 3339 time such as \"2026-11-22T02:45:04Z\"")
				continue
			}
			f.LastModified = t
		default:
			errorf(v, "envplane.%s: unknown key (known: version, environment, recipients, mac, lastmodified)", fl.Key)
		}
	}
	for _, k := range []string{"environment", "recipients", "mac", "lastmodified"} {
		if !seen[k] {
			errorf(meta, "envplane.%s is missing: the file is truncated, or was not written by envplane", k)
		}
	}
	if envV != nil && f.Environment != "" {
		if base := path.Base(strings.ReplaceAll(file, `\`, "/")); strings.HasSuffix(base, ".enc.yaml") && base != FileName(f.Environment) {
			errorf(envV, "this file holds the secrets of environment %q but is named %s; it belongs in %s", f.Environment, base, FileName(f.Environment))
		}
	}

	for _, fl := range root.Fields {
		if fl.Key == metaKey {
			continue
		}
		v := fl.Value
		if !validName(fl.Key) {
			errorf(v, "%q is not a valid secret name (letters, digits, _ . and -, not starting with a digit, . or -)", fl.Key)
			continue
		}
		if v.Kind != tree.String || !strings.HasPrefix(v.Str, "ENC[") {
			// Never echo the text: it may be a secret written in clear.
			errorf(v, "%s: the value is not sealed (expected ENC[AES256_GCM,…]); set secrets with envplane secrets set or edit", fl.Key)
			continue
		}
		b, err := parseBox(v.Str)
		if err == nil && b.typ != "str" {
			err = errors.New("malformed ENC[AES256_GCM,data:…,iv:…,tag:…,type:str] value: type is not str")
		}
		if err != nil {
			errorf(v, "%s: %v", fl.Key, err)
			continue
		}
		f.entries = append(f.entries, entry{name: fl.Key, text: v.Str, box: b, pos: v.Src.Pos()})
	}
	if len(errs) > 0 {
		return nil, errs.Sort()
	}
	slices.SortFunc(f.entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	slices.Sort(f.Recipients)
	return f, nil
}

// recipients reads envplane.recipients: a list of {recipient, enc}.
func (f *File) recipients(v *tree.Value, errorf func(*tree.Value, string, ...any)) {
	if v.Kind != tree.Array || len(v.Items) == 0 {
		errorf(v, "envplane.recipients: expected a list of {recipient: age1…, enc: <armored age file>}")
		return
	}
	for _, it := range v.Items {
		if it.Kind != tree.Map {
			errorf(it, "envplane.recipients: expected {recipient: age1…, enc: <armored age file>}, found %s", it.Kind)
			continue
		}
		r, enc := it.Get("recipient"), it.Get("enc")
		for _, fl := range it.Fields {
			if fl.Key != "recipient" && fl.Key != "enc" {
				errorf(fl.Value, "envplane.recipients: unknown key %q (known: recipient, enc)", fl.Key)
			}
		}
		if r == nil || enc == nil {
			errorf(it, "envplane.recipients: each entry needs recipient and enc")
			continue
		}
		if r.Kind != tree.String {
			errorf(r, "envplane.recipients: expected an age recipient (age1…)")
			continue
		}
		if _, err := ParseRecipient(r.Str); err != nil {
			errorf(r, "envplane.recipients: %v", err)
			continue
		}
		if _, dup := f.wrapped[r.Str]; dup {
			errorf(r, "envplane.recipients: %s is listed twice", r.Str)
			continue
		}
		if enc.Kind != tree.String || !validArmor(enc.Str) {
			errorf(enc, "envplane.recipients: the enc of %s is not an armored age file (-----BEGIN AGE ENCRYPTED FILE----- … -----END AGE ENCRYPTED FILE-----); the file may be truncated", r.Str)
			continue
		}
		f.Recipients = append(f.Recipients, r.Str)
		f.wrapped[r.Str] = strings.TrimRight(enc.Str, " \n") + "\n"
		f.recPos[r.Str] = enc.Src.Pos()
	}
}

const (
	armorHeader = "-----BEGIN AGE ENCRYPTED FILE-----"
	armorFooter = "-----END AGE ENCRYPTED FILE-----"
)

// validArmor reports whether s looks like one armored age file, in the
// characters Marshal can write back as a YAML literal block unchanged.
func validArmor(s string) bool {
	s = strings.TrimRight(s, " \n")
	if !strings.HasPrefix(s, armorHeader+"\n") || !strings.HasSuffix(s, "\n"+armorFooter) {
		return false
	}
	for line := range strings.SplitSeq(s, "\n") {
		if line == "" || line[0] == ' ' || line[len(line)-1] == ' ' {
			return false
		}
		if !allIn(line, &armorChars) {
			return false
		}
	}
	return true
}

// validName reports whether s can be a secret name: the syntax, and not
// one of the reserved top-level keys.
func validName(s string) bool {
	return validSyntax(s) && s != metaKey && s != sopsKey && s != bindingKey
}

// validSyntax reports whether s has the syntax of a secret name.
func validSyntax(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; !isLetter(c) && c != '_' {
		return false
	}
	return allIn(s, &nameChars)
}

// validEnv matches the workspace's environment names, ^[a-z][a-z0-9-]{0,62}$.
func validEnv(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || '0' <= c && c <= '9' }

// Character classes, as tables: scanning the values of a large file is a
// good part of parsing it.
var (
	encChars   = charSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=,:_")
	armorChars = charSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=- ")
	nameChars  = charSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
)

func charSet(chars string) (set [256]bool) {
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return set
}

// allIn reports whether every byte of s is in set.
func allIn(s string, set *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// TempDirPrefix starts the name of each private directory that holds
// decrypted secrets during `secrets edit`: envplane-secrets-PID-RANDOM
// (see fsutil.MkdirPrivateTemp).
const TempDirPrefix = "envplane-secrets-"
