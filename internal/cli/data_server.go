package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	envapp "github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/data"
)

// dataServerFlags adds --server (alone: $ENVPLANE_SERVER) and --token: the
// operation is recorded on that server, audited, before it writes and when
// it ends. The copy or seed itself runs here.
func dataServerFlags(cmd *cobra.Command, r *remote) {
	cmd.Flags().StringVar(&r.server, "server", "", "record the operation on this server's audit log (URL, default $ENVPLANE_SERVER)")
	cmd.Flags().Lookup("server").NoOptDefVal = serverFromEnv
	cmd.Flags().StringVar(&r.token, "token", "", "API token for --server (default $ENVPLANE_TOKEN)")
}

// dataRecorder sends a data operation's phases to the server; nil without
// --server.
type dataRecorder struct {
	a   *app
	r   *remote
	env string
	op  envapp.DataOperation
	// started: the server recorded the start; only then is the end sent.
	started bool
}

func (a *app) dataRecorder(r *remote, env string, op envapp.DataOperation) *dataRecorder {
	if r.server == "" {
		return nil
	}
	return &dataRecorder{a: a, r: r, env: env, op: op}
}

// record sends one phase. The start is sent with the command's context (an
// interruption before it stops everything); the end survives one.
func (d *dataRecorder) record(ctx context.Context, phase string) error {
	if d == nil {
		return nil
	}
	d.op.Phase = phase
	if phase != "start" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	_, err := d.a.call(ctx, d.r, "POST", "/api/v1/environments/"+url.PathEscape(d.env)+"/data-operations", nil, d.op, nil)
	if err != nil {
		if phase == "start" {
			// The server's error is printed as it answered it; this says what it means here.
			fmt.Fprintf(d.a.stderr, "envplane: the server did not record the %s, so nothing was written\n", d.op.Kind)
			return err
		}
		return fmt.Errorf("the server did not record the end of the %s (%s): %w", d.op.Kind, phase, err)
	}
	d.started = d.started || phase == "start"
	return nil
}

// finish records how the operation ended and joins a failure to record it
// to err.
func (d *dataRecorder) finish(ctx context.Context, err error, rows map[string]int64, copied []string) error {
	if d == nil || !d.started {
		return err
	}
	d.op.Rows, d.op.Copied = rows, copied
	phase := "done"
	switch {
	case err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled)):
		phase = "interrupted"
	case err != nil:
		phase = "failed"
	}
	if rerr := d.record(ctx, phase); rerr != nil {
		if err == nil {
			return rerr
		}
		fmt.Fprintf(d.a.stderr, "envplane: %s\n", rerr)
	}
	return err
}

// fileDigest is sha256:<hex> of a workspace file (the rules or seed spec).
func fileDigest(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func sortedTables(m map[string]*data.SeedTable) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
