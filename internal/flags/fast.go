package flags

import "strings"

// Specialised nodes for the shapes rules use most, so that they skip the
// argument stack: a comparison of two expressions (of a context key with
// a constant, reading the context's string or float64 directly), `in`
// over a constant list of strings, starts_with/ends_with of a context key
// and a constant, and fractional over constant buckets.

func (c *compiler) fast(op string, items []cnode) (cnode, bool) {
	if len(items) == 2 {
		a, b := items[0].fn, items[1].fn
		var cmp func(x, y val) bool
		switch op {
		case "==":
			cmp = equals
		case "!=":
			cmp = func(x, y val) bool { return !equals(x, y) }
		case "===":
			cmp = strictEquals
		case "!==":
			cmp = func(x, y val) bool { return !strictEquals(x, y) }
		case "<":
			cmp = less
		case "<=":
			cmp = func(x, y val) bool { return less(x, y) || equals(x, y) }
		case ">":
			cmp = func(x, y val) bool { return less(y, x) }
		case ">=":
			cmp = func(x, y val) bool { return less(y, x) || equals(y, x) }
		case "in":
			if set, ok := newStrSet(items[1].c); ok {
				list := *items[1].c
				slow := func(st *state, x val) bool {
					if x.k == kStr {
						return set.has(x.s)
					}
					return opIn(st, []val{x, list}).truthy()
				}
				test := func(st *state) bool { return slow(st, a(st)) }
				if ref := items[0].ref; ref != nil {
					test = func(st *state) bool {
						if x, ok := ref.raw(st); ok {
							if s, ok := x.(string); ok {
								return set.has(s)
							}
						}
						return slow(st, a(st))
					}
				}
				// opIn yields null only after failing the evaluation, so
				// the boolean stands for its result.
				return cnode{test: test, fn: func(st *state) val { return boolVal(test(st)) }}, true
			}
		}
		if op == "starts_with" || op == "ends_with" {
			// Not a test: a non-string gives null, not false.
			if bc, ref := items[1].c, items[0].ref; bc != nil && bc.k == kStr && ref != nil {
				affix, suffix := bc.s, op == "ends_with"
				general := func(st *state, x val) val {
					if x.k != kStr {
						return null
					}
					if suffix {
						return boolVal(strings.HasSuffix(x.s, affix))
					}
					return boolVal(strings.HasPrefix(x.s, affix))
				}
				return cnode{fn: func(st *state) val {
					if x, ok := ref.raw(st); ok {
						if s, ok := x.(string); ok {
							if suffix {
								return boolVal(strings.HasSuffix(s, affix))
							}
							return boolVal(strings.HasPrefix(s, affix))
						}
					}
					return general(st, a(st))
				}}, true
			}
		}
		if cmp != nil {
			var test func(st *state) bool
			if bc := items[1].c; bc != nil {
				k := *bc
				test = func(st *state) bool { return cmp(a(st), k) }
				if ref := items[0].ref; ref != nil {
					if t := varConst(op, ref, a, k, cmp); t != nil {
						test = t
					}
				}
			} else {
				test = func(st *state) bool {
					x := a(st)
					return cmp(x, b(st))
				}
			}
			return cnode{test: test, fn: func(st *state) val { return boolVal(test(st)) }}, true
		}
	}
	if op == "fractional" {
		return fastFractional(items)
	}
	return cnode{}, false
}

// varConst specialises the comparison of a context key with a string or
// number constant: when the context holds a string (a float64) there, it
// is compared directly, as equals/less would; anything else takes the
// general path.
func varConst(op string, ref *ctxKey, a node, k val, cmp func(x, y val) bool) func(*state) bool {
	slow := func(st *state) bool { return cmp(a(st), k) }
	switch k.k {
	case kStr:
		var eq bool
		switch op {
		case "==", "===":
			eq = true
		case "!=", "!==":
		default:
			return nil
		}
		ks := k.s
		return func(st *state) bool {
			if x, ok := ref.raw(st); ok {
				if s, ok := x.(string); ok {
					return (s == ks) == eq
				}
			}
			return slow(st)
		}
	case kNum:
		kn := k.n
		var f func(n float64) bool
		switch op {
		case "==", "===":
			f = func(n float64) bool { return n == kn }
		case "!=", "!==":
			f = func(n float64) bool { return n != kn }
		case "<":
			f = func(n float64) bool { return n < kn }
		case "<=":
			f = func(n float64) bool { return n <= kn }
		case ">":
			f = func(n float64) bool { return n > kn }
		case ">=":
			return func(st *state) bool {
				if x, ok := ref.raw(st); ok {
					if n, ok := x.(float64); ok {
						return n >= kn
					}
				}
				return slow(st)
			}
		default:
			return nil
		}
		return func(st *state) bool {
			if x, ok := ref.raw(st); ok {
				if n, ok := x.(float64); ok {
					return f(n)
				}
			}
			return slow(st)
		}
	}
	return nil
}

// strSet is a constant list of strings: a short one is scanned, a long
// one hashed.
type strSet struct {
	list []string
	m    map[string]struct{}
}

func (s *strSet) has(x string) bool {
	if s.m != nil {
		_, ok := s.m[x]
		return ok
	}
	for _, e := range s.list {
		if len(e) == len(x) && e == x {
			return true
		}
	}
	return false
}

func newStrSet(c *val) (*strSet, bool) {
	if c == nil || c.k != kArr {
		return nil, false
	}
	set := &strSet{list: make([]string, len(c.a))}
	for i, e := range c.a {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		set.list[i] = s
	}
	if len(set.list) > 8 {
		set.m = make(map[string]struct{}, len(set.list))
		for _, s := range set.list {
			set.m[s] = struct{}{}
		}
	}
	return set, true
}

// fastFractional precomputes the buckets of a fractional whose buckets
// are constants.
func fastFractional(items []cnode) (cnode, bool) {
	if len(items) == 0 {
		return cnode{}, false
	}
	var bucketBy node
	dist := items
	if first := items[0].c; first == nil || first.k != kArr {
		bucketBy, dist = items[0].fn, items[1:]
	}
	weights := make([]uint64, len(dist))
	variants := make([]val, len(dist))
	var total int64
	for i, d := range dist {
		if d.c == nil {
			return cnode{}, false
		}
		w, ok := weight(*d.c)
		if !ok {
			return constNode(null), true // flagd: null, the default variant applies
		}
		weights[i], variants[i] = uint64(w), fromAny(nil, d.c.a[0])
		total += w
	}
	if total == 0 || total > 1<<31-1 {
		return constNode(null), true
	}
	return cnode{fn: func(st *state) val {
		var h uint32
		if bucketBy != nil {
			v := bucketBy(st)
			switch v.k {
			case kStr:
				h = murmur3(v.s, "")
				goto pick
			case kNull:
			default:
				return null // flagd takes it for a malformed bucket
			}
		}
		{
			m, _ := st.data.(map[string]any)
			key, _ := m["targetingKey"].(string)
			if key == "" {
				return null
			}
			h = murmur3(st.flagKey, key)
		}
	pick:
		bucket := (uint64(h) * uint64(total)) >> 32
		var end uint64
		for i, w := range weights {
			end += w
			if bucket < end {
				return variants[i]
			}
		}
		return null
	}}, true
}
