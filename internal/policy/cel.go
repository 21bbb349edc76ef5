// Package policy compiles and evaluates the user policies of envplane.yaml:
// CEL expressions over a resolved config, its environment and service, with
// a cost limit, where a missing key is a finding rather than a crash. The
// same engine serves `envplane lint`, the server's write checks and the
// promotion gate.
package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/tree"
	"github.com/envplane/envplane/internal/workspace"
)

// costLimit bounds the work one policy may do on one config, so a runaway
// comprehension cannot stall lint or the server.
const costLimit = 1_000_000

// Compiled is a workspace's user policies, compiled once.
type Compiled struct {
	policies []compiledPolicy
}

type compiledPolicy struct {
	workspace.Policy
	program  cel.Program
	firstKey []string // the first config.a.b path the rule reads, to place findings
}

var configPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bconfig((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`) })

// Compile type-checks every policy and reports all that do not compile.
func Compile(policies []workspace.Policy) (*Compiled, error) {
	env, err := cel.NewEnv(
		cel.Variable("config", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("env", cel.StringType),
		cel.Variable("service", cel.StringType),
		cel.Variable("environment", cel.MapType(cel.StringType, cel.StringType)),
	)
	if err != nil {
		return nil, err
	}
	out := &Compiled{}
	var errs diag.List
	for _, p := range policies {
		ast, iss := env.Compile(p.Rule)
		if iss.Err() != nil {
			for _, e := range iss.Errors() {
				errs = append(errs, diag.Errorf(rulePos(p, e.Location.Line(), e.Location.Column()),
					"policy %q: rule does not compile: %s", p.Name, e.Message))
			}
			continue
		}
		if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
			errs = append(errs, diag.Errorf(p.RulePos, "policy %q: rule must be true or false, but it gives %s", p.Name, t))
			continue
		}
		prg, err := env.Program(ast, cel.CostLimit(costLimit), cel.EvalOptions(cel.OptTrackCost))
		if err != nil {
			errs = append(errs, diag.Errorf(p.RulePos, "policy %q: %v", p.Name, err))
			continue
		}
		cp := compiledPolicy{Policy: p, program: prg}
		if m := configPathRE().FindStringSubmatch(p.Rule); m != nil {
			cp.firstKey = strings.Split(strings.TrimPrefix(m[1], "."), ".")
		}
		out.policies = append(out.policies, cp)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// rulePos places a CEL error (1-based line, 0-based column within the rule)
// in envplane.yaml. Rules are usually one line; for multi-line block scalars
// only the line is moved.
func rulePos(p workspace.Policy, line, col int) diag.Pos {
	pos := p.RulePos
	if pos.Line == 0 {
		return pos
	}
	if line <= 1 {
		pos.Column += col + p.RuleQuote
		return pos
	}
	pos.Line += line - 1
	return pos
}

// Violation is a policy that does not hold for one config.
type Violation struct {
	Policy   string
	Severity string
	Message  string
	Path     string
	Source   string
}

// Evaluate runs every policy that applies to (env, service) on config. A
// rule that reads a missing key is a violation, never a crash.
func (c *Compiled) Evaluate(e workspace.Environment, service string, config *tree.Value) []Violation {
	if c == nil {
		return nil
	}
	var vars map[string]any
	var out []Violation
	for _, p := range c.policies {
		if !applies(p.Environments, e.Name) || (len(p.Services) > 0 && !applies(p.Services, service)) {
			continue
		}
		if vars == nil {
			cfg, _ := config.Interface().(map[string]any)
			vars = map[string]any{
				"config":      cfg,
				"env":         e.Name,
				"service":     service,
				"environment": map[string]string{"name": e.Name, "data": string(e.Data), "protection": string(e.Protection)},
			}
		}
		val, _, err := p.program.Eval(vars)
		v := Violation{Policy: p.Name, Severity: p.Severity, Source: p.RulePos.String()}
		path, src := locate(config, p.firstKey)
		if src != "" {
			v.Path, v.Source = path, src
		}
		switch {
		case err != nil:
			v.Message = fmt.Sprintf("policy %s: cannot evaluate %s: %s", p.Name, p.Rule, explainEvalError(err))
		case val.Value() != true:
			if val.Value() != false {
				// The value itself may be a secret: name its type only.
				v.Message = fmt.Sprintf("policy %s: rule gave a %s, expected true or false", p.Name, val.Type().TypeName())
				break
			}
			msg := p.Message
			if msg == "" {
				msg = "rule " + p.Rule + " does not hold"
			}
			v.Message = "policy " + p.Name + ": " + msg
		default:
			continue
		}
		out = append(out, v)
	}
	return out
}

func explainEvalError(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "no such key") {
		return msg + " (the key is missing from this config)"
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return "unsupported operation"
	}
	// CEL quotes the operands it could not use (`invalid RFC 3339
	// timestamp "…"`), and an operand may be a secret: findings, promotion
	// messages and the audit log never carry them.
	return quotedOperand().ReplaceAllString(msg, `"<hidden>"`)
}

// quotedOperand matches a double-quoted string in a CEL error message.
var quotedOperand = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"(?:[^"\\]|\\.)*"`) })

func applies(list []string, name string) bool {
	if len(list) == 0 {
		return true
	}
	for _, l := range list {
		if l == name {
			return true
		}
	}
	return false
}

// locate finds the deepest existing value along path, for a finding's place.
func locate(root *tree.Value, path []string) (string, string) {
	var found *tree.Value
	n := 0
	cur := root
	for i, seg := range path {
		cur = cur.Get(seg)
		if cur == nil {
			break
		}
		found, n = cur, i+1
	}
	if found == nil {
		return "", ""
	}
	return strings.Join(path[:n], "."), found.WrittenAt().String()
}
