package policy

import (
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
)

// SchemaViolation is a schema violation placed at the value that causes it.
type SchemaViolation struct {
	Path    string // dotted key, "" for the root
	Pos     diag.Pos
	Leaf    *tree.Value // nil when no value is at Path
	Message string      // "KEY: message", details hidden for sensitive values
}

// SchemaViolations validates a resolved config against the workspace schema
// (none without one). The schema's messages may quote the value, so for
// sensitive keys and values from secrets only the fact is reported.
func SchemaViolations(r *resolve.Resolver, config *tree.Value) []SchemaViolation {
	s := r.Schema()
	if s == nil || config == nil {
		return nil
	}
	sens := r.Sensitivity()
	var out []SchemaViolation
	for _, v := range s.Validate(config) {
		sv := SchemaViolation{Path: v.Path, Pos: diag.Pos{File: s.File}, Leaf: config.Lookup(tree.SplitKey(v.Path))}
		if sv.Leaf != nil {
			sv.Pos = sv.Leaf.WrittenAt()
		}
		msg := v.Message
		if sens.Path(v.Path) || (sv.Leaf != nil && sv.Leaf.Secret) {
			msg = "value does not satisfy the schema (details hidden: the key is sensitive)"
		}
		key := v.Path
		if key == "" {
			key = "(root)"
		}
		sv.Message = key + ": " + msg
		out = append(out, sv)
	}
	return out
}
