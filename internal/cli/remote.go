package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	envplane "github.com/envplane/envplane/sdk"
)

// serverFromEnv is the value of a bare --server: use $ENVPLANE_SERVER.
const serverFromEnv = "$ENVPLANE_SERVER"

// remoteTimeout bounds one request of a command (a release upload included).
const remoteTimeout = 60 * time.Second

// remote is the connection settings of commands that talk to a server.
type remote struct {
	server string
	token  string
}

// remoteFlags adds --server and --token, defaulting to ENVPLANE_SERVER and
// ENVPLANE_TOKEN (read when the command runs).
func (a *app) remoteFlags(cmd *cobra.Command, r *remote) {
	cmd.PersistentFlags().StringVar(&r.server, "server", "", "envplane server URL (default $ENVPLANE_SERVER)")
	cmd.PersistentFlags().StringVar(&r.token, "token", "", "API token (default $ENVPLANE_TOKEN)")
}

// client is the SDK's API client for r's server and token.
func (a *app) client(r *remote) (*envplane.Client, error) {
	server := r.server
	if server == "" || server == serverFromEnv {
		server = a.getenv("ENVPLANE_SERVER")
	}
	token := r.token
	if token == "" {
		token = a.getenv("ENVPLANE_TOKEN")
	}
	if server == "" {
		return nil, errors.New("no server: pass --server URL or set ENVPLANE_SERVER")
	}
	c, err := envplane.NewAPI(server, token, envplane.WithHTTPClient(&http.Client{Timeout: remoteTimeout}))
	if err != nil {
		return nil, fmt.Errorf("--server %q: want http(s)://host[:port]", server)
	}
	return c, nil
}

// call sends one request to the server through the SDK client and decodes
// a JSON answer into out (when non-nil; a *json.RawMessage takes it as it
// is). It returns the HTTP status for callers that care (200 vs 201). An
// error answer is an *envplane.Error, which printError spells out.
func (a *app) call(ctx context.Context, r *remote, method, path string, query url.Values, body, out any) (int, error) {
	c, err := a.client(r)
	if err != nil {
		return 0, err
	}
	return c.Do(ctx, method, path, query, body, out)
}

// serverErrorLines is how the CLI prints an error answered by the server:
// its message, status and code, then each field error on a line of its own.
// Field errors about release files start with the file's place already.
func serverErrorLines(e *envplane.Error) []string {
	lines := []string{fmt.Sprintf("server: %s (%d %s)", e.Message, e.Status, e.Code)}
	for _, f := range e.Fields {
		if strings.HasPrefix(f.Field, "files.") && strings.HasPrefix(f.Message, strings.TrimPrefix(f.Field, "files.")) {
			lines = append(lines, f.Message)
		} else {
			lines = append(lines, f.Field+": "+f.Message)
		}
	}
	return lines
}

// encodeJSON writes v as indented JSON, as every --format json prints it
// (no HTML escaping: the output is for people and programs, not browsers).
func encodeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSON pretty-prints raw JSON to stdout.
func (a *app) printJSON(raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		_, err = a.stdout.Write(raw)
		return err
	}
	b.WriteByte('\n')
	_, err := a.stdout.Write(b.Bytes())
	return err
}
