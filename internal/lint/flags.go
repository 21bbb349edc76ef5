package lint

import (
	"fmt"
	"strings"

	"github.com/envplane/envplane/internal/flags"
	"github.com/envplane/envplane/internal/suggest"
)

// RuleFlag reports flag files that do not load: syntax, malformed
// targeting, mixed variant types, a defaultVariant that is no variant, a
// $ref to nothing or in a cycle, and environment names the workspace does
// not define.
const RuleFlag = "flag"

func (l *linter) flags() {
	if len(l.ws.Flags) == 0 {
		return
	}
	doc := flags.ReadFS(l.ws.FS, l.ws.Flags)
	for _, p := range doc.Problems() {
		path := p.Flag
		if p.Flag != "" && p.Field != "" {
			path += "." + p.Field
		}
		l.add(Finding{Rule: RuleFlag, Severity: SeverityError, Path: path, Message: p.Diagnostic().Message, Source: p.Pos.String()})
	}
	known := l.ws.EnvironmentNames()
	for _, r := range doc.Environments() {
		if _, ok := l.ws.Environment(r.Name); ok {
			continue
		}
		msg := fmt.Sprintf("flag %s: environments: %q is not an environment of the workspace", r.Flag, r.Name)
		if s := suggest.Closest(r.Name, known); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		msg += " (known: " + strings.Join(known, ", ") + ")"
		l.add(Finding{Rule: RuleFlag, Severity: SeverityError, Path: r.Flag + ".environments." + r.Name, Message: msg, Source: r.Pos.String()})
	}
}
