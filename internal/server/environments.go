package server

import (
	"context"
	"net/http"
	"time"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/store"
	"github.com/envplane/envplane/internal/workspace"
)

type envJSON struct {
	Name       string    `json:"name"`
	Position   int       `json:"position"`
	Protection string    `json:"protection"`
	Data       string    `json:"data"`
	Promoted   bool      `json:"promoted"`
	Release    *string   `json:"release"` // null while none
	UpdatedAt  time.Time `json:"updatedAt"`
}

func envJSONOf(e store.Environment) envJSON {
	out := envJSON{Name: e.Name, Position: e.Position, Protection: e.Protection, Data: e.Data, Promoted: e.Promoted, UpdatedAt: e.UpdatedAt.UTC()}
	if e.Release != "" {
		rel := e.Release
		out.Release = &rel
	}
	return out
}

// listEnvironments answers from the snapshot (so it works while the store
// is down) and shows only the environments the token is scoped to.
func (s *Server) listEnvironments(w http.ResponseWriter, _ *http.Request, p *auth.Principal) error {
	snap := s.snap.Load()
	out := make([]envJSON, 0, len(snap.envs))
	for _, st := range snap.envs {
		if p.InScope(st.env.Name) {
			out = append(out, envJSONOf(st.env))
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"environments": out})
}

type setReleaseRequest struct {
	Release string `json:"release"`
}

func (s *Server) putRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req setReleaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Release == "" {
		return invalidField("release", "required: the ID of the release to make current")
	}
	env := r.PathValue("env")
	prev, err := s.SetRelease(r.Context(), env, req.Release, p.Actor())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"environment": env, "release": req.Release, "previous": prev})
}

// SetRelease makes release id current in env directly, which only
// environments without a promotion block allow. Setting the release that is
// already current changes nothing and writes no audit entry.
func (s *Server) SetRelease(ctx context.Context, env, id, actor string) (previous string, err error) {
	changed := false
	err = s.st.WithTx(ctx, func(tx store.Tx) error {
		e, err := tx.GetEnvironment(ctx, env)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown environment %q", env)
		}
		if err != nil {
			return err
		}
		if e.Promoted {
			return errs.E(errs.Conflict, "environment %q takes releases only through promotions: its workspace definition has a promotion block", env)
		}
		rel, err := tx.GetRelease(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return errs.E(errs.NotFound, "unknown release %q", id)
		}
		if err != nil {
			return err
		}
		if err := definesEnvironment(rel, env); err != nil {
			return err
		}
		if e.Release == id {
			previous = id
			return nil
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		if previous, err = tx.SetRelease(ctx, env, id, actor, now); err != nil {
			return err
		}
		if _, err := s.audit.Append(ctx, tx, now, audit.Record{Actor: actor, Action: "environment.set-release", Target: env,
			Details: map[string]string{"release": id, "previous": previous}}); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "environment", Environment: env, ID: id})
		changed = true
		return nil
	})
	if err != nil {
		return "", err
	}
	if changed {
		s.refresh(ctx)
	}
	return previous, nil
}

// definesEnvironment refuses a release whose envplane.yaml does not know
// env: the environment's config could not be resolved from it.
func definesEnvironment(rel store.Release, env string) error {
	ws, err := workspace.Load(release.FS(rel.Files))
	if err != nil {
		return errs.Wrap(errs.Conflict, err, "release %s does not load", rel.ID)
	}
	if _, ok := ws.Environment(env); !ok {
		return &errs.Error{Kind: errs.Invalid, Message: "the release does not define this environment",
			Fields: []errs.FieldError{{Field: "release", Message: "release " + rel.ID + " has no environment " + env + " in its envplane.yaml"}}}
	}
	return nil
}
