package cli

import (
	"io/fs"
	"slices"
	"strings"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/policy"
	"github.com/envplane/envplane/internal/resolve"
	"github.com/envplane/envplane/internal/workspace"
)

// compileWorkspace prepares the workspace for any command and reports every
// problem of it at once: envplane.yaml, the schema and the CEL policies.
//
// Every command compiles the policies, so a policy that does not compile
// is an error for resolve, explain, diff and run too, not only for lint.
// CEL's first compile in a process costs about 3 ms of CPU (its parser's
// tables are built on first use), so it runs on its own goroutine while
// config.Compile reads the rest; see docs/PERFORMANCE.md §3.
//
// When envplane.yaml itself has errors, config.Compile stops there; the
// parts that could be read — the schema and the policies — are checked
// too, so fixing one problem does not reveal the next.
func compileWorkspace(fsys fs.FS) (*config.Compiled, error) {
	type policies struct {
		ws       *workspace.Workspace
		wsErr    error
		compiled *policy.Compiled
		err      error
	}
	done := make(chan policies, 1)
	go func() {
		var p policies
		p.ws, p.wsErr = workspace.LoadPartial(fsys)
		if p.ws != nil {
			var rules []workspace.Policy
			for _, pol := range p.ws.Policies {
				if strings.TrimSpace(pol.Rule) != "" {
					rules = append(rules, pol)
				}
			}
			p.compiled, p.err = policy.Compile(rules)
		}
		done <- p
	}()
	c, err := config.Compile(fsys)
	p := <-done
	if err == nil && p.err == nil {
		c.Policies = p.compiled
		return c, nil
	}
	all := diag.Of(err)
	if p.wsErr != nil && p.ws != nil && p.ws.Config.Schema != "" && !mentions(all, p.ws.Config.SchemaPos) {
		// envplane.yaml has errors, so config.Compile did not load the schema.
		_, serr := resolve.New(p.ws)
		all = append(all, diag.Of(serr)...)
	}
	all = append(all, diag.Of(p.err)...)
	all = all.Sort()
	return nil, slices.CompactFunc(all, func(a, b diag.Diagnostic) bool { return a == b })
}

// mentions reports whether a problem is already placed on pos's line.
func mentions(l diag.List, pos diag.Pos) bool {
	for _, d := range l {
		if pos.Line > 0 && d.Pos.File == pos.File && d.Pos.Line == pos.Line {
			return true
		}
	}
	return false
}
