package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
)

const (
	keySize   = 32 // AES-256
	nonceSize = 12
	tagSize   = 16
	macAD     = "envplane.mac"
)

// box is one sealed value: ENC[AES256_GCM,data:…,iv:…,tag:…,type:T], T one
// of SOPS's types (str, int, float, bool, bytes, time).
type box struct {
	data, iv, tag []byte
	typ           string
}

// sopsNonceSize is the nonce SOPS writes; the old envplane format wrote
// nonceSize. Both open.
const sopsNonceSize = 32

var b64 = base64.StdEncoding.Strict()

// parseBox parses the ENC[…] form. It accepts exactly what String writes, so
// that a value read and written back keeps its text.
func parseBox(s string) (box, error) {
	var a boxArena
	return a.parse(s)
}

// boxArena decodes the fields of many boxes into a few shared buffers
// instead of one allocation (and a copy of the text) per value.
type boxArena struct {
	chunk   int    // bytes to allocate at a time; 0 for each box its own
	buf     []byte // decoded fields; a new chunk when full, never regrown
	scratch []byte // the base64 text being decoded
}

// alloc returns n bytes of the arena.
func (a *boxArena) alloc(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(n, a.chunk))
	}
	b := a.buf[len(a.buf) : len(a.buf)+n]
	a.buf = a.buf[:len(a.buf)+n]
	return b
}

