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

// box is one sealed string: ENC[AES256_GCM,data:…,iv:…,tag:…,type:str].
type box struct {
	data, iv, tag []byte
}

var b64 = base64.StdEncoding.Strict()

// parseBox parses the ENC[…] form. It accepts exactly what String writes, so
// that a value read and written back keeps its text.
func parseBox(s string) (box, error) {
	bad := func(what string) (box, error) {
		return box{}, errors.New("malformed ENC[AES256_GCM,data:…,iv:…,tag:…,type:str] value: " + what)
	}
	rest, ok1 := strings.CutPrefix(s, "ENC[AES256_GCM,")
	rest, ok2 := strings.CutSuffix(rest, ",type:str]")
	if !ok1 || !ok2 {
		switch {
		case !strings.HasPrefix(s, "ENC["):
			return bad("it does not start with ENC[")
		case !strings.HasSuffix(s, "]"):
			return bad("it does not end with ]")
		case !ok1:
			return bad("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
		}
		return bad("type is not str")
	}
	// base64 decoding skips line breaks; the text must be one plain token.
	if !allIn(rest, &encChars) {
		return bad("unexpected characters")
	}
	var text [3]string
	for i, field := range [3]string{"data:", "iv:", "tag:"} {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, field); !ok {
			return bad("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
		}
		if i < 2 {
			if text[i], rest, ok = strings.Cut(rest, ","); !ok {
				return bad("expected AES256_GCM and the four fields data, iv, tag and type, in that order")
			}
		} else {
			text[i] = rest
		}
	}
	// One buffer for all three fields.
	buf := make([]byte, b64.DecodedLen(len(text[0]))+b64.DecodedLen(len(text[1]))+b64.DecodedLen(len(text[2])))
	var raw [3][]byte
	for i, name := range [3]string{"data", "iv", "tag"} {
		n, err := b64.Decode(buf, []byte(text[i]))
		if err != nil {
			return bad(name + " is not standard base64")
		}
		raw[i], buf = buf[:n:n], buf[n:]
	}
	switch {
	case len(raw[1]) != nonceSize:
		return bad("iv is not 12 bytes")
	case len(raw[2]) != tagSize:
		return bad("tag is not 16 bytes")
	}
	return box{data: raw[0], iv: raw[1], tag: raw[2]}, nil
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
	sb.WriteString(",type:str]")
	return sb.String()
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("secrets: data key is not 32 bytes") // callers check the length
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// seal encrypts plain with a fresh random nonce.
func seal(aead cipher.AEAD, plain, ad string) box {
	iv := make([]byte, nonceSize)
	rand.Read(iv)
	out := aead.Seal(nil, iv, []byte(plain), []byte(ad))
	n := len(out) - tagSize
	return box{data: out[:n:n], iv: iv, tag: out[n:]}
}

// open decrypts and authenticates b.
func (b box) open(aead cipher.AEAD, ad string) (string, error) {
	ct := make([]byte, 0, len(b.data)+tagSize)
	ct = append(append(ct, b.data...), b.tag...)
	plain, err := aead.Open(ct[:0], b.iv, ct, []byte(ad))
	if err != nil {
		return "", err
	}
	return string(plain), nil
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
