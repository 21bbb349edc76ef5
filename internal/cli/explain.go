package cli

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/report"
	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/tree"
)

func (a *app) explainCommand() *cobra.Command {
	var env, service, format string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "explain KEY --env E [--service S] [--format text|json]",
		Short: "Show where a value comes from and what it overrode",
		Args:  argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, []string{"text", "json"}); err != nil {
				return err
			}
			l, env, err := a.loadFor(env, service)
			if err != nil {
				return err
			}
			if err := l.Check(env, service).Err(); err != nil {
				return err
			}
			req, err := a.request(l, env, service, false)
			if err != nil {
				return err
			}
			res := l.Resolver.Resolve(req)
			// Explaining a config that lost a layer to a parse error (or a
			// variable to a coercion error) would name the wrong source.
			if err := config.Blocking(res).Err(); err != nil {
				return err
			}
			key := strings.Join(tree.SplitKey(args[0]), ".")
			v := res.Tree.Lookup(tree.SplitKey(args[0]))
			if v == nil {
				return fmt.Errorf("key %q is not set in %s%s%s", args[0], env, serviceSuffix(service), suggestKey(res.Tree, key))
			}
			o := l.RenderOptions(env, service, reveal)
			out := report.Explain(v, key, o)
			var b bytes.Buffer
			if format == "json" {
				if err := encodeJSON(&b, out); err != nil {
					return err
				}
			} else {
				writeExplainText(&b, out)
			}
			_, err = a.stdout.Write(b.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&env, "env", "", envFlagHelp)
	cmd.Flags().StringVar(&service, "service", "", "service")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print sensitive and secret values")
	return cmd
}

func serviceSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " for service " + s
}

func describeSource(s report.Source) string {
	var b strings.Builder
	switch s.Kind {
	case "file":
		fmt.Fprintf(&b, "%s:%d:%d", s.Name, s.Line, s.Column)
	case "default":
		fmt.Fprintf(&b, "schema default at %s:%d:%d", s.Name, s.Line, s.Column)
	case "secret":
		fmt.Fprintf(&b, "secret %s", s.Name)
		if s.Version > 0 {
			fmt.Fprintf(&b, " (version %d)", s.Version)
		}
	case "env":
		fmt.Fprintf(&b, "environment variable %s", s.Name)
	}
	if s.Via != nil {
		fmt.Fprintf(&b, ", referenced at %s", describeSource(*s.Via))
	}
	return b.String()
}

func writeExplainText(b *bytes.Buffer, out report.Explanation) {
	fmt.Fprintf(b, "%s = %s\n", out.Key, out.Value)
	fmt.Fprintf(b, "  from %s\n", describeSource(out.Source))
	if out.Unresolved {
		fmt.Fprintf(b, "  unresolved: %s has references that nothing sets\n", out.Template)
	} else if out.Template != "" {
		fmt.Fprintf(b, "  template %s\n", out.Template)
	}
	if len(out.Overridden) > 0 {
		b.WriteString("  overrides:\n")
		for _, o := range out.Overridden {
			fmt.Fprintf(b, "    %s  from %s\n", o.Value, describeSource(o))
		}
	}
}

// suggestKey proposes the closest existing keys for a typo.
func suggestKey(root *tree.Value, key string) string {
	type cand struct {
		path string
		d    int
	}
	var cands []cand
	var walk func(v *tree.Value, p string)
	walk = func(v *tree.Value, p string) {
		if p != "" {
			if d := suggest.Distance(strings.ToLower(p), strings.ToLower(key)); d <= 3 {
				cands = append(cands, cand{p, d})
			}
		}
		for _, f := range v.Fields {
			walk(f.Value, joinKey(p, f.Key))
		}
	}
	if root != nil {
		walk(root, "")
	}
	if len(cands) == 0 {
		return ""
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].d < cands[j].d })
	return fmt.Sprintf(" (did you mean %s?)", cands[0].path)
}

func joinKey(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}
