package secrets

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/tree"
)

// ErrTampered is matched (errors.Is) by every error saying that a file's
// contents fail authentication.
var ErrTampered = errors.New("the secrets file fails authentication")

// TamperError says that a value, the MAC or a wrapped key fails
// authentication: the file was changed other than through envplane.
type TamperError struct {
	Pos    diag.Pos // the file, and where in it
	Name   string   // the secret whose value fails, "" for the file as a whole
	Reason string
}

func (e *TamperError) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Name != "" {
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	b.WriteString("authentication failed: ")
	b.WriteString(e.Reason)
	return b.String()
}

func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// NoIdentityError says that none of the given identities opens a file. It
// names the recipients that would, never the identities tried.
type NoIdentityError struct {
	File        string
	Environment string
	Recipients  []string
	Tried       int // identities tried
}

func (e *NoIdentityError) Error() string {
	list := strings.Join(e.Recipients, ", ")
	if e.Tried == 0 {
		return fmt.Sprintf("%s: no age identity to open the secrets of environment %q (set %s or %s, or put the key in the envplane config directory's keys.txt); it opens with the identity of any of: %s",
			e.File, e.Environment, EnvKey, EnvKeyFile, list)
	}
	return fmt.Sprintf("%s: none of your age identities opens the secrets of environment %q; it opens with the identity of any of: %s",
		e.File, e.Environment, list)
}

// Opened is a secrets file with its data key: values readable and
// changeable, and marshalled back in SOPS format with stable output. It is
// not safe for concurrent use.
type Opened struct {
	env          string
	key          []byte
	aead         *aeads
	doc          []*node
	byName       map[string]*leaf // every value but the binding
	rules        rules
	recipients   []string          // sorted
	wrapped      map[string]string // recipient → armored age file holding key
	lastModified time.Time
	mac          sealedValue // under lastModified
	bound        bool        // the file carries an authenticated binding
	metaChanged  bool        // recipients, key, format or shape changed since last read or written
	keyChanged   bool        // a new data key: every value is sealed again
}

// sealedValue is sealed text and the plaintext it seals.
type sealedValue struct {
	text, plain string
}

