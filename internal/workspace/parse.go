package workspace

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/promote"
	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/tree"
)

// parser walks the YAML node tree of envplane.yaml so that every problem can
// be reported with its line and column, and all of them at once.
type parser struct {
	errs            diag.List
	sawEnvironments bool
	recipientPos    map[string]diag.Pos
}

func pos(n *yaml.Node) diag.Pos { return diag.Pos{File: FileName, Line: n.Line, Column: n.Column} }

func (p *parser) errorf(at diag.Pos, format string, args ...any) {
	p.errs = append(p.errs, diag.Errorf(at, format, args...))
}

type fieldFunc func(v *yaml.Node)

// mapping checks that n is a mapping and dispatches its keys, reporting
// unknown keys with the closest known one.
func (p *parser) mapping(n *yaml.Node, what string, fields map[string]fieldFunc) {
	if n.Kind != yaml.MappingNode {
		p.errorf(pos(n), "%s: expected a mapping, found %s", what, tree.DescribeYAML(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errorf(pos(k), "%s: %q is set twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		fn, ok := fields[k.Value]
		if !ok {
			known := make([]string, 0, len(fields))
			for name := range fields {
				known = append(known, name)
			}
			sort.Strings(known)
			msg := "unknown field %q in %s"
			if s := suggest.Closest(k.Value, known); s != "" {
				p.errorf(pos(k), msg+" (did you mean %q?)", k.Value, what, s)
			} else {
				p.errorf(pos(k), msg+" (known: %s)", k.Value, what, strings.Join(known, ", "))
			}
			continue
		}
		fn(v)
	}
}

func (p *parser) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		p.errorf(pos(n), "%s: expected a string, found %s", what, tree.DescribeYAML(n))
		return ""
	}
	return n.Value
}

func (p *parser) strList(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(pos(n), "%s: expected a list of strings, found %s", what, tree.DescribeYAML(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, it := range n.Content {
		if s := p.str(it, what); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		p.errorf(pos(n), "%s: expected true or false, found %s", what, tree.DescribeYAML(n))
		return false
	}
	_ = n.Decode(&b)
	return b
}

func (p *parser) integer(n *yaml.Node, what string, min int) int {
	i, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || i < min {
		p.errorf(pos(n), "%s: expected a whole number of at least %d, found %s", what, min, tree.DescribeYAML(n))
		return 0
	}
	return i
}

func (p *parser) enum(n *yaml.Node, what string, allowed ...string) string {
	s := p.str(n, what)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	if s != "" {
		p.errorf(pos(n), "%s: %q is not one of %s", what, s, strings.Join(allowed, " | "))
	}
	return ""
}

func (p *parser) workspace(n *yaml.Node, w *Workspace) {
	p.mapping(n, FileName, map[string]fieldFunc{
		"name": func(v *yaml.Node) { w.Name = p.str(v, "name") },
		"environments": func(v *yaml.Node) {
			p.sawEnvironments = true
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				p.errorf(pos(v), "environments: expected a non-empty list of environments, lowest first")
				return
			}
			if len(v.Content) > MaxEnvironments {
				p.errorf(pos(v), "environments: %d listed; a workspace has at most %d", len(v.Content), MaxEnvironments)
				return
			}
			for _, e := range v.Content {
				w.Environments = append(w.Environments, p.environment(e))
			}
		},
		"services": func(v *yaml.Node) {
			w.Services = p.strList(v, "services")
			if v.Kind == yaml.SequenceNode && len(v.Content) > MaxServices {
				p.errorf(pos(v), "services: %d listed; a workspace has at most %d", len(v.Content), MaxServices)
				w.Services = nil
			} else if v.Kind == yaml.SequenceNode {
				seen := map[string]bool{}
				for _, it := range v.Content {
					if seen[it.Value] {
						p.errorf(pos(it), "service %q is listed twice", it.Value)
					}
					seen[it.Value] = true
				}
			}
		},
		"config":  func(v *yaml.Node) { p.config(v, &w.Config) },
		"flags":   func(v *yaml.Node) { w.Flags = p.strList(v, "flags") },
		"secrets": func(v *yaml.Node) { p.secrets(v, &w.Secrets) },
		"data": func(v *yaml.Node) {
			w.Data.Pos = pos(v)
			p.mapping(v, "data", map[string]fieldFunc{
				"database": func(v *yaml.Node) { w.Data.Database = p.str(v, "data.database") },
				"rules":    func(v *yaml.Node) { w.Data.Rules = p.str(v, "data.rules") },
				"seed":     func(v *yaml.Node) { w.Data.Seed = p.str(v, "data.seed") },
			})
		},
		"policies": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errorf(pos(v), "policies: expected a list of policies")
				return
			}
			for _, it := range v.Content {
				w.Policies = append(w.Policies, p.policy(it))
			}
		},
	})
	if w.Secrets.Dir == "" {
		w.Secrets.Dir = "secrets"
	}
}

