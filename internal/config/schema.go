package config

import (
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/tree"
)

// SchemaViolation is a schema violation placed at the value that causes it.
type SchemaViolation struct {
	Key    string // dotted key, "" for the root
	Pos    diag.Pos
	Leaf   *tree.Value // nil when no value is at Key
	Detail string      // what the schema says, hidden for sensitive values
}

// keyName is the key as messages print it.
func (v SchemaViolation) keyName() string {
	if v.Key == "" {
		return "(root)"
	}
	return v.Key
}

// Message is "KEY: detail", as lint prints it.
func (v SchemaViolation) Message() string { return v.keyName() + ": " + v.Detail }

// Problem is the violation as a resolution problem: "KEY: schema: detail".
func (v SchemaViolation) Problem() resolve.Problem {
	return resolve.Problem{Rule: RuleSchema, Path: v.Key, Diagnostic: diag.Errorf(v.Pos, "%s: schema: %s", v.keyName(), v.Detail)}
}

// SchemaViolations validates a resolved config against the workspace schema
// (none without one). The schema's messages may quote the value, so for
// sensitive keys and values from secrets only the fact is reported.
func SchemaViolations(r *resolve.Resolver, cfg *tree.Value) []SchemaViolation {
	s := r.Schema()
	if s == nil || cfg == nil {
		return nil
	}
	sens := r.Sensitivity()
	var out []SchemaViolation
	for _, v := range s.Validate(cfg) {
		sv := SchemaViolation{Key: v.Path, Pos: diag.Pos{File: s.File}, Leaf: cfg.Lookup(tree.SplitKey(v.Path)), Detail: v.Message}
		if sv.Leaf != nil {
			sv.Pos = sv.Leaf.WrittenAt()
		}
		if sens.Path(v.Path) || (sv.Leaf != nil && sv.Leaf.Secret) {
			sv.Detail = "value does not satisfy the schema (details hidden: the key is sensitive)"
		}
		out = append(out, sv)
	}
	return out
}
