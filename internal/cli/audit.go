package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/audit"
)

func (a *app) auditCommand() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify a server's hash-chained audit log",
	}
	a.remoteFlags(cmd, &r)
	var after int64
	var format string
	list := &cobra.Command{
		Use:   "list [--after N] [--format text|json]",
		Short: "List audit entries after sequence number N",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, []string{"text", "json"}); err != nil {
				return err
			}
			q := url.Values{"after": {strconv.FormatInt(after, 10)}}
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/audit", q, nil, &raw); err != nil {
				return err
			}
			if format == "json" {
				return a.printJSON(raw)
			}
			var out struct {
				Entries []struct {
					Seq    int64  `json:"seq"`
					At     string `json:"at"`
					Actor  string `json:"actor"`
					Action string `json:"action"`
					Target string `json:"target"`
				} `json:"entries"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tTARGET")
			for _, e := range out.Entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.At, e.Actor, e.Action, e.Target)
			}
			return tw.Flush()
		},
	}
	list.Flags().Int64Var(&after, "after", 0, "only entries with a greater sequence number")
	list.Flags().StringVar(&format, "format", "text", "output format: text or json")
	var anchor string
	verify := &cobra.Command{
		Use:   "verify [--checkpoint SEQ:HEAD]",
		Short: "Prove the audit chain is intact (exit 1 when it is not)",
		Long: `Verify has the server check every link of the keyed audit chain, and the log against
the latest signed checkpoint the server wrote: a log that ends before it, or differs
from it, was truncated or rewritten. --checkpoint SEQ:HEAD checks an anchor recorded
elsewhere (the server's "audit checkpoint" log lines, or the head this command
printed earlier) as well. Exit 1 when the chain or a checkpoint does not hold.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var q url.Values
			if anchor != "" {
				cp, err := audit.ParseCheckpoint(anchor)
				if err != nil {
					return fmt.Errorf("audit verify: --checkpoint: %w", err)
				}
				q = url.Values{"checkpoint": {cp.String()}}
			}
			var out struct {
				OK         bool   `json:"ok"`
				Entries    int64  `json:"entries"`
				BadSeq     int64  `json:"badSeq"`
				Problem    string `json:"problem"`
				Head       string `json:"head"`
				Checkpoint *struct {
					Seq  int64  `json:"seq"`
					Head string `json:"head"`
				} `json:"checkpoint"`
			}
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/audit/verify", q, nil, &out); err != nil {
				return err
			}
			if !out.OK {
				fmt.Fprintf(a.stdout, "audit chain BROKEN at entry %d: %s (%d entries verified before it)\n", out.BadSeq, out.Problem, out.Entries)
				return findings()
			}
			fmt.Fprintf(a.stdout, "audit chain ok: %d entries", out.Entries)
			if out.Entries > 0 {
				fmt.Fprintf(a.stdout, ", head %d:%s", out.Entries, out.Head)
			}
			if out.Checkpoint != nil {
				fmt.Fprintf(a.stdout, "; checkpoint %d:%s holds", out.Checkpoint.Seq, out.Checkpoint.Head)
			}
			_, err := fmt.Fprintln(a.stdout)
			return err
		},
	}
	verify.Flags().StringVar(&anchor, "checkpoint", "", "also check that entry SEQ exists and has hash HEAD")
	cmd.AddCommand(list, verify)
	return cmd
}

func (a *app) tokenCommand() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and delete a server's API tokens (admin)",
	}
	a.remoteFlags(cmd, &r)
	var name, role string
	var envs, groups []string
	create := &cobra.Command{
		Use:   "create --name N --role viewer|editor|approver|admin|sdk [--env E]... [--group G]...",
		Short: "Create a token; it is shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"name": name, "role": role, "environments": nonNil(envs), "groups": nonNil(groups)}
			var out struct {
				ID    string `json:"id"`
				Token string `json:"token"`
			}
			if _, err := a.call(cmd.Context(), &r, "POST", "/api/v1/tokens", nil, body, &out); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "envplane: token %s created; it is shown once, store it now\n", out.ID)
			_, err := fmt.Fprintln(a.stdout, out.Token)
			return err
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for (required)")
	create.Flags().StringVar(&role, "role", "", "viewer, editor, approver, admin or sdk (required)")
	create.Flags().StringArrayVar(&envs, "env", nil, "environment the token is scoped to (repeatable; none = all; sdk: exactly one)")
	create.Flags().StringArrayVar(&groups, "group", nil, "approval group (repeatable)")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("role")
	var listFormat string
	list := &cobra.Command{
		Use:   "list [--format text|json]",
		Short: "List tokens (never their secret text)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(listFormat, []string{"text", "json"}); err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/tokens", nil, nil, &raw); err != nil {
				return err
			}
			if listFormat == "json" {
				return a.printJSON(raw)
			}
			var out struct {
				Tokens []struct {
					ID           string   `json:"id"`
					Name         string   `json:"name"`
					Role         string   `json:"role"`
					Environments []string `json:"environments"`
					Groups       []string `json:"groups"`
					CreatedAt    string   `json:"createdAt"`
					CreatedBy    string   `json:"createdBy"`
				} `json:"tokens"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("unexpected answer from the server: %v", err)
			}
			orDash := func(s []string, none string) string {
				if len(s) == 0 {
					return none
				}
				return strings.Join(s, ",")
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tENVIRONMENTS\tGROUPS\tCREATED\tBY")
			for _, t := range out.Tokens {
				by := t.CreatedBy
				if by == "" {
					by = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, orDash(t.Environments, "*"), orDash(t.Groups, "-"), t.CreatedAt, by)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listFormat, "format", "text", "output format: text or json")
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Revoke a token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.call(cmd.Context(), &r, "DELETE", "/api/v1/tokens/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "deleted %s\n", args[0])
			return err
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
