package secrets

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestParseBoxSameAsBefore checks parseBox against its earlier, simpler
// form (one allocation per box, the characters checked first) on a valid
// box with every character of a set inserted at, or replacing, each
// position, and every byte deleted: the same errors, the same fields.
func TestParseBoxSameAsBefore(t *testing.T) {
	a := newAEAD(bytes.Repeat([]byte{1}, keySize))
	valid := seal(a, "a value", "NAME:", "str").String()
	inputs := []string{valid, "", "ENC[", "ENC[]", "ENC[AES256_GCM,]", valid[:len(valid)-1]}
	for i := range len(valid) + 1 {
		for _, c := range "!\n\r ,:=A+/_-]" {
			inputs = append(inputs, valid[:i]+string(c)+valid[i:])
			if i < len(valid) {
				inputs = append(inputs, valid[:i]+string(c)+valid[i+1:])
			}
		}
		if i < len(valid) {
			inputs = append(inputs, valid[:i]+valid[i+1:])
		}
	}
	// Two fields wrong at once: which one is named.
	for i := range len(valid) {
		for j := i + 1; j < len(valid); j++ {
			for _, c := range "!-\n" {
				inputs = append(inputs, valid[:i]+"-"+valid[i+1:j]+string(c)+valid[j+1:])
			}
		}
	}
	for _, in := range inputs {
		got, err := parseBox(in)
		want, wantErr := parseBoxReference(in)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%q: error %v, before %v", in, err, wantErr)
		}
		if err == nil && (!bytes.Equal(got.data, want.data) || !bytes.Equal(got.iv, want.iv) || !bytes.Equal(got.tag, want.tag) || got.typ != want.typ) {
			t.Fatalf("%q: %+v, before %+v", in, got, want)
		}
		if err == nil && got.String() != in {
			t.Fatalf("%q: written back as %q", in, got.String())
		}
	}
}

// parseBoxReference is parseBox before the arena: it parses the ENC[…] form. It accepts exactly what String writes, so
// that a value read and written back keeps its text.
func parseBoxReference(s string) (box, error) {
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
	case len(raw[1]) != nonceSize && len(raw[1]) != sopsNonceSize:
		return bad("iv is not 12 or 32 bytes")
	case len(raw[2]) != tagSize:
		return bad("tag is not 16 bytes")
	}
	return box{data: raw[0], iv: raw[1], tag: raw[2], typ: typ}, nil
}

// TestPrintableLines checks the eight-bytes-at-a-time scan against the byte
// loop it replaced, for every byte value at every position of inputs of
// several lengths.
func TestPrintableLines(t *testing.T) {
	naive := func(data []byte) bool {
		for _, c := range data {
			if c != '\n' && (c < 0x20 || c >= 0x7f) {
				return false
			}
		}
		return true
	}
	for _, base := range []string{"", "a", "abc: ENC[x]\n", strings.Repeat("SERVICE_001: ENC[AES256_GCM,data:+/=]\n", 3)} {
		for i := range len(base) + 1 {
			for c := range 256 {
				for _, data := range [][]byte{
					[]byte(base[:i] + string(byte(c)) + base[i:]),
					append([]byte(base[:i]), append([]byte{byte(c), byte(c)}, base[i:]...)...),
				} {
					if got, want := printableLines(data), naive(data); got != want {
						t.Fatalf("%q: %v, want %v", data, got, want)
					}
				}
			}
		}
	}
}
