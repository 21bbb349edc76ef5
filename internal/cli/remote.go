package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// serverFromEnv is the value of a bare --server: use $ENVPLANE_SERVER.
const serverFromEnv = "$ENVPLANE_SERVER"

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

// apiError is an error body answered by the server.
type apiError struct {
	Status  int
	Code    string
	Message string
	Fields  []struct{ Field, Message string }
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server: %s (%d %s)", e.Message, e.Status, e.Code)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n%s: %s", f.Field, f.Message)
	}
	return b.String()
}

// call sends one request to the server and decodes a JSON answer into out
// (when non-nil). It returns the HTTP status for callers that care (200 vs 201).
func (a *app) call(ctx context.Context, r *remote, method, path string, query url.Values, body, out any) (int, error) {
	server := r.server
	if server == "" || server == serverFromEnv {
		server = a.getenv("ENVPLANE_SERVER")
	}
	token := r.token
	if token == "" {
		token = a.getenv("ENVPLANE_TOKEN")
	}
	if server == "" {
		return 0, fmt.Errorf("no server: pass --server URL or set ENVPLANE_SERVER")
	}
	u, err := url.Parse(strings.TrimRight(server, "/") + path)
	if err != nil || u.Host == "" {
		return 0, fmt.Errorf("--server %q: want http(s)://host[:port]", server)
	}
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach %s: %v", server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Fields  []struct{ Field, Message string }
			} `json:"error"`
		}
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return resp.StatusCode, &apiError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return resp.StatusCode, &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Fields: eb.Error.Fields}
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], data...)
			return resp.StatusCode, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("unexpected answer from %s: %v", server, err)
		}
	}
	return resp.StatusCode, nil
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
