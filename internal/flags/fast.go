package flags

// Specialised nodes for the shapes rules use most, so that they skip the
// argument stack: a comparison of two expressions, `in` over a constant
// list of strings, and fractional over constant buckets.

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
			if set, ok := stringSet(items[1].c); ok {
				list := *items[1].c
				return cnode{fn: func(st *state) val {
					x := a(st)
					if x.k == kStr {
						_, ok := set[x.s]
						return boolVal(ok)
					}
					return opIn(st, []val{x, list})
				}}, true
			}
		}
		if cmp != nil {
			if bc := items[1].c; bc != nil {
				k := *bc
				return cnode{fn: func(st *state) val { return boolVal(cmp(a(st), k)) }}, true
			}
			return cnode{fn: func(st *state) val {
				x := a(st)
				return boolVal(cmp(x, b(st)))
			}}, true
		}
	}
	if op == "fractional" {
		return fastFractional(items)
	}
	return cnode{}, false
}

func stringSet(c *val) (map[string]struct{}, bool) {
	if c == nil || c.k != kArr {
		return nil, false
	}
	set := make(map[string]struct{}, len(c.a))
	for _, e := range c.a {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		set[s] = struct{}{}
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
