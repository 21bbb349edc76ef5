package flags

import (
	"strconv"
	"strings"

	"github.com/envplane/envplane/internal/tree"
)

func (c *compiler) lazy(v *tree.Value, op string, args *tree.Value) cnode {
	if op == "var" {
		return c.variable(args)
	}
	if args.Kind != tree.Array {
		c.errorf(args, "%s expects an array, found %s", op, describe(args))
		return constNode(null)
	}
	items := make([]cnode, len(args.Items))
	for i, it := range args.Items {
		if (op == "some" || op == "all" || op == "none" || op == "map" || op == "filter" || op == "reduce") && i == 0 {
			items[i] = c.subject(it)
			continue
		}
		items[i] = c.compile(it)
	}
	switch op {
	case "and", "or":
		want := op == "or"
		if len(items) == 0 {
			return constNode(null)
		}
		if n, ok := boolAndOr(items, want); ok {
			return n
		}
		return cnode{fn: func(st *state) val {
			for i, it := range items[:len(items)-1] {
				if t := it.test; t != nil {
					// A boolean operand: only its value matters.
					if t(st) == want {
						return boolVal(want)
					}
					continue
				}
				if v := items[i].fn(st); v.truthy() == want {
					return v
				}
			}
			return items[len(items)-1].fn(st)
		}}
	case "if", "?:":
		conds := make([]func(*state) bool, len(items)/2)
		for i := range conds {
			if t := items[2*i].test; t != nil {
				conds[i] = t
			} else {
				fn := items[2*i].fn
				conds[i] = func(st *state) bool { return fn(st).truthy() }
			}
		}
		if len(items) == 3 {
			cond, then, els := conds[0], items[1].fn, items[2].fn
			return cnode{fn: func(st *state) val {
				if cond(st) {
					return then(st)
				}
				return els(st)
			}}
		}
		return cnode{fn: func(st *state) val {
			n := len(items)
			for i := 0; i+1 < n; i += 2 {
				if conds[i/2](st) {
					return items[i+1].fn(st)
				}
			}
			if n%2 == 1 {
				return items[n-1].fn(st)
			}
			return null
		}}
	}
	return c.iterate(v, op, args, items)
}

// subject compiles the array an iterating operator walks: a literal array
// is taken as it is written, an operation is evaluated.
func (c *compiler) subject(v *tree.Value) cnode {
	switch {
	case v.Kind == tree.Array:
		return constNode(arrVal(literal(v).([]any)))
	case v.Kind == tree.Map && len(v.Fields) == 1:
		return c.compile(v)
	}
	return constNode(null)
}

// iterate compiles some, all, none, map, filter and reduce.
func (c *compiler) iterate(v *tree.Value, op string, args *tree.Value, items []cnode) cnode {
	need := 2
	if op == "reduce" {
		need = 3
	}
	if len(items) < need {
		if op == "map" || op == "filter" {
			return constNode(arrVal([]any{}))
		}
		if op == "reduce" {
			return constNode(numVal(0))
		}
		c.errorf(args, "%s expects [array, rule], found %d argument(s)", op, len(items))
		return constNode(null)
	}
	if op != "map" && op != "filter" {
		if r := args.Items[1]; r.Kind != tree.Map || len(r.Fields) != 1 {
			c.errorf(r, "%s expects an operation as its rule, found %s", op, describe(r))
			return constNode(null)
		}
	}
	subj, rule := items[0].fn, items[1].fn
	elems := func(st *state) ([]any, bool) {
		s := subj(st)
		switch s.k {
		case kArr:
			return s.a, true
		case kNull:
			return nil, true
		}
		st.fail(ErrParse, op+": expected an array, got "+s.kindName())
		return nil, false
	}
	scope := func(st *state, data any, f func()) {
		saved, savedScoped := st.data, st.scoped
		st.data, st.scoped = data, true
		f()
		st.data, st.scoped = saved, savedScoped
	}
	switch op {
	case "some", "all", "none":
		return cnode{fn: func(st *state) val {
			a, _ := elems(st)
			if len(a) == 0 {
				return boolVal(op == "none")
			}
			for _, e := range a {
				var t bool
				scope(st, e, func() { t = rule(st).truthy() })
				switch {
				case op == "some" && t:
					return boolVal(true)
				case op == "all" && !t:
					return boolVal(false)
				case op == "none" && t:
					return boolVal(false)
				}
			}
			return boolVal(op != "some")
		}}
	case "map", "filter":
		return cnode{fn: func(st *state) val {
			a, _ := elems(st)
			out := make([]any, 0, len(a))
			for _, e := range a {
				scope(st, e, func() {
					r := rule(st)
					if op == "map" {
						out = append(out, r.toAny())
					} else if r.truthy() {
						out = append(out, e)
					}
				})
			}
			return arrVal(out)
		}}
	}
	initial := items[2].fn
	return cnode{fn: func(st *state) val {
		acc := initial(st)
		if acc.k != kBool && acc.k != kNum && acc.k != kStr {
			st.fail(ErrParse, "reduce: the initial value must be a boolean, number or string, got "+acc.kindName())
			return null
		}
		a, ok := elems(st)
		if !ok || a == nil {
			return numVal(0)
		}
		for _, e := range a {
			if e == nil {
				continue
			}
			data := map[string]any{"current": e, "accumulator": acc.toAny()}
			var r val
			scope(st, data, func() { r = rule(st) })
			switch acc.k {
			case kBool:
				acc = boolVal(r.truthy())
			case kNum:
				acc = numVal(r.num(st, "reduce"))
			case kStr:
				acc = strVal(r.str(st, "reduce"))
			}
		}
		return acc
	}}
}

