package resolve

import (
	"strconv"

	"github.com/envplane/envplane/internal/tree"
)

// MaxTreeBytes bounds a resolved config: the bytes of all its keys and leaf
// values (scalars as text), plus one per value. Four times what a release may
// hold in all (16 MiB): each file is already bounded (4 MiB, aliases 16 MiB),
// but many files, aliases and ${…} of large secrets add up, and everything
// downstream (render, the server's cache, CEL) holds the whole tree. A config
// beyond it is a RuleSize problem and Result.Tree is nil.
const MaxTreeBytes = 64 << 20

// maxTreeBytes is MaxTreeBytes, lowered by tests.
var maxTreeBytes = MaxTreeBytes

// RuleSize names the problem of a config larger than MaxTreeBytes.
const RuleSize = "size-limit"

// measure adds the size of root to s.size and, the first time the total
// goes beyond maxTreeBytes, reports where. It returns false once over.
func (s *session) measure(root *tree.Value) bool {
	at := s.sizeOf(root)
	if at == nil {
		return true
	}
	path, _ := pathTo(root, at, nil)
	s.over(at, path)
	return false
}

// sizeOf adds v's size to s.size and returns the value at which it went
// beyond maxTreeBytes, or nil. It builds no paths: the warm resolve is
// counted in allocations (docs/PERFORMANCE.md).
func (s *session) sizeOf(v *tree.Value) *tree.Value {
	s.size += 1 + len(v.Str)
	switch v.Kind {
	case tree.Map:
		for _, f := range v.Fields {
			s.size += len(f.Key)
			if at := s.sizeOf(f.Value); at != nil {
				return at
			}
		}
	case tree.Array:
		for _, it := range v.Items {
			if at := s.sizeOf(it); at != nil {
				return at
			}
		}
	case tree.Int, tree.Uint, tree.Float, tree.Bool:
		s.size += 8
	}
	if s.size > maxTreeBytes {
		return v
	}
	return nil
}

// pathTo finds the key path of target under v.
func pathTo(v, target *tree.Value, path []string) ([]string, bool) {
	if v == target {
		return path, true
	}
	for _, f := range v.Fields {
		if p, ok := pathTo(f.Value, target, append(path, f.Key)); ok {
			return p, true
		}
	}
	for i, it := range v.Items {
		if p, ok := pathTo(it, target, append(path, strconv.Itoa(i))); ok {
			return p, true
		}
	}
	return nil, false
}

// over reports, once, a size beyond maxTreeBytes, placed at v.
func (s *session) over(v *tree.Value, path []string) bool {
	if s.size <= maxTreeBytes {
		return false
	}
	if !s.tooLarge {
		s.tooLarge = true
		p := joinPath(path)
		s.problem(RuleSize, p, v.WrittenAt(), "%s: the resolved config is larger than %d MiB here (keys and values); split it or move large values out", p, maxTreeBytes>>20)
	}
	return true
}
