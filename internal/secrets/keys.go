package secrets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/envplane/envplane/internal/fsutil"
)

// ParseRecipient parses one age recipient: X25519 (age1…) or post-quantum
// hybrid (age1pq1…), in its canonical lower-case form.
func ParseRecipient(s string) (age.Recipient, error) {
	var (
		r   age.Recipient
		str string
		err error
	)
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		var h *age.HybridRecipient
		if h, err = age.ParseHybridRecipient(s); err == nil {
			r, str = h, h.String()
		}
	case strings.HasPrefix(s, "age1"):
		var x *age.X25519Recipient
		if x, err = age.ParseX25519Recipient(s); err == nil {
			r, str = x, x.String()
		}
	default:
		return nil, fmt.Errorf("%q is not an age recipient (age1…)", short(s))
	}
	if err != nil || str != s {
		return nil, fmt.Errorf("%q is not a valid age recipient", short(s))
	}
	return r, nil
}

// short cuts text that is shown in an error: a recipient is public, but an
// identity pasted where a recipient belongs must not be shown whole.
func short(s string) string {
	if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY") {
		return "AGE-SECRET-KEY-…"
	}
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Identity sources, in the order LoadIdentities consults them.
const (
	EnvKey     = "ENVPLANE_AGE_KEY"
	EnvKeyFile = "ENVPLANE_AGE_KEY_FILE"
)

// DefaultKeyFile is the user's identity file: $XDG_CONFIG_HOME/envplane/keys.txt,
// or $HOME/.config/envplane/keys.txt; "" when neither variable is set.
func DefaultKeyFile(getenv func(string) string) string {
	if d := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "envplane", "keys.txt")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "envplane", "keys.txt")
	}
	return ""
}

// maxKeyFile bounds what is read from an identity file.
const maxKeyFile = 1 << 20

// LoadIdentities returns the user's age identities from the first source
// that is set: the text of ENVPLANE_AGE_KEY (one or more AGE-SECRET-KEY-1…
// lines; # comments and blank lines allowed), the file ENVPLANE_AGE_KEY_FILE
// names, or DefaultKeyFile. The first source that is set wins, so setting
// one of the variables is a way to act with fewer keys than keys.txt holds.
// source says where the identities came from ("" if from nowhere). No
// identity anywhere is not an error: ids is empty, and File.Open then says
// which recipients would open the file.
func LoadIdentities(getenv func(string) string) (ids []age.Identity, source string, err error) {
	if text := getenv(EnvKey); text != "" {
		ids, err := ParseIdentities(EnvKey, text)
		return ids, EnvKey, err
	}
	if file := getenv(EnvKeyFile); file != "" {
		text, err := readKeyFile(file)
		if err != nil {
			return nil, file, fmt.Errorf("%s: %w", EnvKeyFile, err)
		}
		ids, err := ParseIdentities(file, text)
		return ids, file, err
	}
	file := DefaultKeyFile(getenv)
	if file == "" {
		return nil, "", nil
	}
	text, err := readKeyFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, file, err
	}
	ids, err = parseIdentities(file, text)
	if len(ids) == 0 {
		return nil, "", err // a keys.txt without keys is no key, like none
	}
	return ids, file, err
}

func readKeyFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxKeyFile {
		return "", fmt.Errorf("%s: too large for an identity file", name)
	}
	return string(data), nil
}

// ParseIdentities parses identities text as age-keygen writes it. source
// names the text in errors, which never quote it.
func ParseIdentities(source, text string) ([]age.Identity, error) {
	ids, err := parseIdentities(source, text)
	if err == nil && len(ids) == 0 {
		return nil, fmt.Errorf("%s holds no age identity (AGE-SECRET-KEY-1…)", source)
	}
	return ids, err
}

// parseIdentities is ParseIdentities, allowing text without identities.
func parseIdentities(source, text string) ([]age.Identity, error) {
	var ids []age.Identity
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		var (
			id  age.Identity
			err error
		)
		switch up := strings.ToUpper(line); {
		case strings.HasPrefix(up, "AGE-SECRET-KEY-PQ-1"):
			id, err = age.ParseHybridIdentity(line)
		case strings.HasPrefix(up, "AGE-SECRET-KEY-1"):
			id, err = age.ParseX25519Identity(line)
		default:
			err = errors.New("unsupported")
		}
		if err != nil {
			// age's own message may quote part of the key: leave it out.
			return nil, fmt.Errorf("%s: line %d is not an age identity (AGE-SECRET-KEY-1…)", source, i+1)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// GenerateIdentity makes a new X25519 identity. text is what age-keygen
// writes (two comment lines and the AGE-SECRET-KEY-1… line), for a file of
// mode 0600; recipient is the public age1… key to list in envplane.yaml.
func GenerateIdentity() (text, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", "", err
	}
	recipient = id.Recipient().String()
	text = fmt.Sprintf("# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), recipient, id.String())
	return text, recipient, nil
}

// recipientOf is the age1… string of a native identity, "" for others.
func recipientOf(id age.Identity) string {
	switch id := id.(type) {
	case *age.X25519Identity:
		return id.Recipient().String()
	case *age.HybridIdentity:
		return id.Recipient().String()
	}
	return ""
}

// ReadIdentityFile reads a file of age identities that must be private to
// its owner, as a server's identity file must (like its master key file):
// one that group or others may access is refused with the chmod that
// fixes it. Errors never quote the file's text.
func ReadIdentityFile(path string) ([]age.Identity, error) {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(path)), "AGE-SECRET-KEY-") {
		// The key itself where a path belongs: an open error would print it.
		return nil, errors.New("age identity file: the setting holds an age identity, not a file path; pass the key in ENVPLANE_AGE_IDENTITY or put it in a file (mode 0600)")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age identity file: %w", err)
	}
	defer f.Close()
	if err := fsutil.CheckPrivate(f, path, "age identity"); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("age identity file: %w", err)
	}
	defer clear(data)
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: too large for an identity file", path)
	}
	return ParseIdentities(path, string(data))
}

// Recipients are the age1… recipients of ids, in order: what to list in a
// workspace's secrets.recipients so that ids open its files. Identities
// that are not age's own (plugins) are left out.
func Recipients(ids []age.Identity) []string {
	var out []string
	for _, id := range ids {
		if r := recipientOf(id); r != "" {
			out = append(out, r)
		}
	}
	return out
}
