package flags

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/tree"
)

// node is a compiled JSONLogic expression.
type node func(st *state) val

// state is one evaluation's scratch space. States are pooled: evaluating
// a targeting rule allocates nothing of its own.
type state struct {
	data    any    // what var reads: the context, or the element inside some/all/none/map/filter/reduce
	scoped  bool   // inside an iterating operator ($flagd is not there)
	flagKey string // $flagd.flagKey
	now     func() time.Time
	stack   []val // evaluated arguments of the operators being applied
	code    ErrorCode
	msg     string
}

var statePool = sync.Pool{New: func() any { return &state{stack: make([]val, 0, 16)} }}

// fail records the first error of the evaluation; the result is then an error.
func (st *state) fail(code ErrorCode, msg string) {
	if st.code == "" {
		st.code, st.msg = code, msg
	}
}

// cnode is a compiled expression; c is its value when it is a constant.
// test, when set, is the expression's value for one that always yields a
// boolean (comparisons, and/or of comparisons): conditions call it and
// skip building a val. ref is set for {"var": "key"} without a default.
type cnode struct {
	fn   node
	c    *val
	test func(st *state) bool
	ref  *ctxKey
}

// ctxKey is a var path (split at the dots) without a default.
type ctxKey struct {
	key   string   // the first segment
	rest  []string // the others
	flagd bool     // the path starts at $flagd, which at the top is flagd's, not the context's
}

func newCtxKey(parts []string) *ctxKey {
	return &ctxKey{key: parts[0], rest: parts[1:], flagd: parts[0] == "$flagd"}
}

// raw is the path's value in the current data when that and every map
// on the way is a map[string]any (nil when absent); ok is false when var
// must take the general path.
func (r *ctxKey) raw(st *state) (x any, ok bool) {
	m, ok := st.data.(map[string]any)
	if !ok || r.flagd && !st.scoped {
		return nil, false
	}
	x = m[r.key]
	for _, p := range r.rest {
		if x == nil {
			return nil, true
		}
		if m, ok = x.(map[string]any); !ok {
			return nil, false
		}
		x = m[p]
	}
	return x, true
}

func constNode(v val) cnode { return cnode{fn: func(*state) val { return v }, c: &v} }

// compiler turns targeting rules into nodes, collecting every problem.
type compiler struct {
	evaluators map[string]*tree.Value
	refs       []string // $ref chain being compiled, for cycles
	flag       string
	field      string
	problems   []Problem
	usesKey    bool // fractional without a bucket expression reads targetingKey
}

func (c *compiler) errorf(v *tree.Value, format string, args ...any) {
	c.problems = append(c.problems, Problem{Pos: v.Src.Pos(), Flag: c.flag, Field: c.field, Message: fmt.Sprintf(format, args...)})
}

// literal is the JSON value of a tree (numbers as float64, like flagd).
func literal(v *tree.Value) any {
	switch v.Kind {
	case tree.Bool:
		return v.Bool
	case tree.Int:
		return float64(v.Int)
	case tree.Uint:
		return float64(v.Uint)
	case tree.Float:
		return v.Float
	case tree.String:
		return v.Str
	case tree.Array:
		a := make([]any, len(v.Items))
		for i, it := range v.Items {
			a[i] = literal(it)
		}
		return a
	case tree.Map:
		m := make(map[string]any, len(v.Fields))
		for _, f := range v.Fields {
			m[f.Key] = literal(f.Value)
		}
		return m
	}
	return nil
}

// literalVal is a constant of a rule as a value; literal gives only JSON's
// types, which fromAny converts without needing an evaluation's state.
func literalVal(v *tree.Value) val { return fromAny(nil, literal(v)) }

// compile compiles one expression.
func (c *compiler) compile(v *tree.Value) cnode {
	switch v.Kind {
	case tree.Array:
		items := make([]cnode, len(v.Items))
		constant := true
		for i, it := range v.Items {
			items[i] = c.compile(it)
			constant = constant && items[i].c != nil
		}
		if constant {
			a := make([]any, len(items))
			for i, it := range items {
				a[i] = it.c.toAny()
			}
			return constNode(arrVal(a))
		}
		return cnode{fn: func(st *state) val {
			a := make([]any, len(items))
			for i, it := range items {
				a[i] = it.fn(st).toAny()
			}
			return arrVal(a)
		}}
	case tree.Map:
		if len(v.Fields) != 1 {
			// JSONLogic: an object with zero or several keys is data.
			return constNode(literalVal(v))
		}
		return c.operation(v, v.Fields[0].Key, v.Fields[0].Value)
	}
	return constNode(literalVal(v))
}

