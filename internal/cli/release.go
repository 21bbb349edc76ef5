package cli

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/envplane/envplane/internal/workspace"
)

func (a *app) releaseCommand() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Upload and inspect releases on a server",
	}
	a.remoteFlags(cmd, &r)
	var labels []string
	create := &cobra.Command{
		Use:   "create [--label k=v]...",
		Short: "Upload the workspace as an immutable release",
		Long: `Create uploads envplane.yaml and every file it references (layers for every
environment and service, schema, flag files, encrypted secrets files) as a release.
Uploading the same files again answers with the same release.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := struct {
				Files  map[string]string `json:"files"`
				Labels map[string]string `json:"labels,omitempty"`
			}{Files: map[string]string{}, Labels: map[string]string{}}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("--label %q: want key=value", l)
				}
				body.Labels[k] = v
			}
			dir, err := a.workspaceDir()
			if err != nil {
				return err
			}
			files, err := releaseFiles(dir)
			if err != nil {
				return err
			}
			for p, b := range files {
				body.Files[p] = string(b)
			}
			var out struct {
				ID        string `json:"id"`
				Digest    string `json:"digest"`
				CreatedAt string `json:"createdAt"`
			}
			status, err := a.call(cmd.Context(), &r, "POST", "/api/v1/releases", nil, body, &out)
			if err != nil {
				return err
			}
			verb := "created"
			if status == 200 {
				verb = "exists"
			}
			_, err = fmt.Fprintf(a.stdout, "%s %s %s (%d files)\n", verb, out.ID, out.Digest, len(files))
			return err
		},
	}
	create.Flags().StringArrayVar(&labels, "label", nil, "label the release (key=value, repeatable), e.g. git.sha=abc123")
	list := &cobra.Command{
		Use:   "list",
		Short: "List releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Releases []struct {
					ID        string            `json:"id"`
					Digest    string            `json:"digest"`
					CreatedAt string            `json:"createdAt"`
					CreatedBy string            `json:"createdBy"`
					Labels    map[string]string `json:"labels"`
				} `json:"releases"`
			}
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/releases", nil, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tBY\tLABELS")
			for _, rel := range out.Releases {
				var ls []string
				for k, v := range rel.Labels {
					ls = append(ls, k+"="+v)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rel.ID, rel.CreatedAt, rel.CreatedBy, strings.Join(ls, ","))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one release",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/releases/"+url.PathEscape(args[0]), nil, nil, &raw); err != nil {
				return err
			}
			return a.printJSON(raw)
		},
	}
	cmd.AddCommand(create, list, show)
	return cmd
}

// releaseFiles reads the files a release of the workspace in dir needs.
func releaseFiles(dir string) (map[string][]byte, error) {
	fsys := os.DirFS(dir)
	ws, err := workspace.Load(fsys)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, p := range ws.ReferencedFiles() {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		files[p] = b
	}
	return files, nil
}

func (a *app) envCommand() *cobra.Command {
	var r remote
	cmd := &cobra.Command{
		Use:     "env",
		Aliases: []string{"environments"},
		Short:   "List a server's environments and set their release",
	}
	a.remoteFlags(cmd, &r)
	list := &cobra.Command{
		Use:   "list",
		Short: "List environments with their current release",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Environments []struct {
					Name       string `json:"name"`
					Protection string `json:"protection"`
					Data       string `json:"data"`
					Release    string `json:"release"`
				} `json:"environments"`
			}
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/environments", nil, nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ENVIRONMENT\tPROTECTION\tDATA\tRELEASE")
			for _, e := range out.Environments {
				rel := e.Release
				if rel == "" {
					rel = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Protection, e.Data, rel)
			}
			return tw.Flush()
		},
	}
	set := &cobra.Command{
		Use:   "set-release ENV RELEASE",
		Short: "Make RELEASE current in ENV directly (admin; refused where promotion gates apply)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "PUT", "/api/v1/environments/"+url.PathEscape(args[0])+"/release", nil,
				map[string]string{"release": args[1]}, &raw); err != nil {
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "%s now runs %s\n", args[0], args[1])
			return err
		},
	}
	cmd.AddCommand(list, set)
	return cmd
}
