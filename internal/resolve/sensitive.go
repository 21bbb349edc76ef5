package resolve

import "strings"

// DefaultSensitive are the key-name fragments that mark a value as sensitive
// (compared case-insensitively, ignoring '_' and '-').
var DefaultSensitive = []string{
	"password", "passwd", "secret", "token", "apikey", "privatekey",
	"encryptionkey", "servicekey", "credential", "ssn", "accountnumber",
}

// Sensitivity decides which keys hold sensitive values.
type Sensitivity struct {
	patterns []string
}

// NewSensitivity combines the defaults with a workspace's extra patterns.
func NewSensitivity(extra []string) Sensitivity {
	ps := make([]string, 0, len(DefaultSensitive)+len(extra))
	ps = append(ps, DefaultSensitive...)
	for _, e := range extra {
		if n := normalizeKey(e); n != "" {
			ps = append(ps, n)
		}
	}
	return Sensitivity{patterns: ps}
}

func normalizeKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_' || c == '-':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Key reports whether one key name is sensitive.
func (s Sensitivity) Key(key string) bool {
	var buf [128]byte
	n := 0
	for i := 0; i < len(key) && n < len(buf); i++ {
		c := key[i]
		switch {
		case c == '_' || c == '-':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	norm := buf[:n]
	if len(key) > len(buf) {
		// Rare long keys: normalise the whole name rather than a prefix.
		norm = []byte(normalizeKey(key))
	}
	for _, p := range s.patterns {
		if containsBytes(norm, p) {
			return true
		}
	}
	return false
}

func containsBytes(hay []byte, needle string) bool {
	if len(needle) == 0 || len(needle) > len(hay) {
		return len(needle) == 0
	}
	for i := 0; i+len(needle) <= len(hay); i++ {
		if string(hay[i:i+len(needle)]) == needle {
			return true
		}
	}
	return false
}

// Path reports whether a dotted key path is sensitive: any of its keys is.
func (s Sensitivity) Path(path string) bool {
	for path != "" {
		seg := path
		if i := strings.IndexByte(path, '.'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if s.Key(seg) {
			return true
		}
	}
	return false
}