// Open unwraps the data key with the first identity that matches a
// recipient, decrypts every value and verifies the MAC and the binding to
// the environment.
func (f *File) Open(ids []age.Identity) (*Opened, error) {
	key, err := f.unwrap(ids)
	if err != nil {
		return nil, err
	}
	if !f.SOPS {
		return f.openLegacy(key)
	}
	o := &Opened{
		env:          f.Environment,
		key:          key,
		aead:         newAEAD(key),
		rules:        f.sops.rules,
		recipients:   slices.Clone(f.Recipients),
		wrapped:      maps.Clone(f.wrapped),
		lastModified: f.LastModified,
	}
	// An Opened changes its document: the first Open takes the one Parse
	// built, any other builds its own from the parsed file again.
	var leaves []*leaf // of o.doc, in document order
	if f.taken.CompareAndSwap(false, true) {
		o.doc, leaves = f.doc, f.leaves
		f.doc, f.leaves = nil, nil
	} else {
		g, err := fromSOPS(f.Path, f.root)
		if err != nil {
			return nil, err // cannot happen: it was built from root before
		}
		o.doc, leaves = g.doc, g.leaves
	}
	var binding *leaf
	// Every value is decrypted into one buffer that becomes one string, of
	// which the values are pieces; the first value that fails is reported
	// after any earlier one that fails to decode, as one value at a time
	// would.
	size := 0
	for _, l := range leaves {
		if !l.clear && l.text != "" {
			size += len(l.box.data)
		}
	}
	plain := make([]byte, 0, size)
	ends := make([]int, len(leaves))
	var ad []byte
	failed := len(leaves)
	for i, l := range leaves {
		if !l.clear && l.text != "" {
			ad = appendAD(ad[:0], l.path)
			out, err := l.box.openTo(o.aead, plain, ad)
			if err != nil {
				failed = i
				break
			}
			plain = out
		}
		ends[i] = len(plain)
	}
	all := string(plain)
	for i, l := range leaves[:failed] {
		if l.name == bindingKey && len(l.path) == 1 {
			binding = l
		}
		switch {
		case l.clear:
			l.value, l.typ, l.plain = l.text, "", l.macBytes()
		case l.text == "":
			l.typ = "str"
		default:
			start := 0
			if i > 0 {
				start = ends[i-1]
			}
			l.typ = l.box.typ
			var err error
			if l.value, l.plain, err = decode(l.box.typ, all[start:ends[i]]); err != nil {
				return nil, &TamperError{Pos: l.pos, Name: l.name, Reason: err.Error()}
			}
		}
		l.orig = l.value
	}
	if failed < len(leaves) {
		l := leaves[failed]
		return nil, &TamperError{Pos: l.pos, Name: l.name,
			Reason: "the value was changed, or moved here from another name"}
	}
	mac, err := f.sops.mac.open(o.aead, f.sops.lastModified)
	if err != nil {
		return nil, &TamperError{Pos: f.sops.macPos, Reason: "the MAC or lastmodified was changed"}
	}
	if subtle.ConstantTimeCompare([]byte(mac), []byte(sopsMAC(&o.rules, leaves))) != 1 {
		return nil, &TamperError{Pos: f.sops.macPos,
			Reason: "the MAC does not match: a secret was added or removed, or a value or the environment was changed"}
	}
	o.mac = sealedValue{text: f.sops.macText, plain: mac}
	// The binding counts when SOPS authenticates it: sealed, or in clear
	// and covered by the MAC.
	if binding != nil && (!binding.clear || !o.rules.macOnlyEncrypted) {
		switch {
		case o.env == "" && validEnv(binding.value):
			o.env = binding.value
		case binding.value != o.env:
			return nil, &TamperError{Pos: binding.pos, Name: bindingKey,
				Reason: fmt.Sprintf("this file holds the secrets of environment %q, not %q: it was copied or renamed from another environment's file", short(binding.value), o.env)}
		}
		o.bound = true
	}
	if o.env == "" {
		return nil, errs.E(errs.Invalid, "%s: the file name is not ENV.enc.yaml and the file has no %s entry: cannot tell which environment it is for", f.Path, bindingKey)
	}
	o.index()
	return o, nil
}

// openLegacy opens a file in envplane's format before SOPS (version 1):
// every value sealed with the additional data "NAME:", which is SOPS's for a
// top-level name, and an HMAC-SHA256 over the environment, the version and
// every name and value. Marshal writes it in SOPS format.
func (f *File) openLegacy(key []byte) (*Opened, error) {
	o := &Opened{
		env:          f.Environment,
		key:          key,
		aead:         newAEAD(key),
		rules:        rules{unencryptedSuffix: defaultUnencryptedSuffix},
		recipients:   slices.Clone(f.Recipients),
		wrapped:      maps.Clone(f.wrapped),
		lastModified: f.LastModified,
		metaChanged:  true,
	}
	values := make(map[string]string, len(f.entries))
	names := make([]string, len(f.entries))
	for i, e := range f.entries {
		v, err := e.box.open(o.aead, valueAD(e.name))
		if err != nil {
			return nil, &TamperError{Pos: e.pos, Name: e.name,
				Reason: "the value was changed, or moved here from another name"}
		}
		names[i] = e.name
		values[e.name] = v
		l := &leaf{name: e.name, path: []string{e.name}, pos: e.pos, value: v, orig: v, typ: "str", plain: v}
		if v != "" {
			l.text, l.box = e.text, e.box // SOPS opens these as they are
		}
		o.doc = append(o.doc, &node{key: e.name, leaf: l, pos: e.pos})
	}
	mac, err := f.mac.open(o.aead, macAD)
	if err != nil {
		return nil, &TamperError{Pos: f.macPos, Reason: "the MAC was changed"}
	}
	want := computeMAC(key, f.Environment, f.Version, names, func(n string) string { return values[n] })
	if subtle.ConstantTimeCompare([]byte(mac), []byte(want)) != 1 {
		return nil, &TamperError{Pos: f.macPos,
			Reason: "the MAC does not match: a secret was added or removed, or a value or the environment was changed"}
	}
	o.index()
	return o, nil
}