// opKind says how an operator takes its arguments.
type opKind uint8

const (
	opEager  opKind = iota // every argument evaluated first, then the operator applied
	opSingle               // eager, and a lone non-array argument is a list of one
)

type eagerOp struct {
	kind opKind
	fn   func(st *state, xs []val) val
}

var eagerOps map[string]eagerOp

// lazy operators decide which arguments to evaluate.
var lazyOps = map[string]bool{"var": true, "and": true, "or": true, "if": true, "?:": true,
	"some": true, "all": true, "none": true, "map": true, "filter": true, "reduce": true}

func init() {
	eagerOps = map[string]eagerOp{
		"==":           {opEager, func(_ *state, xs []val) val { return boolVal(len(xs) >= 2 && equals(xs[0], xs[1])) }},
		"!=":           {opEager, func(_ *state, xs []val) val { return boolVal(!(len(xs) >= 2 && equals(xs[0], xs[1]))) }},
		"===":          {opEager, func(_ *state, xs []val) val { return boolVal(len(xs) >= 2 && strictEquals(xs[0], xs[1])) }},
		"!==":          {opEager, func(_ *state, xs []val) val { return boolVal(!(len(xs) >= 2 && strictEquals(xs[0], xs[1]))) }},
		"<":            {opEager, cmpOp(func(a, b val) bool { return less(a, b) })},
		"<=":           {opEager, cmpOp(func(a, b val) bool { return less(a, b) || equals(a, b) })},
		">":            {opEager, cmpOp(func(a, b val) bool { return less(b, a) })},
		">=":           {opEager, cmpOp(func(a, b val) bool { return less(b, a) || equals(b, a) })},
		"!":            {opSingle, func(_ *state, xs []val) val { return boolVal(len(xs) == 0 || !xs[0].truthy()) }},
		"!!":           {opSingle, func(_ *state, xs []val) val { return boolVal(len(xs) > 0 && xs[0].truthy()) }},
		"in":           {opEager, opIn},
		"cat":          {opSingle, opCat},
		"substr":       {opEager, opSubstr},
		"+":            {opSingle, opAdd},
		"-":            {opEager, opSub},
		"*":            {opEager, opMul},
		"/":            {opEager, opDiv},
		"%":            {opEager, opMod},
		"min":          {opEager, func(st *state, xs []val) val { return minMax(st, xs, "min", func(a, b float64) bool { return b < a }) }},
		"max":          {opEager, func(st *state, xs []val) val { return minMax(st, xs, "max", func(a, b float64) bool { return b > a }) }},
		"abs":          {opSingle, opAbs},
		"merge":        {opSingle, opMerge},
		"missing":      {opSingle, opMissing},
		"missing_some": {opEager, opMissingSome},
		"fractional":   {opEager, opFractional},
		"sem_ver":      {opEager, opSemVer},
		"starts_with":  {opEager, func(_ *state, xs []val) val { return strOp(xs, strings.HasPrefix) }},
		"ends_with":    {opEager, func(_ *state, xs []val) val { return strOp(xs, strings.HasSuffix) }},
	}
}

