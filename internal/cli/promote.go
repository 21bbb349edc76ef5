package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// promotionOut is what the promotion commands print from.
type promotionOut struct {
	ID          string `json:"id"`
	Release     string `json:"release"`
	Environment string `json:"environment"`
	From        string `json:"from"`
	State       string `json:"state"`
	RequestedBy string `json:"requestedBy"`
	Rollback    bool   `json:"rollback"`
	Reason      string `json:"reason"`
}

func (a *app) printPromotion(raw json.RawMessage) error {
	var p promotionOut
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	what := "promotion"
	if p.Rollback {
		what = "rollback"
	}
	_, err := fmt.Fprintf(a.stdout, "%s %s: %s → %s is %s\n", what, p.ID, p.Release, p.Environment, p.State)
	if err == nil && p.Reason != "" {
		_, err = fmt.Fprintf(a.stdout, "  %s\n", p.Reason)
	}
	return err
}

// promotionCommands are promote, promotions, approve, reject, cancel,
// checks, checklist and rollback: remote commands over /api/v1/promotions.
func (a *app) promotionCommands() []*cobra.Command {
	var r remote
	var out []*cobra.Command
	post := func(cmd *cobra.Command, method, path string, body any) error {
		var raw json.RawMessage
		if _, err := a.call(cmd.Context(), &r, method, path, nil, body, &raw); err != nil {
			return err
		}
		return a.printPromotion(raw)
	}
	var to string
	var emergency bool
	promote := &cobra.Command{
		Use:   "promote RELEASE --to ENV",
		Short: "Open a promotion of RELEASE into ENV through its gates",
		Args:  argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("--to ENV is required")
			}
			return post(cmd, "POST", "/api/v1/promotions", map[string]any{"release": args[0], "environment": to})
		},
	}
	promote.Flags().StringVar(&to, "to", "", "the environment to promote into")
	out = append(out, promote)

	var env, state string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List promotions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if env != "" {
				q.Set("environment", env)
			}
			if state != "" {
				q.Set("state", state)
			}
			var res struct {
				Promotions []promotionOut `json:"promotions"`
			}
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/promotions", q, nil, &raw); err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(raw)
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRELEASE\tFROM\tTO\tSTATE\tREQUESTED BY")
			for _, p := range res.Promotions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Release, p.From, p.Environment, p.State, p.RequestedBy)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&env, "env", "", "only promotions into this environment")
	list.Flags().StringVar(&state, "state", "", "only promotions in this state")
	list.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a promotion with its gates (JSON)",
		Args:  argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/promotions/"+url.PathEscape(args[0]), nil, nil, &raw); err != nil {
				return err
			}
			return a.printJSON(raw)
		},
	}
	promotions := &cobra.Command{Use: "promotions", Short: "List and show promotions"}
	promotions.AddCommand(list, show)
	out = append(out, promotions)

	for _, c := range []struct{ verb, short string }{
		{"approve", "Approve a promotion (approver, admin)"},
		{"reject", "Reject a promotion (approver, admin)"},
		{"cancel", "Cancel your promotion (any, for an admin)"},
	} {
		out = append(out, &cobra.Command{
			Use:   c.verb + " ID",
			Short: c.short,
			Args:  argCount(1, 1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return post(cmd, "POST", "/api/v1/promotions/"+url.PathEscape(args[0])+"/"+c.verb, nil)
			},
		})
	}

	var status, link string
	report := &cobra.Command{
		Use:   "report ID NAME --status passed|failed [--url U]",
		Short: "Report an external check's result (CI)",
		Args:  argCount(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return post(cmd, "PUT", "/api/v1/promotions/"+url.PathEscape(args[0])+"/checks/"+url.PathEscape(args[1]),
				map[string]string{"status": status, "url": link})
		},
	}
	report.Flags().StringVar(&status, "status", "", "passed or failed")
	report.Flags().StringVar(&link, "url", "", "where the check's results are")
	checks := &cobra.Command{Use: "checks", Short: "Report promotion checks"}
	checks.AddCommand(report)
	out = append(out, checks)

	tick := &cobra.Command{
		Use:   "tick ID N",
		Short: "Tick checklist item N (from 0) of a promotion",
		Args:  argCount(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := strconv.Atoi(args[1]); err != nil {
				return fmt.Errorf("checklist item %q: want a number from 0", args[1])
			}
			return post(cmd, "PUT", "/api/v1/promotions/"+url.PathEscape(args[0])+"/checklist/"+args[1], map[string]bool{"done": true})
		},
	}
	checklist := &cobra.Command{Use: "checklist", Short: "Tick promotion checklist items"}
	checklist.AddCommand(tick)
	out = append(out, checklist)

	var rbEnv string
	rollback := &cobra.Command{
		Use:   "rollback --env ENV [--emergency]",
		Short: "Open a promotion of the release ENV ran before (--emergency skips the wait timer only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rbEnv == "" {
				return fmt.Errorf("--env ENV is required")
			}
			return post(cmd, "POST", "/api/v1/promotions", map[string]any{"environment": rbEnv, "rollback": true, "emergency": emergency})
		},
	}
	rollback.Flags().StringVar(&rbEnv, "env", "", "the environment to roll back")
	rollback.Flags().BoolVar(&emergency, "emergency", false, "skip the wait timer (approvers and admins; audited)")
	out = append(out, rollback)
	for _, c := range out {
		a.remoteFlags(c, &r)
	}
	return out
}