func (p *parser) environment(n *yaml.Node) Environment {
	e := Environment{Pos: pos(n)}
	if n.Kind == yaml.ScalarNode {
		e.Name = p.str(n, "environment")
		return e
	}
	p.mapping(n, "environment", map[string]fieldFunc{
		"name": func(v *yaml.Node) { e.Name = p.str(v, "environment name") },
		"data": func(v *yaml.Node) {
			e.Data = domain.DataClass(p.enum(v, "data", string(domain.DataSynthetic), string(domain.DataAnonymized), string(domain.DataProductionLike), string(domain.DataLive)))
		},
		"protection": func(v *yaml.Node) {
			e.Protection = domain.Protection(p.enum(v, "protection", string(domain.ProtectionOpen), string(domain.ProtectionGuarded), string(domain.ProtectionRestricted)))
		},
		"promotion": func(v *yaml.Node) { e.Promotion = p.promotion(v) },
	})
	if e.Name == "" && n.Kind == yaml.MappingNode {
		p.errorf(pos(n), "environment needs a `name:`")
	}
	return e
}

func (p *parser) promotion(n *yaml.Node) *Promotion {
	pr := &Promotion{Pos: pos(n)}
	p.mapping(n, "promotion", map[string]fieldFunc{
		"from": func(v *yaml.Node) { pr.From = p.str(v, "promotion.from") },
		"auto": func(v *yaml.Node) { pr.Auto = p.boolean(v, "promotion.auto") },
		"approvals": func(v *yaml.Node) {
			a := &Approvals{Required: 1}
			p.mapping(v, "promotion.approvals", map[string]fieldFunc{
				"required":          func(v *yaml.Node) { a.Required = p.integer(v, "approvals.required", 1) },
				"groups":            func(v *yaml.Node) { a.Groups = p.strList(v, "approvals.groups") },
				"allowSelfApproval": func(v *yaml.Node) { a.AllowSelfApproval = p.boolean(v, "approvals.allowSelfApproval") },
			})
			pr.Approvals = a
		},
		"checks": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errorf(pos(v), "promotion.checks: expected a list")
				return
			}
			for _, it := range v.Content {
				if it.Kind == yaml.ScalarNode {
					c := Check{Name: it.Value, Type: it.Value}
					if c.Name != "policy" && c.Name != "references" { // the built-in checks
						c.Type = "external"
					}
					pr.Checks = append(pr.Checks, c)
					continue
				}
				c := Check{}
				p.mapping(it, "promotion check", map[string]fieldFunc{
					"name": func(v *yaml.Node) { c.Name = p.str(v, "check name") },
					"type": func(v *yaml.Node) { c.Type = p.enum(v, "check type", "policy", "references", "external", "http") },
					"url":  func(v *yaml.Node) { c.URL = p.str(v, "check url") },
					"expectStatus": func(v *yaml.Node) {
						if c.ExpectStatus = p.integer(v, "check expectStatus", 100); c.ExpectStatus > 599 {
							p.errorf(pos(v), "check expectStatus: %d is not an HTTP status", c.ExpectStatus)
						}
					},
					"timeout": func(v *yaml.Node) { c.Timeout = p.duration(v, "check timeout") },
				})
				if c.Name == "" {
					p.errorf(pos(it), "promotion check needs a `name:`")
				}
				if c.Type == "" {
					c.Type = "external"
				}
				if c.Type == "http" && c.URL == "" {
					p.errorf(pos(it), "promotion check %q of type http needs a `url:`", c.Name)
				}
				pr.Checks = append(pr.Checks, c)
			}
		},
		"checklist": func(v *yaml.Node) { pr.Checklist = p.strList(v, "promotion.checklist") },
		"waitTimer": func(v *yaml.Node) { pr.WaitTimer = p.duration(v, "promotion.waitTimer") },
		"freeze": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errorf(pos(v), "promotion.freeze: expected a list of windows")
				return
			}
			for _, it := range v.Content {
				pr.Freeze = append(pr.Freeze, p.freeze(it))
			}
		},
		"webhooks": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errorf(pos(v), "promotion.webhooks: expected a list of webhooks")
				return
			}
			for _, it := range v.Content {
				var h Webhook
				p.mapping(it, "promotion webhook", map[string]fieldFunc{
					"url":    func(v *yaml.Node) { h.URL = p.str(v, "webhook url") },
					"secret": func(v *yaml.Node) { h.Secret = p.str(v, "webhook secret") },
					"events": func(v *yaml.Node) { h.Events = p.strList(v, "webhook events") },
				})
				if !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
					p.errorf(pos(it), "promotion webhook needs an http(s) `url:`")
				}
				if h.Secret == "" {
					p.errorf(pos(it), "promotion webhook needs `secret:`, the name of a server-side secret of the environment that signs its requests")
				}
				for _, e := range h.Events {
					if !slices.Contains(WebhookEvents, e) {
						p.errorf(pos(it), "promotion webhook event %q is not one of %s", e, strings.Join(WebhookEvents, ", "))
					}
				}
				pr.Webhooks = append(pr.Webhooks, h)
			}
		},
	})
	return pr
}