// Operators lists the JSONLogic operators targeting may use.
func Operators() []string {
	ops := make([]string, 0, len(eagerOps)+len(lazyOps))
	for k := range eagerOps {
		ops = append(ops, k)
	}
	for k := range lazyOps {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	return ops
}

func (c *compiler) operation(v *tree.Value, op string, args *tree.Value) cnode {
	if op == "$ref" {
		return c.ref(v, args)
	}
	if op == "fractional" && args.Kind == tree.Array && (len(args.Items) == 0 || args.Items[0].Kind == tree.Array) {
		c.usesKey = true
	}
	if lazyOps[op] {
		return c.lazy(v, op, args)
	}
	e, ok := eagerOps[op]
	if !ok {
		msg := fmt.Sprintf("unknown operator %q", op)
		if s := suggest.Closest(op, Operators()); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		c.errorf(v, "%s (supported: %s)", msg, strings.Join(Operators(), " "))
		return constNode(null)
	}
	var items []cnode
	spread := false // a lone expression whose value is the argument list
	switch {
	case args.Kind == tree.Array:
		items = make([]cnode, len(args.Items))
		for i, it := range args.Items {
			items[i] = c.compile(it)
		}
	case args.Kind == tree.Map && len(args.Fields) == 1:
		items, spread = []cnode{c.compile(args)}, true
	case e.kind == opSingle:
		items = []cnode{c.compile(args)}
	default:
		c.errorf(args, "%s expects an array of arguments, found %s", op, describe(args))
		return constNode(null)
	}
	fn, single := e.fn, e.kind == opSingle
	if !spread {
		if n, ok := c.fast(op, items); ok {
			return n
		}
		if len(items) == 2 && items[0].c == nil && items[1].c != nil {
			// The common `{"op": [expression, constant]}`.
			a, b := items[0].fn, *items[1].c
			return cnode{fn: func(st *state) val {
				x := a(st)
				base := len(st.stack)
				st.stack = append(st.stack, x, b)
				r := fn(st, st.stack[base:])
				st.stack = st.stack[:base]
				return r
			}}
		}
		return cnode{fn: func(st *state) val {
			base := len(st.stack)
			for _, it := range items {
				x := it.fn(st)
				st.stack = append(st.stack, x)
			}
			r := fn(st, st.stack[base:])
			st.stack = st.stack[:base]
			return r
		}}
	}
	arg := items[0].fn
	return cnode{fn: func(st *state) val {
		x := arg(st)
		base := len(st.stack)
		switch {
		case x.k == kArr:
			for _, e := range x.a {
				st.stack = append(st.stack, fromAny(st, e))
			}
		case single:
			st.stack = append(st.stack, x)
		default:
			st.fail(ErrParse, op+": arguments are not an array")
			return null
		}
		r := fn(st, st.stack[base:])
		st.stack = st.stack[:base]
		return r
	}}
}

func describe(v *tree.Value) string {
	switch v.Kind {
	case tree.String:
		return strconv.Quote(v.Str)
	case tree.Map:
		return "an object"
	}
	return v.Kind.String() + " " + v.Scalar()
}

// ref compiles {"$ref": name} as the named evaluator.
func (c *compiler) ref(v, name *tree.Value) cnode {
	if name.Kind != tree.String {
		c.errorf(name, "$ref expects the name of an evaluator (a string), found %s", describe(name))
		return constNode(null)
	}
	ev, ok := c.evaluators[name.Str]
	if !ok {
		known := make([]string, 0, len(c.evaluators))
		for k := range c.evaluators {
			known = append(known, k)
		}
		sort.Strings(known)
		msg := fmt.Sprintf("$ref to unknown evaluator %q", name.Str)
		if s := suggest.Closest(name.Str, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		if len(known) == 0 {
			msg += "; the file has no $evaluators"
		} else {
			msg += "; $evaluators defines " + strings.Join(known, ", ")
		}
		c.errorf(name, "%s", msg)
		return constNode(null)
	}
	for i, r := range c.refs {
		if r == name.Str {
			c.errorf(name, "$ref cycle: %s -> %s", strings.Join(c.refs[i:], " -> "), name.Str)
			return constNode(null)
		}
	}
	c.refs = append(c.refs, name.Str)
	n := c.compile(ev)
	c.refs = c.refs[:len(c.refs)-1]
	return n
}

func cmpOp(f func(a, b val) bool) func(*state, []val) val {
	return func(_ *state, xs []val) val {
		switch {
		case len(xs) < 2:
			return boolVal(false)
		case len(xs) == 3:
			return boolVal(f(xs[0], xs[1]) && f(xs[1], xs[2]))
		}
		return boolVal(f(xs[0], xs[1]))
	}
}

func strOp(xs []val, f func(s, affix string) bool) val {
	if len(xs) != 2 || xs[0].k != kStr || xs[1].k != kStr {
		return null // flagd: null, so that the default variant applies
	}
	return boolVal(f(xs[0].s, xs[1].s))
}
