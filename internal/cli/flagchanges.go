package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// flags set and flags changes: remote commands over PATCH
// /api/v1/environments/{env}/flags/{key} and the change requests a
// restricted environment turns such changes into.

// flagChangeOut is what the change request commands print from.
type flagChangeOut struct {
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Flag        string `json:"flag"`
	State       string `json:"state"`
	RequestedBy string `json:"requestedBy"`
	Reason      string `json:"reason"`
	Change      struct {
		State          *string         `json:"state"`
		DefaultVariant *string         `json:"defaultVariant"`
		Targeting      json.RawMessage `json:"targeting"`
	} `json:"change"`
	Approvals struct {
		Required int      `json:"required"`
		Groups   []string `json:"groups"`
		Given    []struct {
			By string `json:"by"`
		} `json:"given"`
	} `json:"approvals"`
}

// awaiting says how many more approvals fc needs, and from whom.
func (fc flagChangeOut) awaiting() string {
	n := fc.Approvals.Required - len(fc.Approvals.Given)
	s := fmt.Sprintf("awaiting %d approval", n)
	if n != 1 {
		s += "s"
	}
	if len(fc.Approvals.Groups) > 0 {
		s += " from " + strings.Join(fc.Approvals.Groups, ", ")
	}
	return s
}

func (fc flagChangeOut) summary() string {
	var parts []string
	if c := fc.Change; c.State != nil {
		parts = append(parts, "state "+*c.State)
	}
	if c := fc.Change; c.DefaultVariant != nil {
		parts = append(parts, "default variant "+*c.DefaultVariant)
	}
	if c := fc.Change; c.Targeting != nil {
		parts = append(parts, "targeting "+string(c.Targeting))
	}
	return strings.Join(parts, ", ")
}

func (a *app) printFlagChange(raw json.RawMessage) error {
	var fc flagChangeOut
	if err := json.Unmarshal(raw, &fc); err != nil {
		return err
	}
	state := fc.State
	if state == "pending" {
		state = "pending, " + fc.awaiting()
	}
	_, err := fmt.Fprintf(a.stdout, "change request %s (%s in %s) is %s\n", fc.ID, fc.Flag, fc.Environment, state)
	if err == nil && fc.Reason != "" {
		_, err = fmt.Fprintf(a.stdout, "  %s\n", fc.Reason)
	}
	return err
}

func (a *app) flagsSetCommand() *cobra.Command {
	var r remote
	var env, state, variant, targeting string
	cmd := &cobra.Command{
		Use:   "set KEY --env E [--state ENABLED|DISABLED] [--default-variant V] [--targeting JSON]",
		Short: "Change a flag in one environment of a server (a change request in restricted environments)",
		Long: `Set overrides a flag's state, default variant and/or targeting in one environment
of the server, without a release (PATCH /api/v1/environments/{env}/flags/{key}).
In a restricted environment the change does not apply at once: it becomes a change
request that applies once it has the approvals of the environment's promotion block
(see envplane flags changes).`,
		Args: argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return fmt.Errorf("--env ENV is required")
			}
			body := map[string]any{}
			if state != "" {
				body["state"] = state
			}
			if variant != "" {
				body["defaultVariant"] = variant
			}
			if targeting != "" {
				var rule json.RawMessage
				if err := json.Unmarshal([]byte(targeting), &rule); err != nil {
					return fmt.Errorf("--targeting: want a JSONLogic rule as JSON (or null to remove it): %v", err)
				}
				body["targeting"] = rule
			}
			if len(body) == 0 {
				return fmt.Errorf("give at least one of --state, --default-variant, --targeting")
			}
			var raw json.RawMessage
			status, err := a.call(cmd.Context(), &r, "PATCH", "/api/v1/environments/"+url.PathEscape(env)+"/flags/"+url.PathEscape(args[0]), nil, body, &raw)
			if err != nil {
				return err
			}
			if status == http.StatusAccepted {
				var fc flagChangeOut
				if err := json.Unmarshal(raw, &fc); err != nil {
					return err
				}
				_, err := fmt.Fprintf(a.stdout, "change request %s %s\n", fc.ID, fc.awaiting())
				return err
			}
			var f struct {
				Key, State, DefaultVariant string
			}
			if err := json.Unmarshal(raw, &f); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "flag %s in %s: %s, default variant %s\n", f.Key, env, f.State, orDash(f.DefaultVariant))
			return err
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "the server's environment to change the flag in")
	cmd.Flags().StringVar(&state, "state", "", "ENABLED or DISABLED")
	cmd.Flags().StringVar(&variant, "default-variant", "", "one of the flag's variants")
	cmd.Flags().StringVar(&targeting, "targeting", "", "a JSONLogic rule as JSON; null or {} removes the targeting")
	a.remoteFlags(cmd, &r)
	return cmd
}

func (a *app) flagsChangesCommand() *cobra.Command {
	var r remote
	var env string
	base := func() (string, error) {
		if env == "" {
			return "", fmt.Errorf("--env ENV is required")
		}
		return "/api/v1/environments/" + url.PathEscape(env) + "/flags/changes", nil
	}
	cmd := &cobra.Command{
		Use:   "changes list|show|approve|reject|cancel --env E",
		Short: "Flag change requests of a restricted environment on a server",
	}
	var state string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list --env E [--state S] [--json]",
		Short: "List the environment's change requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := base()
			if err != nil {
				return err
			}
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", path, q, nil, &raw); err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(raw)
			}
			var res struct {
				Changes []flagChangeOut `json:"changes"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFLAG\tSTATE\tAPPROVALS\tREQUESTED BY\tCHANGE")
			for _, fc := range res.Changes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", fc.ID, fc.Flag, fc.State, len(fc.Approvals.Given), fc.Approvals.Required, fc.RequestedBy, fc.summary())
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only requests in this state (pending, applied, rejected, cancelled, superseded, stale)")
	list.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	show := &cobra.Command{
		Use:   "show ID --env E",
		Short: "Show a change request with its approvals (JSON)",
		Args:  argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := base()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", path+"/"+url.PathEscape(args[0]), nil, nil, &raw); err != nil {
				return err
			}
			return a.printJSON(raw)
		},
	}
	cmd.AddCommand(list, show)
	var reason string
	for _, c := range []struct{ verb, short string }{
		{"approve", "Approve a change request (approver, admin); the last approval needed applies it"},
		{"reject", "Reject a change request (approver, admin)"},
		{"cancel", "Cancel your change request (any, for an admin)"},
	} {
		sub := &cobra.Command{
			Use:   c.verb + " ID --env E",
			Short: c.short,
			Args:  argCount(1, 1),
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := base()
				if err != nil {
					return err
				}
				var body any
				if c.verb == "reject" && reason != "" {
					body = map[string]string{"reason": reason}
				}
				var raw json.RawMessage
				if _, err := a.call(cmd.Context(), &r, "POST", path+"/"+url.PathEscape(args[0])+"/"+c.verb, nil, body, &raw); err != nil {
					return err
				}
				return a.printFlagChange(raw)
			},
		}
		if c.verb == "reject" {
			sub.Flags().StringVar(&reason, "reason", "", "why (recorded with the request and in the audit log)")
		}
		cmd.AddCommand(sub)
	}
	cmd.PersistentFlags().StringVar(&env, "env", "", "the server's environment")
	a.remoteFlags(cmd, &r)
	return cmd
}
