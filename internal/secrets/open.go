package secrets

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/errs"
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
// changeable, and marshalled back with stable output. It is not safe for
// concurrent use.
type Opened struct {
	env          string
	version      int
	key          []byte
	aead         cipher.AEAD
	values       map[string]string
	sealed       map[string]sealedValue // as last read or written, under key
	mac          sealedValue
	recipients   []string          // sorted
	wrapped      map[string]string // recipient → armored age file holding key
	lastModified time.Time
	metaChanged  bool // recipients or key changed since last read or written
}

// sealedValue is sealed text and the plaintext it seals, so that Marshal
// reuses the text while the plaintext stays the same.
type sealedValue struct {
	text, plain string
}

// Open unwraps the data key with the first identity that matches a
// recipient, decrypts every value and verifies the MAC.
func (f *File) Open(ids []age.Identity) (*Opened, error) {
	key, err := f.unwrap(ids)
	if err != nil {
		return nil, err
	}
	o := &Opened{
		env:          f.Environment,
		version:      f.Version,
		key:          key,
		aead:         newAEAD(key),
		values:       make(map[string]string, len(f.entries)),
		sealed:       make(map[string]sealedValue, len(f.entries)),
		recipients:   slices.Clone(f.Recipients),
		wrapped:      maps.Clone(f.wrapped),
		lastModified: f.LastModified,
	}
	names := make([]string, len(f.entries))
	for i, e := range f.entries {
		v, err := e.box.open(o.aead, valueAD(e.name))
		if err != nil {
			return nil, &TamperError{Pos: e.pos, Name: e.name,
				Reason: "the value was changed, or moved here from another name"}
		}
		names[i] = e.name
		o.values[e.name] = v
		o.sealed[e.name] = sealedValue{text: e.text, plain: v}
	}
	mac, err := f.mac.open(o.aead, macAD)
	if err != nil {
		return nil, &TamperError{Pos: f.macPos, Reason: "the MAC was changed"}
	}
	want := computeMAC(key, o.env, o.version, names, func(n string) string { return o.values[n] })
	if subtle.ConstantTimeCompare([]byte(mac), []byte(want)) != 1 {
		return nil, &TamperError{Pos: f.macPos,
			Reason: "the MAC does not match: a secret was added or removed, or a value or the environment was changed"}
	}
	o.mac = sealedValue{text: f.macText, plain: mac}
	return o, nil
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
	for _, id := range ids {
		if r := recipientOf(id); r != "" {
			mine[r] = true
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
func unwrapKey(armored string, ids []age.Identity) ([]byte, error) {
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

// wrapKey seals key for one recipient as an armored age file.
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
	o := &Opened{env: env, version: Version, values: map[string]string{}, sealed: map[string]sealedValue{}}
	if err := o.Rotate(recipients); err != nil {
		return nil, err
	}
	return o, nil
}

// Environment is the environment whose secrets these are.
func (o *Opened) Environment() string { return o.env }

// Recipients returns the recipients the data key is wrapped for, sorted.
func (o *Opened) Recipients() []string { return slices.Clone(o.recipients) }

// Names returns the secret names, sorted.
func (o *Opened) Names() []string { return slices.Sorted(maps.Keys(o.values)) }

// LastModified is when the contents last changed, as the file says (or as
// the last Marshal set it); zero for a new file not yet marshalled.
func (o *Opened) LastModified() time.Time { return o.lastModified }

// Get returns one value.
func (o *Opened) Get(name string) (string, bool) {
	v, ok := o.values[name]
	return v, ok
}

// Values returns a copy of all values by name.
func (o *Opened) Values() map[string]string { return maps.Clone(o.values) }

// Set sets a value. The value is not part of any error.
func (o *Opened) Set(name, value string) error {
	if !validName(name) {
		return errs.E(errs.Invalid, "%q is not a valid secret name (letters, digits, _ . and -, not starting with a digit, . or -; not %q)", short(name), metaKey)
	}
	if !utf8.ValidString(value) {
		// Refused, never repaired: a secret is stored exactly or not at all.
		return errs.E(errs.Invalid, "secret %s: the value is not valid UTF-8 (byte %d); secret values are text and are stored exactly, never repaired: encode binary values (base64, hex) first",
			name, invalidAt(value))
	}
	o.values[name] = value
	return nil
}

// Delete removes a value and reports whether it was there.
func (o *Opened) Delete(name string) bool {
	_, ok := o.values[name]
	delete(o.values, name)
	return ok
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
	o.sealed, o.mac = map[string]sealedValue{}, sealedValue{}
	o.metaChanged = true
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
// file as read (or last marshalled): a value, a name, the recipients or the
// data key.
func (o *Opened) Changed() bool {
	if o.metaChanged || len(o.values) != len(o.sealed) {
		return true
	}
	for n, v := range o.values {
		if s, ok := o.sealed[n]; !ok || s.plain != v {
			return true
		}
	}
	return false
}

// Marshal writes the file. Values that did not change keep their sealed
// text, recipients that stayed keep their wrapped key, and when nothing
// changed at all the output is the file as read (if it was written by
// Marshal) and lastmodified stays. The output becomes the new baseline for
// Changed.
func (o *Opened) Marshal() ([]byte, error) {
	if len(o.recipients) == 0 {
		return nil, errors.New("no recipients: list at least one age1… recipient for the environment")
	}
	if o.Changed() || o.lastModified.IsZero() {
		o.lastModified = time.Now().UTC().Truncate(time.Second)
	}
	names := o.Names()
	sealed := make(map[string]sealedValue, len(names))
	size := 256
	for _, n := range names {
		v := o.values[n]
		s, ok := o.sealed[n]
		if !ok || s.plain != v {
			s = sealedValue{text: seal(o.aead, v, valueAD(n)).String(), plain: v}
		}
		sealed[n] = s
		size += len(n) + len(s.text) + 4
	}
	mac := computeMAC(o.key, o.env, o.version, names, func(n string) string { return o.values[n] })
	if o.mac.plain != mac || o.mac.text == "" {
		o.mac = sealedValue{text: seal(o.aead, mac, macAD).String(), plain: mac}
	}
	for _, r := range o.recipients {
		size += len(r) + len(o.wrapped[r]) + 64
	}

	var b bytes.Buffer
	b.Grow(size)
	fmt.Fprintf(&b, "# envplane secrets for environment %s. Names are in clear; values are sealed.\n", o.env)
	fmt.Fprintf(&b, "# Edit with: envplane secrets edit --env %s\n", o.env)
	for _, n := range names {
		if ambiguousKey(n) {
			b.WriteString(`"` + n + `"`)
		} else {
			b.WriteString(n)
		}
		b.WriteString(": ")
		b.WriteString(sealed[n].text)
		b.WriteByte('\n')
	}
	b.WriteString(metaKey + ":\n")
	fmt.Fprintf(&b, "  version: %d\n", o.version)
	if ambiguousKey(o.env) {
		fmt.Fprintf(&b, "  environment: %q\n", o.env)
	} else {
		fmt.Fprintf(&b, "  environment: %s\n", o.env)
	}
	b.WriteString("  recipients:\n")
	for _, r := range o.recipients {
		fmt.Fprintf(&b, "    - recipient: %s\n      enc: |\n", r)
		for line := range strings.SplitSeq(strings.TrimSuffix(o.wrapped[r], "\n"), "\n") {
			b.WriteString("        ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "  mac: %s\n", o.mac.text)
	fmt.Fprintf(&b, "  lastmodified: %q\n", o.lastModified.UTC().Format(time.RFC3339))
	o.sealed, o.metaChanged = sealed, false
	return b.Bytes(), nil
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
