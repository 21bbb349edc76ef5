package data

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/brianvoe/gofakeit/v7"
	fakedata "github.com/brianvoe/gofakeit/v7/data"
	"github.com/jackc/pgx/v5/pgtype"
)

// colT is one column's transformation in a stream of binary COPY tuples.
type colT struct {
	idx    int
	col    Column
	rule   *Rule
	fixed  []byte // {fixed: …} in the column's binary form; nil is NULL
	maxLen int    // varchar(n) / char(n), 0 for none
	tmpl   []tmplPart
}

type tmplPart struct {
	lit string
	ref int // column index, -1 for a literal
}

// faker makes fake values from digests; one per goroutine, reseeded for
// every value, which is much cheaper than a new gofakeit.Faker each time.
type faker struct {
	pcg *rand.PCG
	f   *gofakeit.Faker
}

func newFaker() *faker {
	pcg := rand.NewPCG(1, 1)
	return &faker{pcg: pcg, f: gofakeit.NewFaker(pcg, false)}
}

// transformer rewrites tuples; one per goroutine (it reuses its HMAC and
// one output buffer per transformed column, so a row allocates nothing).
type transformer struct {
	mac  hash.Hash
	m    *pgtype.Map
	cols []colT // the transformed columns, templates last
	all  []Column
	fk   *faker
	bufs [][]byte // cols[i]'s output, valid until the next row
	pre  [][]byte // cols[i]'s digest prefix: kind ‖ 0
	sum  []byte
	nb   [8]byte
}

func newTransformer(key []byte, all []Column, cols []colT) *transformer {
	t := &transformer{mac: hmac.New(sha256.New, key), m: pgtype.NewMap(), cols: cols, all: all, fk: newFaker(),
		bufs: make([][]byte, len(cols)), pre: make([][]byte, len(cols)), sum: make([]byte, 0, sha256.Size)}
	for i := range cols {
		kind := ""
		switch r := cols[i].rule; r.Kind {
		case Fake:
			kind = "fake:" + r.Arg
		case Hash:
			kind = "hash"
		case Noise:
			kind = "noise"
		}
		t.pre[i] = append([]byte(kind), 0)
	}
	return t
}

// digest is HMAC(key, kind ‖ 0 ‖ value): the seed of every transformer, so
// equal inputs give equal outputs under one key and nothing else does.
func (t *transformer) digest(kind string, v []byte, col *Column) [32]byte {
	return t.digestPre(append([]byte(kind), 0), v, col)
}

func (t *transformer) digestPre(pre, v []byte, col *Column) [32]byte {
	t.mac.Reset()
	t.mac.Write(pre)
	t.mac.Write(t.normalize(v, col))
	t.sum = t.mac.Sum(t.sum[:0])
	var d [32]byte
	copy(d[:], t.sum)
	return d
}

// normalize makes integer keys of different widths hash alike, so a
// foreign key in int8 joins its int4 parent.
func (t *transformer) normalize(v []byte, col *Column) []byte {
	var i int64
	switch col.TypName {
	case "int2":
		i = int64(int16(binary.BigEndian.Uint16(v)))
	case "int4":
		i = int64(int32(binary.BigEndian.Uint32(v)))
	default:
		return v
	}
	binary.BigEndian.PutUint64(t.nb[:], uint64(i))
	return t.nb[:]
}

// unit is a number in [-1, 1] from a digest.
func unit(d [32]byte) float64 {
	return float64(binary.BigEndian.Uint64(d[:8])>>11)/float64(1<<53)*2 - 1
}

// row transforms fields (nil is NULL) in place; the new values stay valid
// until the next call.
func (t *transformer) row(fields [][]byte) error {
	for i := range t.cols {
		c := &t.cols[i]
		v := fields[c.idx]
		switch c.rule.Kind {
		case Template:
			t.bufs[i] = t.appendText(t.bufs[i][:0], c, t.template(c, fields))
			fields[c.idx] = t.bufs[i]
			continue
		case Null:
			fields[c.idx] = nil
			continue
		case Fixed:
			fields[c.idx] = c.fixed
			continue
		}
		if v == nil {
			continue // NULL stays NULL
		}
		out, err := t.apply(i, c, v, t.bufs[i][:0])
		if err != nil {
			return fmt.Errorf("%s: %w", c.col.Name, err)
		}
		t.bufs[i] = out
		fields[c.idx] = out
	}
	return nil
}

