package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/flags"
	"github.com/envplane/envplane/internal/suggest"
	"github.com/envplane/envplane/internal/workspace"
)

func (a *app) flagsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flags list|eval|set|changes",
		Short: "List and evaluate the workspace's feature flags offline; change them on a server",
		Long: `Flags reads the flag files envplane.yaml lists under flags: (flagd's flag definition
format, or the shorthand default/environments/rollout) and evaluates them for an
environment, offline, exactly as the server will. FEATURE_<KEY> (the key upper-cased,
other characters as _) set to true or false forces a boolean flag: it evaluates
STATIC with variant "override".

flags set and flags changes talk to a server (--server, --token): set changes a flag in
one environment; in a restricted environment the change is a change request that
applies once approved (flags changes list|show|approve|reject|cancel).`,
	}
	cmd.AddCommand(a.flagsListCommand(), a.flagsEvalCommand(), a.flagsSetCommand(), a.flagsChangesCommand())
	return cmd
}

// flagSet loads the workspace's flags for env with the FEATURE_ overrides
// of the process environment applied.
func (a *app) flagSet(l *loaded, env string) (*flags.Document, *flags.Set, error) {
	if len(l.Workspace.Flags) == 0 {
		return nil, nil, fmt.Errorf("the workspace has no flag files: list them under flags: in %s", workspace.FileName)
	}
	doc := flags.ReadFS(l.Workspace.FS, l.Workspace.Flags)
	set, err := doc.Set(env).WithOverrides(a.getenv)
	if err != nil {
		return nil, nil, err
	}
	return doc, set, nil
}

func (a *app) flagsListCommand() *cobra.Command {
	var env, format string
	cmd := &cobra.Command{
		Use:   "list --env E [--format text|json]",
		Short: "List the flags of an environment: key, type, state, default variant, targeting",
		Args:  argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, []string{"text", "json"}); err != nil {
				return err
			}
			l, env, err := a.loadFor(env, "")
			if err != nil {
				return err
			}
			doc, set, err := a.flagSet(l, env)
			if err != nil {
				return err
			}
			for _, p := range doc.Problems() {
				fmt.Fprintf(a.stderr, "envplane: %s (run `envplane lint`)\n", p.Error())
			}
			infos := set.Flags()
			if format == "json" {
				type flagJSON struct {
					Key            string         `json:"key"`
					Type           string         `json:"type"`
					State          string         `json:"state"`
					DefaultVariant string         `json:"defaultVariant"`
					Variants       map[string]any `json:"variants"`
					Targeting      string         `json:"targeting,omitempty"`
					Override       string         `json:"override,omitempty"`
					Error          string         `json:"error,omitempty"`
				}
				out := struct {
					Environment string     `json:"environment"`
					Flags       []flagJSON `json:"flags"`
				}{Environment: env, Flags: []flagJSON{}}
				for _, f := range infos {
					j := flagJSON{Key: f.Key, Type: f.Type.String(), State: f.State, DefaultVariant: f.DefaultVariant,
						Variants: f.Variants, Targeting: f.Targeting, Override: f.Override}
					if len(f.Problems) > 0 {
						j.Error = f.Problems[0].Error()
					}
					out.Flags = append(out.Flags, j)
				}
				return writeJSON(a, out)
			}
			var b bytes.Buffer
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tTYPE\tSTATE\tDEFAULT\tTARGETING")
			for _, f := range infos {
				typ, state, dv, rule := f.Type.String(), f.State, f.DefaultVariant, f.Targeting
				switch {
				case len(f.Problems) > 0:
					typ, state, rule = "-", "ERROR", "PARSE_ERROR: see lint"
				case f.Override != "":
					rule = "forced by " + f.Override
				}
				if dv == "" {
					dv = "-"
				}
				if rule == "" {
					rule = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Key, typ, state, dv, rule)
			}
			tw.Flush()
			_, err = a.stdout.Write(b.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&env, "env", "", envFlagHelp)
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json")
	return cmd
}

func (a *app) flagsEvalCommand() *cobra.Command {
	var env, format, context string
	cmd := &cobra.Command{
		Use:   "eval KEY --env E [--context JSON] [--format text|json]",
		Short: "Evaluate one flag for an evaluation context: value, variant and reason",
		Long: `Eval evaluates flag KEY in environment E for the evaluation context given as a JSON
object (the targeting key is "targetingKey"), and prints the value, the variant and
the OpenFeature reason, with the error code when there is one (exit 1 then).`,
		Args: argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, []string{"text", "json"}); err != nil {
				return err
			}
			ctx := map[string]any{}
			if context != "" {
				dec := json.NewDecoder(strings.NewReader(context))
				if err := dec.Decode(&ctx); err != nil || dec.More() {
					if err == nil {
						err = fmt.Errorf("trailing data")
					}
					return fmt.Errorf("--context: expected a JSON object like '{\"targetingKey\":\"u1\",\"beta_tester\":true}': %v", err)
				}
			}
			l, env, err := a.loadFor(env, "")
			if err != nil {
				return err
			}
			_, set, err := a.flagSet(l, env)
			if err != nil {
				return err
			}
			key := args[0]
			if _, ok := set.Flag(key); !ok {
				msg := fmt.Sprintf("no flag %q in %s", key, strings.Join(l.Workspace.Flags, ", "))
				if s := suggest.Closest(key, set.Keys()); s != "" {
					msg += fmt.Sprintf("; did you mean %s?", s)
				}
				return fmt.Errorf("%s (flags: %s)", msg, strings.Join(set.Keys(), ", "))
			}
			r := set.Evaluate(key, flags.Any, nil, ctx)
			if format == "json" {
				out := struct {
					Key          string `json:"key"`
					Value        any    `json:"value"`
					Variant      string `json:"variant"`
					Reason       string `json:"reason"`
					ErrorCode    string `json:"errorCode,omitempty"`
					ErrorMessage string `json:"errorMessage,omitempty"`
				}{r.Key, r.Value, r.Variant, string(r.Reason), string(r.ErrorCode), r.ErrorMessage}
				if err := writeJSON(a, out); err != nil {
					return err
				}
			} else {
				v, _ := json.Marshal(r.Value)
				fmt.Fprintf(a.stdout, "value:   %s\nvariant: %s\nreason:  %s\n", v, orDash(r.Variant), r.Reason)
				if r.ErrorCode != "" {
					fmt.Fprintf(a.stdout, "error:   %s: %s\n", r.ErrorCode, r.ErrorMessage)
				}
			}
			if r.ErrorCode != "" {
				return findings()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", envFlagHelp)
	cmd.Flags().StringVar(&context, "context", "", `evaluation context, a JSON object ({"targetingKey":"u1",...})`)
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(a *app, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(append(b, '\n'))
	return err
}

// flagVars are the FEATURE_<KEY>=true|false variables `run` exports: every
// boolean flag evaluated without a context (the value a process gets
// before any user is known). Variables already set are left as they are.
func (a *app) flagVars(l *loaded, env string) ([]string, error) {
	if len(l.Workspace.Flags) == 0 {
		return nil, nil
	}
	_, set, err := a.flagSet(l, env)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range set.EvaluateAll(nil) {
		b, ok := r.Value.(bool)
		name := flags.EnvName(r.Key)
		if !ok || r.ErrorCode != "" || a.getenv(name) != "" {
			continue
		}
		out = append(out, fmt.Sprintf("%s=%t", name, b))
	}
	sort.Strings(out)
	return out, nil
}
