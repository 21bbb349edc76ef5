package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/config"
	"github.com/envplane/envplane/internal/diag"
	"github.com/envplane/envplane/internal/report"
)

func (a *app) diffCommand() *cobra.Command {
	var service, format string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "diff ENV_A ENV_B [--service S] [--format text|json|markdown]",
		Short: "Compare the resolved configs of two environments (exit 1 when they differ)",
		Long: `Diff resolves both environments and lists every key added, removed or changed from
ENV_A to ENV_B. Sensitive and secret values show as "<redacted>", but whether they
changed is still reported. References nothing sets are compared as written.`,
		Args: argCount(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format, []string{"text", "json", "markdown"}); err != nil {
				return err
			}
			l, err := a.load()
			if err != nil {
				return err
			}
			if err := a.checkEnvironments(l, args[0], args[1]); err != nil {
				return err
			}
			var errs diag.List
			appendErr(&errs, l.Check(args[0], service).Err())
			appendErr(&errs, l.Check(args[1], "").Err())
			if len(errs) > 0 {
				return errs
			}
			reqA, err := a.request(l, args[0], service, false)
			if err != nil {
				return err
			}
			reqB, err := a.request(l, args[1], service, false)
			if err != nil {
				return err
			}
			ra, rb := l.Resolver.Resolve(reqA), l.Resolver.Resolve(reqB)
			// A file that does not parse would silently drop out of the
			// comparison; only unset references are tolerated.
			if err := config.Blocking(ra, rb).Err(); err != nil {
				return err
			}
			o := l.RenderOptions(args[0], service, reveal)
			changes := report.Diff(ra.Tree, rb.Tree, o)
			var b bytes.Buffer
			switch format {
			case "json":
				if err := encodeJSON(&b, struct {
					Changes []report.Change `json:"changes"`
				}{changes}); err != nil {
					return err
				}
			case "markdown":
				writeDiffMarkdown(&b, args[0], args[1], service, changes)
			default:
				writeDiffText(&b, args[0], args[1], changes)
			}
			if _, err := a.stdout.Write(b.Bytes()); err != nil {
				return err
			}
			if len(changes) > 0 {
				return findings()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "service")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json or markdown")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print sensitive and secret values")
	return cmd
}

func writeDiffText(b *bytes.Buffer, ea, eb string, changes []report.Change) {
	if len(changes) == 0 {
		fmt.Fprintf(b, "%s and %s resolve to the same config\n", ea, eb)
		return
	}
	fmt.Fprintf(b, "--- %s\n+++ %s\n", ea, eb)
	var added, removed, changed int
	for _, c := range changes {
		switch c.Kind {
		case "added":
			added++
			fmt.Fprintf(b, "+ %s: %s\n", c.Path, c.B)
		case "removed":
			removed++
			fmt.Fprintf(b, "- %s: %s\n", c.Path, c.A)
		default:
			changed++
			fmt.Fprintf(b, "~ %s: %s -> %s\n", c.Path, c.A, c.B)
		}
	}
	fmt.Fprintf(b, "%d changed, %d added, %d removed\n", changed, added, removed)
}

func writeDiffMarkdown(b *bytes.Buffer, ea, eb, service string, changes []report.Change) {
	title := fmt.Sprintf("### Config diff: `%s` → `%s`", ea, eb)
	if service != "" {
		title += fmt.Sprintf(" (service `%s`)", service)
	}
	b.WriteString(title + "\n\n")
	if len(changes) == 0 {
		b.WriteString("No differences.\n")
		return
	}
	fmt.Fprintf(b, "| | key | %s | %s |\n|---|---|---|---|\n", mdCell(ea), mdCell(eb))
	for _, c := range changes {
		mark := map[string]string{"added": "➕", "removed": "➖", "changed": "✏️"}[c.Kind]
		fmt.Fprintf(b, "| %s | `%s` | %s | %s |\n", mark, mdCell(c.Path), mdValue(c.A), mdValue(c.B))
	}
	fmt.Fprintf(b, "\n%d difference(s).\n", len(changes))
}

func mdValue(raw json.RawMessage) string {
	if string(raw) == "null" {
		return ""
	}
	return "`" + strings.ReplaceAll(mdCell(string(raw)), "`", "'") + "`"
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