// apply appends cols[i]'s transformation of v to dst.
func (t *transformer) apply(i int, c *colT, v, dst []byte) ([]byte, error) {
	r := c.rule
	switch r.Kind {
	case Fake:
		d := t.digestPre(t.pre[i], v, &c.col)
		return t.cut(c, t.fk.appendFake(dst, r.Arg, d)), nil
	case Mask:
		return t.cut(c, appendMask(dst, v, r)), nil
	case Hash:
		d := t.digestPre(t.pre[i], v, &c.col)
		return t.hash(dst, c, d), nil
	case Noise:
		d := t.digestPre(t.pre[i], v, &c.col)
		return t.noise(dst, c, v, unit(d))
	}
	return append(dst, v...), nil
}

// appendText appends s in the column's binary form (text types: UTF-8),
// cut to the column's length.
func (t *transformer) appendText(dst []byte, c *colT, s string) []byte {
	return t.cut(c, append(dst, s...))
}

// cut shortens b (a column's text value) to the column's length in
// characters.
func (t *transformer) cut(c *colT, b []byte) []byte {
	if c.maxLen <= 0 || len(b) <= c.maxLen {
		return b
	}
	n := 0
	for i := range string(b) {
		if n == c.maxLen {
			return b[:i]
		}
		n++
	}
	return b
}

func (t *transformer) hash(dst []byte, c *colT, d [32]byte) []byte {
	switch c.rule.Arg {
	case "uuid":
		u := d[:16]
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		if c.col.TypName == "uuid" {
			return append(dst, u...)
		}
		dst = hex.AppendEncode(dst, u[0:4])
		dst = hex.AppendEncode(append(dst, '-'), u[4:6])
		dst = hex.AppendEncode(append(dst, '-'), u[6:8])
		dst = hex.AppendEncode(append(dst, '-'), u[8:10])
		dst = hex.AppendEncode(append(dst, '-'), u[10:16])
		return t.cut(c, dst)
	case "int":
		n := binary.BigEndian.Uint64(d[:8])
		switch c.col.TypName {
		case "int2":
			return binary.BigEndian.AppendUint16(dst, uint16(n&0x7fff))
		case "int4":
			return binary.BigEndian.AppendUint32(dst, uint32(n&0x7fffffff))
		case "int8":
			return binary.BigEndian.AppendUint64(dst, n&0x7fffffffffffffff)
		}
		return t.cut(c, strconv.AppendUint(dst, n&0x7fffffffffffffff, 10))
	case "email":
		dst = hex.AppendEncode(append(dst, "user-"...), d[:8])
		return t.cut(c, append(dst, "@example.com"...))
	}
	return t.cut(c, hex.AppendEncode(dst, d[:16]))
}

const pgEpochDays = 10957 // 1970-01-01 → 2000-01-01

