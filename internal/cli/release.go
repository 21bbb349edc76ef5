package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"sort"
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
				ID        string            `json:"id"`
				Digest    string            `json:"digest"`
				CreatedAt string            `json:"createdAt"`
				Labels    map[string]string `json:"labels"`
			}
			status, err := a.call(cmd.Context(), &r, "POST", "/api/v1/releases", nil, body, &out)
			if err != nil {
				return err
			}
			verb := "created"
			if status == 200 {
				verb = "exists"
				if ignored := unappliedLabels(body.Labels, out.Labels); len(ignored) > 0 {
					fmt.Fprintf(a.stderr, "envplane: labels not applied: %s already holds these files (since %s), and a release's labels are those of its first upload: %s\n",
						out.ID, out.CreatedAt, strings.Join(ignored, ", "))
				}
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rel.ID, rel.CreatedAt, rel.CreatedBy, strings.Join(sortedPairs(rel.Labels), ","))
			}
			return tw.Flush()
		},
	}
	var withFiles bool
	var showFormat string
	show := &cobra.Command{
		Use:   "show ID [--files] [--format text|json]",
		Short: "Show one release and the files it holds",
		Long: `Show prints a release's digest, labels and its files with their sizes. --files prints
the files' content too (text: each under a "--- path" line); --format json prints the
server's answer, with the content only under --files.`,
		Args: argCount(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(showFormat, []string{"text", "json"}); err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := a.call(cmd.Context(), &r, "GET", "/api/v1/releases/"+url.PathEscape(args[0]), nil, nil, &raw); err != nil {
				return err
			}
			var rel releaseView
			if err := json.Unmarshal(raw, &rel); err != nil {
				return fmt.Errorf("unexpected answer from the server: %v", err)
			}
			if showFormat == "json" {
				if !withFiles && rel.Files != nil {
					var m map[string]json.RawMessage
					if err := json.Unmarshal(raw, &m); err == nil {
						delete(m, "files")
						if b, err := json.Marshal(m); err == nil {
							raw = b
						}
					}
				}
				return a.printJSON(raw)
			}
			return a.writeRelease(rel, withFiles)
		},
	}
	show.Flags().BoolVar(&withFiles, "files", false, "print the content of every file")
	show.Flags().StringVar(&showFormat, "format", "text", "output format: text or json")
	cmd.AddCommand(create, list, show)
	return cmd
}

// releaseView is the part of a release answer that show prints.
type releaseView struct {
	ID        string            `json:"id"`
	Digest    string            `json:"digest"`
	CreatedAt string            `json:"createdAt"`
	CreatedBy string            `json:"createdBy"`
	Labels    map[string]string `json:"labels"`
	Size      int64             `json:"size"`
	Files     map[string]string `json:"files"`
}

// writeRelease prints a release: its header, then one line per file (path
// and size), then with withFiles every file's content.
func (a *app) writeRelease(rel releaseView, withFiles bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "release  %s\ndigest   %s\ncreated  %s", rel.ID, rel.Digest, rel.CreatedAt)
	if rel.CreatedBy != "" {
		fmt.Fprintf(&b, " by %s", rel.CreatedBy)
	}
	b.WriteString("\n")
	if len(rel.Labels) > 0 {
		fmt.Fprintf(&b, "labels   %s\n", strings.Join(sortedPairs(rel.Labels), ", "))
	}
	paths := make([]string, 0, len(rel.Files))
	for p := range rel.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	switch {
	case rel.Files == nil:
		fmt.Fprintf(&b, "files    (not shown: this token may not read them) %d bytes\n", rel.Size)
	default:
		fmt.Fprintf(&b, "files    %d, %d bytes\n", len(paths), rel.Size)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		for _, p := range paths {
			fmt.Fprintf(tw, "  %d\t  %s\n", len(rel.Files[p]), p)
		}
		tw.Flush()
	}
	if withFiles {
		for _, p := range paths {
			content := rel.Files[p]
			fmt.Fprintf(&b, "--- %s\n%s", p, content)
			if content != "" && !strings.HasSuffix(content, "\n") {
				b.WriteString("\n")
			}
		}
	}
	_, err := io.WriteString(a.stdout, b.String())
	return err
}

// sortedPairs lists a map as sorted key=value strings.
func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// unappliedLabels lists the requested labels an existing release does not
// carry as asked, as key=value.
func unappliedLabels(asked, has map[string]string) []string {
	var out []string
	for k, v := range asked {
		if got, ok := has[k]; !ok || got != v {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
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
		Long: `Set-release makes RELEASE current in ENV at once. It is for admins, and the server
refuses it (409) for an environment whose workspace definition has a promotion: block;
those take releases through promotions (envplane promote RELEASE --to ENV): see the
README, "Promoting a release into staging and production".`,
		Args: cobra.ExactArgs(2),
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