// appendAD appends SOPS's additional data for a value (additionalData).
func appendAD(b []byte, path []string) []byte {
	for _, p := range path {
		b = append(append(b, p...), ':')
	}
	return b
}

// leaves returns every value in document order, the MAC's order.
func (o *Opened) leaves() []*leaf {
	out := make([]*leaf, 0, len(o.byName)+1)
	var walk func([]*node)
	walk = func(ns []*node) {
		for _, n := range ns {
			if n.leaf != nil {
				out = append(out, n.leaf)
			}
			walk(n.kids)
		}
	}
	walk(o.doc)
	return out
}

// index names every value after a change of shape: list items are named by
// their index.
func (o *Opened) index() {
	o.byName = make(map[string]*leaf, max(len(o.byName), len(o.doc)))
	var walk func(ns []*node, name string, path []string, list bool)
	walk = func(ns []*node, name string, path []string, list bool) {
		for i, n := range ns {
			nm, p := joinName(name, n.key), path
			if list {
				nm = joinName(name, strconv.Itoa(i))
			} else if l := n.leaf; l != nil && len(l.path) == len(path)+1 && l.path[len(path)] == n.key && slices.Equal(l.path[:len(path)], path) {
				p = l.path // unchanged: no new slice
			} else {
				p = append(slices.Clip(path), n.key)
			}
			if n.leaf != nil {
				n.leaf.name, n.leaf.path = nm, p
				if !(len(p) == 1 && n.key == bindingKey) {
					o.byName[nm] = n.leaf
				}
			}
			walk(n.kids, nm, p, n.kind == listNode)
		}
	}
	walk(o.doc, "", nil, false)
}

// unwrap finds the data key. Recipients whose public key belongs to one of
// ids are tried first, so a match costs one X25519 operation.
func (f *File) unwrap(ids []age.Identity) ([]byte, error) {
	noMatch := &NoIdentityError{File: f.Path, Environment: f.Environment,
		Recipients: slices.Clone(f.Recipients), Tried: len(ids)}
	if len(ids) == 0 {
		return nil, noMatch
	}
	mine := map[string]bool{}
	known := 0 // identities whose recipient is known
	for _, id := range ids {
		if r := recipientOf(id); r != "" {
			mine[r] = true
			known++
		}
	}
	order := slices.Clone(f.Recipients)
	slices.SortStableFunc(order, func(a, b string) int {
		switch {
		case mine[a] == mine[b]:
			return 0
		case mine[a]:
			return -1
		}
		return 1
	})
	var damaged error
	for _, r := range order {
		if known == len(ids) && !mine[r] {
			// Every identity's recipient is known and none is left: the
			// other stanzas cannot open (and each try costs an X25519),
			// which a file listing thousands of recipients would exploit.
			break
		}
		key, err := unwrapKey(f.wrapped[r], ids)
		if err == nil {
			return key, nil
		}
		var nm *age.NoIdentityMatchError
		if !errors.As(err, &nm) && mine[r] && damaged == nil {
			damaged = &TamperError{Pos: f.recPos[r],
				Reason: "the wrapped data key of " + r + " is damaged"}
		}
	}
	if damaged != nil {
		return nil, damaged
	}
	return nil, noMatch
}

