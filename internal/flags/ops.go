package flags

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/semver"
)

func opIn(st *state, xs []val) val {
	if len(xs) == 0 {
		st.fail(ErrParse, "in: expects a value and a string or array")
		return null
	}
	a, b := xs[0], null
	if len(xs) > 1 {
		b = xs[1]
	}
	if b.k == kStr {
		if a.k != kStr {
			st.fail(ErrParse, "in: looking for a "+a.kindName()+" in a string")
			return null
		}
		return boolVal(strings.Contains(b.s, a.s))
	}
	if b.k != kArr {
		return boolVal(false)
	}
	for _, e := range b.a {
		if r, ok := e.([]any); ok {
			// [lo, hi]: an inclusive range
			if len(r) < 2 {
				st.fail(ErrParse, "in: a range needs two bounds")
				return null
			}
			x, lo, hi := a.num(st, "in"), fromAny(st, r[0]).num(st, "in"), fromAny(st, r[1]).num(st, "in")
			if x >= lo && hi >= x {
				return boolVal(true)
			}
			continue
		}
		ev := fromAny(st, e)
		switch a.k {
		case kNum:
			if ev.num(st, "in") == a.n {
				return boolVal(true)
			}
		case kStr:
			if ev.k == kStr && ev.s == a.s {
				return boolVal(true)
			}
		case kBool:
			if ev.k == kBool && ev.b == a.b {
				return boolVal(true)
			}
		case kNull:
			if ev.k == kNull {
				return boolVal(true)
			}
		default:
			if ev.k == a.k {
				st.fail(ErrParse, "in: cannot compare "+a.kindName()+"s")
				return null
			}
		}
	}
	return boolVal(false)
}

func opCat(st *state, xs []val) val {
	switch len(xs) {
	case 0:
		return strVal("")
	case 1:
		return strVal(xs[0].str(st, "cat"))
	}
	var b strings.Builder
	for _, x := range xs {
		b.WriteString(x.str(st, "cat"))
	}
	// The library flagd uses trims the result of joining several values.
	return strVal(strings.TrimSpace(b.String()))
}

func opSubstr(st *state, xs []val) val {
	if len(xs) < 2 {
		st.fail(ErrParse, "substr: expects a string and a start")
		return null
	}
	s := xs[0].str(st, "substr")
	from := int(xs[1].num(st, "substr"))
	if utf8.RuneCountInString(s) == len(s) {
		return strVal(substr(s, from, xs, st, len(s), func(i, j int) string { return s[i:j] }))
	}
	runes := []rune(s)
	return strVal(substr(s, from, xs, st, len(runes), func(i, j int) string { return string(runes[i:j]) }))
}

func substr(s string, from int, xs []val, st *state, n int, slice func(i, j int) string) string {
	length := n
	if from < 0 {
		from += n
	}
	if from < 0 || from > n {
		return s
	}
	if len(xs) == 3 {
		length = int(xs[2].num(st, "substr"))
	}
	var to int
	if length < 0 {
		to = n + length
	} else {
		to = from + length
	}
	if to > n {
		to = n
	}
	if to < from {
		st.fail(ErrParse, "substr: the end is before the start")
		return ""
	}
	return slice(from, to)
}

func opAdd(st *state, xs []val) val {
	sum := 0.0
	for _, x := range xs {
		sum += x.num(st, "+")
	}
	return numVal(sum)
}

func opSub(st *state, xs []val) val {
	switch len(xs) {
	case 0:
		return numVal(0)
	case 1:
		return numVal(-xs[0].num(st, "-"))
	}
	r := xs[0].num(st, "-")
	for _, x := range xs[1:] {
		r -= x.num(st, "-")
	}
	return numVal(r)
}

func opMul(st *state, xs []val) val {
	r := 1.0
	for _, x := range xs {
		r *= x.num(st, "*")
	}
	return numVal(r)
}

func opDiv(st *state, xs []val) val {
	if len(xs) == 0 {
		return numVal(0)
	}
	r := xs[0].num(st, "/")
	for _, x := range xs[1:] {
		r /= x.num(st, "/")
	}
	return numVal(r)
}

func opMod(st *state, xs []val) val {
	if len(xs) < 2 {
		st.fail(ErrParse, "%: expects two numbers")
		return null
	}
	return numVal(math.Mod(xs[0].num(st, "%"), xs[1].num(st, "%")))
}

func opAbs(st *state, xs []val) val {
	if len(xs) == 0 {
		st.fail(ErrParse, "abs: expects a number")
		return null
	}
	return numVal(math.Abs(xs[0].num(st, "abs")))
}

func minMax(st *state, xs []val, op string, better func(cur, x float64) bool) val {
	if len(xs) == 0 {
		return null
	}
	r := xs[0].num(st, op)
	for _, x := range xs[1:] {
		if n := x.num(st, op); better(r, n) {
			r = n
		}
	}
	return numVal(r)
}

func opMerge(_ *state, xs []val) val {
	out := make([]any, 0, len(xs))
	for _, x := range xs {
		if x.k == kArr {
			out = append(out, x.a...)
			continue
		}
		out = append(out, x.toAny())
	}
	return arrVal(out)
}

// present reports whether the variable a missing/missing_some name
// names holds a value.
func present(st *state, name val) bool {
	var path string
	switch name.k {
	case kStr:
		path = name.s
	case kNum:
		path = strconv.FormatFloat(name.n, 'f', -1, 64)
	default:
		st.fail(ErrParse, "missing: variable names must be strings, got "+name.kindName())
		return true
	}
	return st.lookupPath(path).k != kNull
}