// parse is parseBox. The data and tag are decoded next to each other (data
// then tag), so that open reads the ciphertext in place.
func (a *boxArena) parse(s string) (box, error) {
	bad := func(what string) (box, error) {
		return box{}, errors.New("malformed ENC[AES256_GCM,data:…,iv:…,tag:…,type:str] value: " + what)
	}
	rest, ok1 := strings.CutPrefix(s, "ENC[AES256_GCM,")
	rest, ok2 := strings.CutSuffix(rest, "]")
	var typ string
	if ok1 && ok2 {
		i := strings.LastIndex(rest, ",type:")
		if i < 0 {
			return bad("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
		}
		rest, typ = rest[:i], rest[i+len(",type:"):]
		switch typ {
		case "str", "int", "float", "bool", "bytes", "time":
		default:
			return bad("type is not one of str, int, float, bool, bytes, time")
		}
	}
	if !ok1 || !ok2 {
		switch {
		case !strings.HasPrefix(s, "ENC["):
			return bad("it does not start with ENC[")
		case !strings.HasSuffix(s, "]"):
			return bad("it does not end with ]")
		}
		return bad("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
	}
	// The text must be one plain token: characters of encChars only, checked
	// before anything else is reported. Scanning for them separately costs
	// as much as decoding, so it happens only on the way to an error: the
	// strict decoder accepts base64 characters only, and skips line breaks,
	// which are looked for here.
	token := rest
	bad2 := func(what string) (box, error) {
		if !allIn(token, &encChars) {
			return bad("unexpected characters")
		}
		return bad(what)
	}
	if strings.IndexByte(rest, '\n') >= 0 || strings.IndexByte(rest, '\r') >= 0 {
		return bad("unexpected characters")
	}
	var text [3]string
	for i, field := range [3]string{"data:", "iv:", "tag:"} {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, field); !ok {
			return bad2("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
		}
		if i < 2 {
			if text[i], rest, ok = strings.Cut(rest, ","); !ok {
				return bad2("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
			}
		} else {
			text[i] = rest
		}
	}
	// One piece of the arena for the three fields, laid out data, tag, iv;
	// decoded in the order of the text, so that the first bad field is named.
	tagLen := b64.DecodedLen(len(text[2]))
	buf := a.alloc(b64.DecodedLen(len(text[0])) + tagLen + b64.DecodedLen(len(text[1])))
	var raw [3][]byte
	at := 0
	for i, name := range [3]string{"data", "iv", "tag"} {
		switch i {
		case 1:
			at = len(raw[0]) + tagLen
		case 2:
			at = len(raw[0])
		}
		a.scratch = append(a.scratch[:0], text[i]...)
		n, err := b64.Decode(buf[at:], a.scratch)
		if err != nil {
			return bad2(name + " is not standard base64")
		}
		raw[i] = buf[at : at+n : at+n]
	}
	switch {
	case len(raw[1]) != nonceSize && len(raw[1]) != sopsNonceSize:
		return bad("iv is not 12 or 32 bytes")
	case len(raw[2]) != tagSize:
		return bad("tag is not 16 bytes")
	}
	// data keeps the capacity that reaches over the tag (see sealed).
	data := buf[: len(raw[0]) : len(raw[0])+len(raw[2])]
	return box{data: data, iv: raw[1], tag: raw[2], typ: typ}, nil
}

func (b box) String() string {
	var sb strings.Builder
	sb.Grow(len("ENC[AES256_GCM,data:,iv:,tag:,type:str]") + b64.EncodedLen(len(b.data)) + 16 + 24)
	sb.WriteString("ENC[AES256_GCM,data:")
	sb.WriteString(b64.EncodeToString(b.data))
	sb.WriteString(",iv:")
	sb.WriteString(b64.EncodeToString(b.iv))
	sb.WriteString(",tag:")
	sb.WriteString(b64.EncodeToString(b.tag))
	sb.WriteString(",type:")
	if b.typ == "" {
		sb.WriteString("str")
	} else {
		sb.WriteString(b.typ)
	}
	sb.WriteString("]")
	return sb.String()
}

// aeads is AES-256-GCM under one data key, for the two nonce sizes.
type aeads struct {
	legacy, sops cipher.AEAD
}

func newAEAD(key []byte) *aeads {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("secrets: data key is not 32 bytes") // callers check the length
	}
	legacy, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	sops, err := cipher.NewGCMWithNonceSize(block, sopsNonceSize)
	if err != nil {
		panic(err)
	}
	return &aeads{legacy: legacy, sops: sops}
}

func (a *aeads) forNonce(n int) cipher.AEAD {
	if n == nonceSize {
		return a.legacy
	}
	return a.sops
}

// seal encrypts plain with a fresh random 32-byte nonce, as SOPS does.
func seal(a *aeads, plain, ad, typ string) box {
	iv := make([]byte, sopsNonceSize)
	rand.Read(iv)
	out := a.sops.Seal(nil, iv, []byte(plain), []byte(ad))
	n := len(out) - tagSize
	return box{data: out[:n:len(out)], iv: iv, tag: out[n:], typ: typ}
}

// sealed is the ciphertext followed by the tag, as AES-GCM opens it: in
// place when the tag follows data in memory (as parseBox and seal leave
// them), else a copy.
func (b box) sealed() []byte {
	n := len(b.data)
	if len(b.tag) == tagSize && cap(b.data)-n >= tagSize {
		if ct := b.data[:n+tagSize]; &ct[n] == &b.tag[0] {
			return ct
		}
	}
	ct := make([]byte, 0, n+tagSize)
	return append(append(ct, b.data...), b.tag...)
}

// open decrypts and authenticates b.
func (b box) open(a *aeads, ad string) (string, error) {
	plain, err := b.openTo(a, nil, []byte(ad))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// openTo decrypts and authenticates b, appending the plaintext to dst.
func (b box) openTo(a *aeads, dst, ad []byte) ([]byte, error) {
	return a.forNonce(len(b.iv)).Open(dst, b.iv, b.sealed(), ad)
}

// valueAD is the additional data of a value: its name and a colon, so that a
// sealed value moved to another name fails authentication.
func valueAD(name string) string { return name + ":" }

// computeMAC is the hex HMAC-SHA256 described in the package comment.
// names must be sorted.
func computeMAC(key []byte, env string, version int, names []string, value func(string) string) string {
	m := hmac.New(sha256.New, key)
	writeLP(m, env)
	writeLP(m, strconv.Itoa(version))
	for _, n := range names {
		writeLP(m, n)
		writeLP(m, value(n))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// writeLP writes s prefixed with its length, so that no two sequences of
// fields hash alike.
func writeLP(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	io.WriteString(h, s)
}