func (t *transformer) noise(dst []byte, c *colT, v []byte, u float64) ([]byte, error) {
	r := c.rule
	switch c.col.TypName {
	case "date":
		days := int32(binary.BigEndian.Uint32(v))
		if days == math.MaxInt32 || days == math.MinInt32 { // ±infinity
			return append(dst, v...), nil
		}
		off := int32(math.Round(u * float64(r.Dur.Hours()/24)))
		return binary.BigEndian.AppendUint32(dst, uint32(days+off)), nil
	case "timestamp", "timestamptz":
		us := int64(binary.BigEndian.Uint64(v))
		if us == math.MaxInt64 || us == math.MinInt64 {
			return append(dst, v...), nil
		}
		off := int64(math.Round(u*r.Dur.Seconds())) * 1e6
		return binary.BigEndian.AppendUint64(dst, uint64(us+off)), nil
	case "int2":
		n := float64(int16(binary.BigEndian.Uint16(v)))
		return binary.BigEndian.AppendUint16(dst, uint16(int16(clamp(n*(1+r.Frac*u), math.MinInt16, math.MaxInt16)))), nil
	case "int4":
		n := float64(int32(binary.BigEndian.Uint32(v)))
		return binary.BigEndian.AppendUint32(dst, uint32(int32(clamp(n*(1+r.Frac*u), math.MinInt32, math.MaxInt32)))), nil
	case "int8":
		n := float64(int64(binary.BigEndian.Uint64(v)))
		return binary.BigEndian.AppendUint64(dst, uint64(int64(clamp(n*(1+r.Frac*u), -9e18, 9e18)))), nil
	case "float4":
		f := math.Float32frombits(binary.BigEndian.Uint32(v))
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(f*float32(1+r.Frac*u))), nil
	case "float8":
		f := math.Float64frombits(binary.BigEndian.Uint64(v))
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f*(1+r.Frac*u))), nil
	case "numeric":
		var n pgtype.Numeric
		if err := t.m.Scan(c.col.OID, pgtype.BinaryFormatCode, v, &n); err != nil {
			return nil, err
		}
		if n.NaN || n.InfinityModifier != pgtype.Finite {
			return append(dst, v...), nil
		}
		// exact: n × (1 + frac·u), with u to 1e-9
		num := new(big.Rat).SetFrac(n.Int, big.NewInt(1))
		if n.Exp > 0 {
			num.Mul(num, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil)))
		} else if n.Exp < 0 {
			num.Quo(num, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil)))
		}
		f := new(big.Rat).SetFloat64(1 + r.Frac*u)
		num.Mul(num, f)
		num.Mul(num, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(12), nil)))
		scaled := new(big.Int).Quo(num.Num(), num.Denom())
		return t.m.Encode(c.col.OID, pgtype.BinaryFormatCode, pgtype.Numeric{Int: scaled, Exp: -12, Valid: true}, dst)
	}
	return append(dst, v...), nil
}

func clamp(f, lo, hi float64) float64 { return math.Round(math.Max(lo, math.Min(hi, f))) }

// template fills {column} with the row's (transformed) values as text.
func (t *transformer) template(c *colT, fields [][]byte) string {
	var b strings.Builder
	for _, p := range c.tmpl {
		if p.ref < 0 {
			b.WriteString(p.lit)
			continue
		}
		b.WriteString(t.asText(&t.all[p.ref], fields[p.ref]))
	}
	return b.String()
}

func (t *transformer) asText(col *Column, v []byte) string {
	if v == nil {
		return ""
	}
	if col.Category == "S" {
		return string(v)
	}
	val, err := t.decode(col.OID, pgtype.BinaryFormatCode, v)
	if err != nil || val == nil {
		return ""
	}
	return fmt.Sprint(val)
}

// parseTemplate splits "user-{id}@example.com" into parts over cols.
func parseTemplate(s string, cols []Column) ([]tmplPart, error) {
	var out []tmplPart
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			out = append(out, tmplPart{lit: s, ref: -1})
			break
		}
		if i > 0 {
			out = append(out, tmplPart{lit: s[:i], ref: -1})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in template")
		}
		name := s[i+1 : i+j]
		ref := -1
		for k := range cols {
			if cols[k].Name == name {
				ref = k
			}
		}
		if ref < 0 {
			return nil, fmt.Errorf("template names {%s}, which is no column of the table", name)
		}
		out = append(out, tmplPart{ref: ref})
		s = s[i+j+1:]
	}
	return out, nil
}

func mask(s string, r *Rule) string { return string(appendMask(nil, []byte(s), r)) }

// appendMask appends v with every character but the first r.First and the
// last r.Last (spaces and dashes kept) replaced by r.Char.
func appendMask(dst, v []byte, r *Rule) []byte {
	ascii := true
	for _, b := range v {
		if b >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii && len(r.Char) == 1 {
		n := len(v)
		all := n <= r.First+r.Last
		for i, b := range v {
			if (all || i >= r.First && i < n-r.Last) && b != ' ' && b != '-' {
				b = r.Char[0]
			}
			dst = append(dst, b)
		}
		return dst
	}
	rs := []rune(string(v))
	ch := []rune(r.Char)[0]
	all := len(rs) <= r.First+r.Last
	for i, c := range rs {
		if (all || i >= r.First && i < len(rs)-r.Last) && c != ' ' && c != '-' {
			c = ch
		}
		dst = utf8.AppendRune(dst, c)
	}
	return dst
}

var (
	firstNames = fakedata.Person["first"]
	lastNames  = fakedata.Person["last"]
)

func pick(l []string, d []byte) string { return l[binary.BigEndian.Uint64(d)%uint64(len(l))] }

// appendClean appends s's ASCII letters, lower-cased.
func appendClean(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z':
			dst = append(dst, b)
		case b >= 'A' && b <= 'Z':
			dst = append(dst, b+'a'-'A')
		}
	}
	return dst
}