// WebhookEvents are the promotion events a webhook may ask for.
var WebhookEvents = []string{"promotion.created", "promotion.approved", "promotion.applied", "promotion.failed", "promotion.rejected"}

// duration reads a non-negative Go duration like 10m or 1h30m.
func (p *parser) duration(v *yaml.Node, what string) time.Duration {
	d, err := time.ParseDuration(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || d < 0 {
		p.errorf(pos(v), "%s: expected a duration like 10m or 1h30m, found %s", what, tree.DescribeYAML(v))
		return 0
	}
	return d
}

// freeze reads one freeze window: {from, to} in RFC 3339 or {cron,
// duration, timezone}, with an optional reason.
func (p *parser) freeze(n *yaml.Node) Freeze {
	var f Freeze
	var sawFrom, sawTo bool
	rfc := func(v *yaml.Node, what string) time.Time {
		t, err := time.Parse(time.RFC3339, v.Value)
		if err != nil {
			p.errorf(pos(v), "%s: expected an RFC 3339 time like 2025-12-20T00:00:00Z, found %s", what, tree.DescribeYAML(v))
		}
		return t
	}
	p.mapping(n, "promotion freeze", map[string]fieldFunc{
		"from":     func(v *yaml.Node) { f.From, sawFrom = rfc(v, "freeze from"), true },
		"to":       func(v *yaml.Node) { f.To, sawTo = rfc(v, "freeze to"), true },
		"cron":     func(v *yaml.Node) { f.Cron = p.str(v, "freeze cron") },
		"duration": func(v *yaml.Node) { f.Duration = p.duration(v, "freeze duration") },
		"timezone": func(v *yaml.Node) {
			f.Timezone = p.str(v, "freeze timezone")
			if _, err := time.LoadLocation(f.Timezone); err != nil {
				p.errorf(pos(v), "freeze timezone: unknown time zone %q", f.Timezone)
			}
		},
		"reason": func(v *yaml.Node) { f.Reason = p.str(v, "freeze reason") },
	})
	if n.Kind != yaml.MappingNode {
		return f
	}
	switch {
	case f.Cron != "" && (sawFrom || sawTo):
		p.errorf(pos(n), "promotion freeze: give either from/to or cron/duration, not both")
	case f.Cron != "":
		if _, err := promote.ParseCron(f.Cron); err != nil {
			p.errorf(pos(n), "promotion freeze: %v", err)
		}
		if f.Duration <= 0 || f.Duration > 31*24*time.Hour {
			p.errorf(pos(n), "promotion freeze: a cron window needs a `duration:` from 1m to 744h")
		}
	case !sawFrom || !sawTo:
		p.errorf(pos(n), "promotion freeze: needs `from:` and `to:` (RFC 3339), or `cron:` and `duration:`")
	case !f.From.IsZero() && !f.To.After(f.From):
		p.errorf(pos(n), "promotion freeze: `to:` must be after `from:`")
	}
	return f
}

func (p *parser) config(n *yaml.Node, c *Config) {
	p.mapping(n, "config", map[string]fieldFunc{
		"layers": func(v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.errorf(pos(v), "config.layers: expected a list of file layers, lowest precedence first")
				return
			}
			for _, it := range v.Content {
				l := Layer{Pos: pos(it)}
				if it.Kind == yaml.ScalarNode {
					l.Path = p.str(it, "layer")
				} else {
					p.mapping(it, "layer", map[string]fieldFunc{
						"path":     func(v *yaml.Node) { l.Path = p.str(v, "layer path") },
						"at":       func(v *yaml.Node) { l.At = p.str(v, "layer at") },
						"required": func(v *yaml.Node) { l.Required = p.boolean(v, "layer required") },
					})
				}
				c.Layers = append(c.Layers, l)
			}
		},
		"env": func(v *yaml.Node) {
			p.mapping(v, "config.env", map[string]fieldFunc{
				"prefix": func(v *yaml.Node) {
					c.Env.Prefix = p.str(v, "config.env.prefix")
					c.Env.PrefixPos = pos(v)
				},
				"select": func(v *yaml.Node) { c.Env.Select = p.envSelect(v) },
				"bind": func(v *yaml.Node) {
					if v.Kind != yaml.MappingNode {
						p.errorf(pos(v), "config.env.bind: expected a mapping of VARIABLE: key.path")
						return
					}
					for i := 0; i+1 < len(v.Content); i += 2 {
						k, val := v.Content[i], v.Content[i+1]
						c.Env.Bind = append(c.Env.Bind, Bind{Var: k.Value, Path: p.str(val, "config.env.bind."+k.Value), Pos: pos(k)})
					}
				},
			})
		},
		"schema": func(v *yaml.Node) {
			c.Schema = p.str(v, "config.schema")
			c.SchemaPos = pos(v)
		},
		"sensitive": func(v *yaml.Node) { c.Sensitive = p.strList(v, "config.sensitive") },
	})
}