// variable compiles var: a path (dots separate keys and array indexes)
// and an optional default for a missing or null value.
func (c *compiler) variable(args *tree.Value) cnode {
	path, def := args, (*tree.Value)(nil)
	if args.Kind == tree.Array {
		switch len(args.Items) {
		case 0:
			return cnode{fn: func(st *state) val { return fromAny(st, st.data) }}
		case 2:
			def = args.Items[1]
		}
		path = args.Items[0]
	}
	var defNode node = func(*state) val { return null }
	if def != nil {
		defNode = c.compile(def).fn
	}
	var p string
	switch path.Kind {
	case tree.String:
		p = path.Str
	case tree.Int, tree.Uint, tree.Float:
		p = strconv.FormatFloat(literal(path).(float64), 'f', -1, 64)
	case tree.Null:
		if args.Kind != tree.Array {
			return constNode(null)
		}
		c.errorf(path, "var expects a path (a string), found null")
		return constNode(null)
	case tree.Map:
		// A computed path.
		pn := c.compile(path).fn
		return cnode{fn: func(st *state) val {
			pv := pn(st)
			var p string
			switch pv.k {
			case kStr:
				p = pv.s
			case kNum:
				p = strconv.FormatFloat(pv.n, 'f', -1, 64)
			case kNull:
				return null
			default:
				st.fail(ErrParse, "var: the path is a "+pv.kindName())
				return null
			}
			if r := st.lookupPath(p); r.k != kNull {
				return r
			}
			return defNode(st)
		}}
	default:
		c.errorf(path, "var expects a path (a string), found %s", describe(path))
		return constNode(null)
	}
	if p == "" {
		return cnode{fn: func(st *state) val { return fromAny(st, st.data) }}
	}
	parts := splitPath(p)
	if len(parts) == 1 {
		key, flagd := parts[0], parts[0] == "$flagd"
		var ref *ctxKey
		if def == nil {
			ref = newCtxKey(parts)
		}
		return cnode{ref: ref, fn: func(st *state) val {
			if m, ok := st.data.(map[string]any); ok && !(flagd && !st.scoped) {
				if x := m[key]; x != nil {
					return fromAny(st, x)
				}
				return defNode(st)
			}
			if r := st.lookup(parts); r.k != kNull {
				return r
			}
			return defNode(st)
		}}
	}
	var ref *ctxKey
	if def == nil && len(parts) > 0 {
		ref = newCtxKey(parts)
	}
	return cnode{ref: ref, fn: func(st *state) val {
		if r := st.lookup(parts); r.k != kNull {
			return r
		}
		return defNode(st)
	}}
}

func splitPath(p string) []string {
	raw := strings.Split(p, ".")
	parts := raw[:0]
	for _, s := range raw {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return parts
}

func (st *state) lookupPath(p string) val {
	if p == "" {
		return fromAny(st, st.data)
	}
	return st.lookup(splitPath(p))
}

// lookup follows parts from the current data; null when anything on the
// way is missing or null. At the top, $flagd.flagKey and
// $flagd.timestamp are flagd's properties (a context's own $flagd is
// replaced, as flagd does).
func (st *state) lookup(parts []string) val {
	if len(parts) == 0 {
		return fromAny(st, st.data)
	}
	cur := st.data
	if !st.scoped && parts[0] == "$flagd" {
		if len(parts) == 2 && parts[1] == "flagKey" {
			return strVal(st.flagKey)
		}
		if len(parts) == 2 && parts[1] == "timestamp" {
			return numVal(float64(st.now().Unix()))
		}
		cur, parts = map[string]any{"flagKey": st.flagKey, "timestamp": float64(st.now().Unix())}, parts[1:]
	}
	for _, p := range parts {
		switch t := cur.(type) {
		case map[string]any:
			cur = t[p]
		case []any:
			i, _ := strconv.ParseFloat(p, 64)
			if int(i) < 0 || int(i) >= len(t) {
				return null
			}
			cur = t[int(i)]
		default:
			return null
		}
		if cur == nil {
			return null
		}
	}
	return fromAny(st, cur)
}

// boolAndOr compiles and/or over operands that all yield booleans: the
// result is then a boolean too (the first false/true one, or the last).
func boolAndOr(items []cnode, want bool) (cnode, bool) {
	if len(items) == 0 {
		return cnode{}, false
	}
	tests := make([]func(*state) bool, len(items))
	for i, it := range items {
		if it.test == nil {
			return cnode{}, false
		}
		tests[i] = it.test
	}
	var test func(st *state) bool
	switch {
	case len(tests) == 2 && !want:
		a, b := tests[0], tests[1]
		test = func(st *state) bool { return a(st) && b(st) }
	case len(tests) == 3 && !want:
		a, b, c := tests[0], tests[1], tests[2]
		test = func(st *state) bool { return a(st) && b(st) && c(st) }
	default:
		test = func(st *state) bool {
			for _, t := range tests {
				if t(st) == want {
					return want
				}
			}
			return !want
		}
	}
	return cnode{test: test, fn: func(st *state) val { return boolVal(test(st)) }}, true
}