// unwrapKey decrypts one armored age file and checks it holds a data key.
//
// The age file holds 32 bytes: its payload is one STREAM chunk, which this
// opens directly instead of through age.Decrypt's reader and its 64 KiB
// chunk buffers. Anything but that succeeding goes to age.Decrypt
// (decryptKey), so that errors stay exactly age's.
func unwrapKey(armored string, ids []age.Identity) ([]byte, error) {
	key, ok, err := unwrapChunk(armored, ids)
	if !ok {
		return decryptKey(armored, ids)
	}
	return key, err
}

// unwrapChunk is unwrapKey's direct path; ok false when it does not apply.
func unwrapChunk(armored string, ids []age.Identity) (key []byte, ok bool, err error) {
	const payloadSize = 16 + keySize + chacha20poly1305.Overhead // nonce, one chunk
	bin, err := io.ReadAll(armor.NewReader(strings.NewReader(armored)))
	if err != nil {
		return nil, false, nil
	}
	fileKey, err := age.DecryptHeader(bin, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, true, err
		}
		return nil, false, nil
	}
	// The header ends with its first line starting "---" (the MAC line).
	end := bytes.Index(bin, []byte("\n---"))
	if end < 0 {
		return nil, false, nil
	}
	eol := bytes.IndexByte(bin[end+1:], '\n')
	if eol < 0 || len(bin)-(end+1+eol+1) != payloadSize {
		return nil, false, nil
	}
	payload := bin[end+1+eol+1:]
	nonce, chunk := payload[:16], payload[16:]
	streamKey, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, false, nil
	}
	aead, err := chacha20poly1305.New(streamKey)
	if err != nil {
		return nil, false, nil
	}
	var chunkNonce [chacha20poly1305.NonceSize]byte
	chunkNonce[len(chunkNonce)-1] = 1 // the last chunk, counter 0
	key, err = aead.Open(nil, chunkNonce[:], chunk, nil)
	if err != nil || len(key) != keySize {
		return nil, false, nil
	}
	return key, true, nil
}

// decryptKey is unwrapKey through age.Decrypt.
func decryptKey(armored string, ids []age.Identity) ([]byte, error) {
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(armored)), ids...)
	if err != nil {
		return nil, err
	}
	key, err := io.ReadAll(io.LimitReader(r, keySize+1))
	if err != nil {
		return nil, err
	}
	if len(key) != keySize {
		return nil, errors.New("not a data key")
	}
	return key, nil
}