func (p *parser) secrets(n *yaml.Node, s *Secrets) {
	p.mapping(n, "secrets", map[string]fieldFunc{
		"dir": func(v *yaml.Node) { s.Dir = p.str(v, "secrets.dir") },
		"recipients": func(v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				p.errorf(pos(v), "secrets.recipients: expected a mapping of environment: [age1… recipients]")
				return
			}
			s.Recipients = map[string][]string{}
			p.recipientPos = map[string]diag.Pos{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, val := v.Content[i], v.Content[i+1]
				p.recipientPos[k.Value] = pos(k)
				rs := p.strList(val, "secrets.recipients."+k.Value)
				if val.Kind == yaml.SequenceNode {
					for _, it := range val.Content {
						if it.Value != "" && !strings.HasPrefix(it.Value, "age1") {
							p.errorf(pos(it), "secrets.recipients.%s: %q is not an age recipient (age1…)", k.Value, it.Value)
						}
					}
				}
				s.Recipients[k.Value] = rs
			}
		},
	})
}

func (p *parser) policy(n *yaml.Node) Policy {
	pol := Policy{Pos: pos(n), Severity: "error"}
	p.mapping(n, "policy", map[string]fieldFunc{
		"name":         func(v *yaml.Node) { pol.Name = p.str(v, "policy name") },
		"environments": func(v *yaml.Node) { pol.Environments = p.strList(v, "policy environments") },
		"services":     func(v *yaml.Node) { pol.Services = p.strList(v, "policy services") },
		"rule": func(v *yaml.Node) {
			pol.Rule = p.str(v, "policy rule")
			pol.RulePos = pos(v)
			if v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				pol.RuleQuote = 1
			}
		},
		"message":  func(v *yaml.Node) { pol.Message = p.str(v, "policy message") },
		"severity": func(v *yaml.Node) { pol.Severity = p.enum(v, "policy severity", "error", "warning") },
	})
	return pol
}

// envSelect reads config.env.select: the variables that may name the
// environment, each a valid variable name, listed once.
func (p *parser) envSelect(n *yaml.Node) []string {
	const what = "config.env.select"
	if n.Kind != yaml.SequenceNode {
		p.errorf(pos(n), "%s: expected a list of environment variable names (like [APP_ENV, NODE_ENV]), found %s", what, tree.DescribeYAML(n))
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range n.Content {
		if it.Kind != yaml.ScalarNode || it.ShortTag() == "!!null" {
			p.str(it, what) // reports it
			continue
		}
		name := it.Value
		switch {
		case !varNameRE().MatchString(name):
			p.errorf(pos(it), "%s: %q is not a valid environment variable name", what, name)
		case seen[name]:
			p.errorf(pos(it), "%s: %s is listed twice", what, name)
		default:
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}
