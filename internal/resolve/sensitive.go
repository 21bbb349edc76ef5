package resolve

import "strings"

// DefaultSensitive are the words that mark a value as sensitive (DESIGN §3).
// A word matches whole camelCase, snake_case or kebab-case segments at the
// end of a key name, compared case-insensitively: "apiKey" is api+key.
var DefaultSensitive = []string{
	"password", "passwd", "secret", "token", "apikey", "privatekey",
	"encryptionkey", "servicekey", "credential", "ssn", "accountnumber",
}

// Sensitivity decides which keys hold sensitive values.
//
// A key is sensitive when its last segments spell one of the words:
// token, apiToken, db_password, client-secret, JWT_SECRET and privateKey
// are; tokensPerMinute, maxTokens, secretaryName and passwordMinLength are
// not (the word is not at the end, or is only part of a segment). Two
// refinements keep real credentials in: a final "key" or "value" segment
// may follow the word (secretKey, AWS_SECRET_KEY, tokenValue), and a key
// that is exactly the plural of a word (secrets, credentials, tokens) is
// sensitive, as is everything under it. Trailing number segments are
// ignored (password2, TOKEN_1).
type Sensitivity struct {
	patterns []string
}

// NewSensitivity combines the defaults with a workspace's extra patterns,
// which match the same way (webhook matches alerts.webhook and slackWebhook,
// not webhookTimeout).
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

// normalizeKey lower-cases k and drops separators and other punctuation.
func normalizeKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c >= 0x80:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// maxSegments bounds the segments remembered per key; longer keys keep
// their last ones, which are the ones that matter.
const maxSegments = 32

// segments is a key name lower-cased without separators (norm) and the
// offsets in norm where each of its words starts.
type segments struct {
	norm   []byte
	starts *[maxSegments]int
	n      int
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// splitKey appends key to dst lower-cased without separators, recording in
// starts where each word begins: words break at separators, at lower→Upper
// (apiKey), before the last capital of a run followed by a lower-case
// letter (JWTSecret → JWT Secret) and between letters and digits.
func splitKey(dst []byte, starts *[maxSegments]int, key string) segments {
	s := segments{norm: dst[:0], starts: starts}
	newWord := true
	var prev byte
	for i := 0; i < len(key); i++ {
		c := key[i]
		letter := isLower(c) || isUpper(c) || c >= 0x80
		if !letter && !isDigit(c) {
			newWord = true // '_', '-', '.', space and other punctuation
			prev = 0
			continue
		}
		if !newWord && prev != 0 {
			switch {
			case isLower(prev) && isUpper(c):
				newWord = true
			case isUpper(prev) && isUpper(c) && i+1 < len(key) && isLower(key[i+1]):
				newWord = true
			case isDigit(prev) != isDigit(c):
				newWord = true
			}
		}
		if newWord {
			if s.n == maxSegments {
				copy(starts[:], starts[1:])
				s.n--
			}
			starts[s.n] = len(s.norm)
			s.n++
			newWord = false
		}
		if isUpper(c) {
			c += 'a' - 'A'
		}
		s.norm = append(s.norm, c)
		prev = key[i]
	}
	return s
}

// trimDigits drops trailing all-digit segments.
func (s *segments) trimDigits() {
	for s.n > 0 {
		for _, c := range s.norm[s.starts[s.n-1]:] {
			if !isDigit(c) {
				return
			}
		}
		s.norm = s.norm[:s.starts[s.n-1]]
		s.n--
	}
}

// endsWith reports whether norm ends with p starting at a word boundary.
func (s *segments) endsWith(p string) bool {
	if len(p) == 0 || len(p) > len(s.norm) || string(s.norm[len(s.norm)-len(p):]) != p {
		return false
	}
	at := len(s.norm) - len(p)
	for i := s.n - 1; i >= 0; i-- {
		if s.starts[i] == at {
			return true
		}
		if s.starts[i] < at {
			return false
		}
	}
	return false
}

// cut drops the trailing words spelling p, if they do and words remain.
func (s *segments) cut(p string) bool {
	if !s.endsWith(p) || len(p) == len(s.norm) {
		return false
	}
	at := len(s.norm) - len(p)
	s.norm = s.norm[:at]
	for s.n > 0 && s.starts[s.n-1] >= at {
		s.n--
	}
	return true
}

// isPlural reports whether the whole name is p followed by "s".
func (s *segments) isPlural(p string) bool {
	n := len(s.norm)
	return n == len(p)+1 && s.norm[n-1] == 's' && string(s.norm[:n-1]) == p
}

// suffixes may follow a sensitive word: secretKey, AWS_SECRET_ACCESS_KEY,
// tokenValue.
var suffixes = []string{"accesskey", "key", "value"}

// Key reports whether one key name is sensitive.
func (s Sensitivity) Key(key string) bool {
	var buf [128]byte
	var starts [maxSegments]int
	seg := splitKey(buf[:0], &starts, key)
	seg.trimDigits()
	if seg.n == 0 {
		return false
	}
	if s.matches(&seg, true) {
		return true
	}
	for _, suf := range suffixes {
		cut := seg
		if cut.cut(suf) && s.matches(&cut, false) {
			return true
		}
	}
	return false
}

func (s Sensitivity) matches(seg *segments, plural bool) bool {
	for _, p := range s.patterns {
		if seg.endsWith(p) || (plural && seg.isPlural(p)) {
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
