package flags

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is the JSON type of a val.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNum
	kStr
	kArr
	kObj
)

// val is a JSON value during evaluation, scalars unboxed so that most
// operators allocate nothing. Arrays and objects keep the JSON-like Go
// form callers pass in ([]any, map[string]any).
type val struct {
	k kind
	b bool
	n float64
	s string
	a []any
	m map[string]any
}

var null = val{}

func boolVal(b bool) val          { return val{k: kBool, b: b} }
func numVal(n float64) val        { return val{k: kNum, n: n} }
func strVal(s string) val         { return val{k: kStr, s: s} }
func arrVal(a []any) val          { return val{k: kArr, a: a} }
func objVal(m map[string]any) val { return val{k: kObj, m: m} }

// fromAny converts a context value. Numbers of any Go type become float64
// (flagd sees the context as JSON); a type that JSON has no form for makes
// the evaluation fail with INVALID_CONTEXT.
func fromAny(st *state, x any) val {
	switch t := x.(type) {
	case nil:
		return null
	case bool:
		return boolVal(t)
	case float64:
		return numVal(t)
	case string:
		return strVal(t)
	case []any:
		return arrVal(t)
	case map[string]any:
		return objVal(t)
	case int:
		return numVal(float64(t))
	case int64:
		return numVal(float64(t))
	case int32:
		return numVal(float64(t))
	case float32:
		return numVal(float64(t))
	case uint:
		return numVal(float64(t))
	case uint64:
		return numVal(float64(t))
	case uint32:
		return numVal(float64(t))
	case int8, int16, uint8, uint16:
		return numVal(jsNumAny(t))
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			st.fail(ErrInvalidContext, "invalid number "+string(t))
		}
		return numVal(f)
	case []string:
		a := make([]any, len(t))
		for i, s := range t {
			a[i] = s
		}
		return arrVal(a)
	}
	st.fail(ErrInvalidContext, "context value of unsupported type "+typeName(x))
	return null
}

func jsNumAny(x any) float64 {
	switch t := x.(type) {
	case int8:
		return float64(t)
	case int16:
		return float64(t)
	case uint8:
		return float64(t)
	case uint16:
		return float64(t)
	}
	return 0
}

func typeName(x any) string { return sprintType(x) }

// toAny boxes v.
func (v val) toAny() any {
	switch v.k {
	case kBool:
		return v.b
	case kNum:
		return v.n
	case kStr:
		return v.s
	case kArr:
		return v.a
	case kObj:
		return v.m
	}
	return nil
}

// truthy is the library's IsTrue: NaN counts as true (it is not 0).
func (v val) truthy() bool {
	switch v.k {
	case kBool:
		return v.b
	case kNum:
		return v.n != 0
	case kStr:
		return v.s != ""
	case kArr:
		return len(v.a) > 0
	case kObj:
		return len(v.m) > 0
	}
	return false
}

// jsNum is JavaScript's ToNumber as the comparison operators use it.
func (v val) jsNum() float64 {
	switch v.k {
	case kNull:
		return 0
	case kNum:
		return v.n
	case kBool:
		if v.b {
			return 1
		}
		return 0
	case kStr:
		if strings.TrimSpace(v.s) == "" {
			return 0
		}
		n, err := strconv.ParseFloat(v.s, 64)
		if err == nil || err.(*strconv.NumError).Err == strconv.ErrRange {
			return n
		}
	}
	return math.NaN()
}

// num is the strict conversion the arithmetic operators use: numbers and
// numeric strings (others are 0); anything else fails the evaluation.
func (v val) num(st *state, op string) float64 {
	switch v.k {
	case kNum:
		return v.n
	case kStr:
		n, _ := strconv.ParseFloat(v.s, 64)
		return n
	}
	st.fail(ErrParse, op+": expected a number, got "+v.kindName())
	return 0
}

// str is the strict conversion of cat and substr: strings, numbers
// (shortest form) and null (""); anything else fails the evaluation.
func (v val) str(st *state, op string) string {
	switch v.k {
	case kStr:
		return v.s
	case kNum:
		return strconv.FormatFloat(v.n, 'f', -1, 64)
	case kNull:
		return ""
	}
	st.fail(ErrParse, op+": expected a string, got "+v.kindName())
	return ""
}

func (v val) kindName() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[v.k]
}

func equals(a, b val) bool {
	if a.k == kNull || b.k == kNull {
		return a.k == b.k
	}
	if a.k == kStr && b.k == kStr {
		return a.s == b.s
	}
	return a.jsNum() == b.jsNum()
}

func strictEquals(a, b val) bool {
	if a.k == kNull || b.k == kNull {
		return a.k == b.k
	}
	if a.k != b.k {
		return false
	}
	return equals(a, b)
}

func less(a, b val) bool {
	if a.k == kStr && b.k == kStr {
		return a.s < b.s
	}
	return a.jsNum() < b.jsNum()
}

// variantName is the variant a targeting result names, as flagd computes
// it: the result encoded as JSON with every double quote removed. ok is
// false for results JSON cannot encode (NaN, ±Inf).
func variantName(v val) (string, bool) {
	switch v.k {
	case kStr:
		if plainJSON(v.s) {
			return v.s, true
		}
	case kBool:
		if v.b {
			return "true", true
		}
		return "false", true
	case kNum:
		if math.IsNaN(v.n) || math.IsInf(v.n, 0) {
			return "", false
		}
	}
	b, err := json.Marshal(v.toAny())
	if err != nil {
		return "", false
	}
	return strings.ReplaceAll(string(b), `"`, ""), true
}

// plainJSON reports whether encoding/json writes s unchanged between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