// appendFake appends a realistic value of a kind from a digest: the same
// digest gives the same value. Names, e-mails and phones are picked
// straight from the digest's bytes; the rest through a seeded gofakeit.
func (fk *faker) appendFake(dst []byte, kind string, d [32]byte) []byte {
	switch kind {
	case "email":
		// the tag keeps distinct inputs distinct
		dst = appendClean(dst, pick(firstNames, d[8:16]))
		dst = appendClean(append(dst, '.'), pick(lastNames, d[16:24]))
		dst = hex.AppendEncode(append(dst, '.'), d[:6])
		return append(dst, "@example.com"...)
	case "name":
		return append(append(append(dst, pick(firstNames, d[8:16])...), ' '), pick(lastNames, d[16:24])...)
	case "first_name":
		return append(dst, pick(firstNames, d[8:16])...)
	case "last_name":
		return append(dst, pick(lastNames, d[16:24])...)
	case "phone":
		n := binary.BigEndian.Uint32(d[:4]) % 10000000
		dst = append(dst, "+1555"...)
		for div := uint32(1000000); div > 0; div /= 10 {
			dst = append(dst, byte('0'+n/div%10))
		}
		return dst
	}
	return append(dst, fk.fake(kind, d)...)
}

// fake makes a realistic value of a kind from a digest: the same digest
// gives the same value.
func (fk *faker) fake(kind string, d [32]byte) string {
	switch kind {
	case "email", "name", "first_name", "last_name", "phone":
		return string(fk.appendFake(nil, kind, d))
	}
	fk.pcg.Seed(binary.BigEndian.Uint64(d[8:16]), binary.BigEndian.Uint64(d[16:24]))
	f := fk.f
	tag := hex.EncodeToString(d[:6])
	switch kind {
	case "ssn":
		return fmt.Sprintf("9%02d-%02d-%04d", d[0]%100, d[1]%100, binary.BigEndian.Uint16(d[2:4])%10000)
	case "card":
		return luhn(fmt.Sprintf("400000%09d", binary.BigEndian.Uint64(d[:8])%1000000000))
	case "iban":
		return iban(fmt.Sprintf("%014d", binary.BigEndian.Uint64(d[:8])%100000000000000))
	case "address":
		return f.Street() + ", " + f.City()
	case "street":
		return f.Street()
	case "city":
		return f.City()
	case "zip":
		return f.Zip()
	case "country":
		return f.Country()
	case "company":
		return f.Company()
	case "username":
		return strings.ToLower(clean(f.FirstName())) + tag
	case "url":
		return "https://example.com/" + tag
	case "ipv4", "ip":
		return fmt.Sprintf("10.%d.%d.%d", d[0], d[1], d[2])
	case "ipv6":
		return fmt.Sprintf("fd00::%x:%x", binary.BigEndian.Uint16(d[:2]), binary.BigEndian.Uint16(d[2:4]))
	case "word":
		return f.Word()
	}
	return f.LoremIpsumSentence(8)
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, s)
}

// luhn appends the check digit to digits.
func luhn(digits string) string {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		n := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 0 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return digits + strconv.Itoa((10-sum%10)%10)
}

// iban is a valid GB IBAN on the made-up bank XMPL.
func iban(account string) string {
	bban := "XMPL" + account[:6] + account[6:14]
	// move the country code and 00 to the end, letters to numbers, mod 97
	s := bban + "GB00"
	var num strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			num.WriteString(strconv.Itoa(int(r-'A') + 10))
		} else {
			num.WriteRune(r)
		}
	}
	n, _ := new(big.Int).SetString(num.String(), 10)
	check := 98 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("GB%02d%s", check, bban)
}

func (t *transformer) decode(oid uint32, format int16, v []byte) (any, error) {
	typ, ok := t.m.TypeForOID(oid)
	if !ok {
		return string(v), nil
	}
	return typ.Codec.DecodeValue(t.m, oid, format, v)
}