// wrapKey seals key for one recipient as an armored age file, as SOPS's age
// key source does.
func wrapKey(key []byte, r age.Recipient) (string, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(key); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	if err := aw.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// New starts an empty secrets file for env with a fresh data key wrapped for
// recipients (age1… strings).
func New(env string, recipients []string) (*Opened, error) {
	if !validEnv(env) {
		return nil, fmt.Errorf("%q is not an environment name (lower-case letters, digits and -)", env)
	}
	o := &Opened{env: env, byName: map[string]*leaf{}, rules: rules{unencryptedSuffix: defaultUnencryptedSuffix}}
	if err := o.Rotate(recipients); err != nil {
		return nil, err
	}
	return o, nil
}

// Environment is the environment whose secrets these are.
func (o *Opened) Environment() string { return o.env }

// Recipients returns the recipients the data key is wrapped for, sorted.
func (o *Opened) Recipients() []string { return slices.Clone(o.recipients) }

// Names returns the secret names, sorted. A nested value of a file written
// by sops is named by its keys joined with "." (list items by index).
func (o *Opened) Names() []string { return slices.Sorted(maps.Keys(o.byName)) }

// Bound reports whether the file carries an authenticated binding to its
// environment. A file made by plain sops has none until envplane writes it.
func (o *Opened) Bound() bool { return o.bound }

// LastModified is when the contents last changed, as the file says (or as
// the last Marshal set it); zero for a new file not yet marshalled.
func (o *Opened) LastModified() time.Time { return o.lastModified }

// Get returns one value.
func (o *Opened) Get(name string) (string, bool) {
	l, ok := o.byName[name]
	if !ok {
		return "", false
	}
	return l.value, true
}

// Values returns a copy of all values by name.
func (o *Opened) Values() map[string]string {
	m := make(map[string]string, len(o.byName))
	for n, l := range o.byName {
		m[n] = l.value
	}
	return m
}

// Set sets a value. The value is not part of any error. A new name is a new
// top-level entry; an existing nested one is changed in place.
func (o *Opened) Set(name, value string) error {
	if !utf8.ValidString(value) {
		// Refused, never repaired: a secret is stored exactly or not at all.
		return errs.E(errs.Invalid, "secret %s: the value is not valid UTF-8 (byte %d); secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first",
			short(name), invalidAt(value))
	}
	if l, ok := o.byName[name]; ok {
		l.value = value
		return nil
	}
	if !validName(name) {
		return errs.E(errs.Invalid, "%q is not a valid secret name (letters, digits, _ . and -, not starting with a digit, . or -; not %s, %s or %s)", short(name), sopsKey, metaKey, bindingKey)
	}
	if !o.rules.encrypted([]string{name}) {
		return errs.E(errs.Invalid, "secret %s would be stored in clear: the file's SOPS rules (%s) leave it unencrypted; choose another name", name, o.rules.describe())
	}
	l := &leaf{name: name, path: []string{name}, value: value, typ: "str", fresh: true}
	n := &node{key: name, leaf: l}
	o.insert(n)
	o.byName[name] = l
	o.metaChanged = true
	return nil
}

// insert adds a top-level entry: in name order when the names are in order
// (as envplane writes them), else at the end.
func (o *Opened) insert(n *node) {
	start := 0
	if len(o.doc) > 0 && o.doc[0].key == bindingKey {
		start = 1
	}
	rest := o.doc[start:]
	sorted := slices.IsSortedFunc(rest, func(a, b *node) int { return strings.Compare(a.key, b.key) })
	i := len(o.doc)
	if sorted {
		j, _ := slices.BinarySearchFunc(rest, n.key, func(a *node, k string) int { return strings.Compare(a.key, k) })
		i = start + j
	}
	o.doc = slices.Insert(o.doc, i, n)
}

// Delete removes a value and reports whether it was there. A nested value
// is removed from its map or list.
func (o *Opened) Delete(name string) bool {
	if _, ok := o.byName[name]; !ok {
		return false
	}
	var drop func([]*node) ([]*node, bool)
	drop = func(ns []*node) ([]*node, bool) {
		for i, n := range ns {
			if n.leaf != nil && n.leaf.name == name {
				return slices.Delete(ns, i, i+1), true
			}
			if kids, ok := drop(n.kids); ok {
				n.kids = kids
				n.empty = len(kids) == 0
				return ns, true
			}
		}
		return ns, false
	}
	o.doc, _ = drop(o.doc)
	o.metaChanged = true
	o.index()
	return true
}

// SetRecipients makes recipients the file's recipients, keeping the data
// key and the wrapped key of every recipient that stays. A removed
// recipient may still know the data key and every value sealed under it:
// Rotate to shut it out of values written from then on.
func (o *Opened) SetRecipients(recipients []string) error {
	rs, parsed, err := parseRecipients(recipients)
	if err != nil {
		return err
	}
	if slices.Equal(rs, o.recipients) {
		return nil
	}
	wrapped := make(map[string]string, len(rs))
	for i, r := range rs {
		if w, ok := o.wrapped[r]; ok {
			wrapped[r] = w
			continue
		}
		if wrapped[r], err = wrapKey(o.key, parsed[i]); err != nil {
			return err
		}
	}
	o.recipients, o.wrapped, o.metaChanged = rs, wrapped, true
	return nil
}

// Rotate replaces the data key with a fresh one, wraps it for recipients
// (the current ones, as configured) and reseals every value on the next
// Marshal, so that a recipient no longer listed cannot read what is written
// from then on.
func (o *Opened) Rotate(recipients []string) error {
	rs, parsed, err := parseRecipients(recipients)
	if err != nil {
		return err
	}
	key := make([]byte, keySize)
	rand.Read(key)
	wrapped := make(map[string]string, len(rs))
	for i, r := range rs {
		if wrapped[r], err = wrapKey(key, parsed[i]); err != nil {
			return err
		}
	}
	o.key, o.aead = key, newAEAD(key)
	o.recipients, o.wrapped = rs, wrapped
	o.mac = sealedValue{}
	o.metaChanged, o.keyChanged = true, true
	return nil
}

// parseRecipients checks, sorts and de-duplicates recipients.
func parseRecipients(recipients []string) ([]string, []age.Recipient, error) {
	rs := slices.Compact(slices.Sorted(slices.Values(recipients)))
	if len(rs) == 0 {
		return nil, nil, errors.New("no recipients: list at least one age1… recipient for the environment")
	}
	parsed := make([]age.Recipient, len(rs))
	for i, r := range rs {
		p, err := ParseRecipient(r)
		if err != nil {
			return nil, nil, err
		}
		parsed[i] = p
	}
	return rs, parsed, nil
}

// Changed reports whether Marshal would write anything different from the
// file as read (or last marshalled): a value, a name, the recipients, the
// data key, the binding, or the format of an old file.
func (o *Opened) Changed() bool {
	if o.metaChanged || !o.bound {
		return true
	}
	for _, l := range o.byName {
		if l.dirty() {
			return true
		}
	}
	return false
}

// Marshal writes the file in SOPS format. Values that did not change keep
// their sealed text, recipients that stayed keep their wrapped key, and
// when nothing changed at all the output is the file as read (if it was
// written by Marshal) and lastmodified stays. The output becomes the new
// baseline for Changed.
func (o *Opened) Marshal() ([]byte, error) {
	if len(o.recipients) == 0 {
		return nil, errors.New("no recipients: list at least one age1… recipient for the environment")
	}
	changed := o.Changed()
	if !o.bound {
		// Bind the file to its environment, first in the file.
		l := &leaf{name: bindingKey, path: []string{bindingKey}, value: o.env, typ: "str", fresh: true}
		o.doc = slices.Insert(o.doc, 0, &node{key: bindingKey, leaf: l})
		o.bound = true
		o.index()
	}
	for _, l := range o.leaves() {
		dirty := l.dirty()
		l.orig, l.fresh = l.value, false
		if l.clear {
			if dirty {
				l.text, l.kind = l.value, tree.String
			}
			continue
		}
		if dirty || l.typ == "" {
			l.typ, l.plain = "str", l.value
		}
		if l.plain == "" {
			l.text = "" // SOPS leaves an empty value as it is
		} else if l.text == "" || dirty || o.keyChanged {
			l.box = seal(o.aead, l.plain, additionalData(l.path), l.typ)
			l.text = l.box.String()
		}
	}
	if changed || o.lastModified.IsZero() {
		o.lastModified = time.Now().UTC().Truncate(time.Second)
	}
	mac := sopsMAC(&o.rules, o.leaves())
	if changed || o.mac.plain != mac || o.mac.text == "" {
		o.mac = sealedValue{text: seal(o.aead, mac, o.lastModified.UTC().Format(time.RFC3339), "str").String(), plain: mac}
	}
	out, err := o.emit()
	if err != nil {
		return nil, err
	}
	o.metaChanged, o.keyChanged = false, false
	return out, nil
}

// ambiguousKey reports whether a plain scalar s would read as something
// other than a string in YAML 1.1 or 1.2, so that it is written quoted.
func ambiguousKey(s string) bool {
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "true", "false", "on", "off", "null":
		return true
	}
	return false
}

// invalidAt is the offset of the first byte of s that is not valid UTF-8.
func invalidAt(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return i
			}
		}
	}
	return len(s)
}