func opMissing(st *state, xs []val) val {
	out := make([]any, 0)
	for _, x := range xs {
		if !present(st, x) {
			out = append(out, x.toAny())
		}
	}
	return arrVal(out)
}

func opMissingSome(st *state, xs []val) val {
	if len(xs) < 2 || xs[1].k != kArr {
		st.fail(ErrParse, "missing_some: expects a number and an array of names")
		return null
	}
	need := int(xs[0].num(st, "missing_some"))
	missing, found := make([]any, 0), 0
	for _, e := range xs[1].a {
		if present(st, fromAny(st, e)) {
			found++
		} else {
			missing = append(missing, e)
		}
	}
	if need > found {
		return arrVal(missing)
	}
	return arrVal(make([]any, 0))
}

// opFractional is flagd's fractional: the bucketing value (the first
// argument when it is a string, else $flagd.flagKey + targetingKey) hashed
// with murmur3 (x86, 32 bits, seed 0) picks a bucket
// hash*totalWeight >> 32 among the weighted variants. Malformed input
// yields null, so the default variant applies.
func opFractional(st *state, xs []val) val {
	if len(xs) == 0 {
		return null
	}
	var h uint32
	dist := xs
	switch xs[0].k {
	case kStr:
		h = murmur3(xs[0].s, "")
		dist = xs[1:]
	default:
		if xs[0].k == kNull {
			dist = xs[1:]
		}
		m, ok := st.data.(map[string]any)
		if !ok {
			return null
		}
		tk, ok := m["targetingKey"]
		if !ok || tk == nil {
			return null
		}
		key, ok := tk.(string)
		if !ok || key == "" {
			return null
		}
		h = murmur3(st.flagKey, key)
	}
	var total int64
	for _, d := range dist {
		w, ok := weight(d)
		if !ok {
			return null
		}
		total += w
	}
	if total == 0 || total > math.MaxInt32 {
		return null
	}
	bucket := (uint64(h) * uint64(total)) >> 32
	var end uint64
	for _, d := range dist {
		w, _ := weight(d)
		end += uint64(w)
		if bucket < end {
			return fromAny(st, d.a[0])
		}
	}
	return null
}

// weight is the weight of one [variant, weight] entry (1 when omitted,
// negative clamped to 0); ok is false when the entry is malformed.
func weight(d val) (int64, bool) {
	if d.k != kArr || len(d.a) == 0 {
		return 0, false
	}
	switch d.a[0].(type) {
	case string, bool, float64, nil:
	default:
		return 0, false
	}
	if len(d.a) < 2 || d.a[1] == nil {
		return 1, true
	}
	f, ok := d.a[1].(float64)
	if !ok || f != math.Trunc(f) || f > math.MaxInt32 {
		return 0, false
	}
	if f < 0 {
		return 0, true
	}
	return int64(f), true
}

// opSemVer is flagd's sem_ver: [version, operator, version] compared as
// semantic versions (a leading v or V optional, partial versions allowed,
// build metadata ignored); null when malformed.
func opSemVer(_ *state, xs []val) val {
	if len(xs) != 3 || xs[1].k != kStr {
		return null
	}
	a, ok1 := semverOf(xs[0])
	b, ok2 := semverOf(xs[2])
	if !ok1 || !ok2 {
		return null
	}
	c := semver.Compare(a, b)
	switch xs[1].s {
	case "=":
		return boolVal(c == 0)
	case "!=":
		return boolVal(c != 0)
	case "<":
		return boolVal(c < 0)
	case "<=":
		return boolVal(c <= 0)
	case ">":
		return boolVal(c > 0)
	case ">=":
		return boolVal(c >= 0)
	case "~":
		return boolVal(semver.Compare(semver.MajorMinor(a), semver.MajorMinor(b)) == 0)
	case "^":
		return boolVal(semver.Compare(semver.Major(a), semver.Major(b)) == 0)
	}
	return null
}

func semverOf(v val) (string, bool) {
	var s string
	if v.k == kStr {
		s = v.s
	} else {
		s = fmt.Sprint(v.toAny()) // flagd formats non-strings with %v
	}
	if !strings.HasPrefix(s, "v") {
		s = "v" + strings.TrimPrefix(s, "V")
	}
	return s, semver.IsValid(s)
}

// murmur3 is MurmurHash3 x86_32 with seed 0 over a followed by b.
func murmur3(a, b string) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	n := len(a) + len(b)
	at := func(i int) uint32 {
		if i < len(a) {
			return uint32(a[i])
		}
		return uint32(b[i-len(a)])
	}
	var h uint32
	i := 0
	for ; i+4 <= n; i += 4 {
		var k uint32
		if i+4 <= len(a) {
			k = uint32(a[i]) | uint32(a[i+1])<<8 | uint32(a[i+2])<<16 | uint32(a[i+3])<<24
		} else if i >= len(a) {
			j := i - len(a)
			k = uint32(b[j]) | uint32(b[j+1])<<8 | uint32(b[j+2])<<16 | uint32(b[j+3])<<24
		} else {
			k = at(i) | at(i+1)<<8 | at(i+2)<<16 | at(i+3)<<24
		}
		k *= c1
		k = k<<15 | k>>17
		k *= c2
		h ^= k
		h = h<<13 | h>>19
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch n - i {
	case 3:
		k ^= at(i+2) << 16
		fallthrough
	case 2:
		k ^= at(i+1) << 8
		fallthrough
	case 1:
		k ^= at(i)
		k *= c1
		k = k<<15 | k>>17
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
