package server

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/envplane/envplane/internal/audit"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
	"github.com/envplane/envplane/internal/release"
	"github.com/envplane/envplane/internal/store"
)

type releaseRequest struct {
	Files  map[string]string `json:"files"`
	Labels map[string]string `json:"labels"`
}

type releaseJSON struct {
	ID        string            `json:"id"`
	Digest    string            `json:"digest"`
	CreatedAt time.Time         `json:"createdAt"`
	CreatedBy string            `json:"createdBy,omitempty"`
	Labels    map[string]string `json:"labels"`
	Size      int64             `json:"size"`
	Files     map[string]string `json:"files,omitempty"`
}

func releaseOf(r store.Release, withFiles bool) releaseJSON {
	out := releaseJSON{ID: r.ID, Digest: r.Digest, CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy, Labels: r.Labels, Size: r.Size}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if withFiles {
		out.Files = make(map[string]string, len(r.Files))
		for p, b := range r.Files {
			out.Files[p] = string(b)
		}
	}
	return out
}

const (
	maxLabels     = 64
	maxLabelValue = 256
)

var labelKey = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$`)

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req releaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var fe fieldErrors
	if req.Files == nil {
		fe.add("files", "required: an object of path → file content, with envplane.yaml at least")
	}
	if len(req.Labels) > maxLabels {
		fe.add("labels", "at most %d labels", maxLabels)
	}
	keys := make([]string, 0, len(req.Labels))
	for k := range req.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !labelKey.MatchString(k) {
			fe.add("labels."+k, "a label name is 1–63 letters, digits, '.', '_', '/' or '-', starting with a letter or digit")
		}
		if len(req.Labels[k]) > maxLabelValue {
			fe.add("labels."+k, "a label value is at most %d bytes", maxLabelValue)
		}
	}
	files := make(map[string][]byte, len(req.Files))
	for path, content := range req.Files {
		files[path] = []byte(content)
	}
	if len(fe) > 0 {
		// Report the files' problems along with the labels'.
		if req.Files != nil {
			if _, err := release.Validate(files); err != nil {
				var e *errs.Error
				if !errors.As(err, &e) || e.Kind != errs.Invalid {
					return err
				}
				fe = append(fe, e.Fields...)
			}
		}
		return fe.err()
	}
	rel, created, err := s.CreateRelease(r.Context(), files, req.Labels, p.Actor())
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, releaseOf(rel, false))
}

// CreateRelease validates files as a workspace and stores them as a release
// unless one with the same digest exists (created is then false). In the
// same transaction it defines every environment of the release's
// envplane.yaml and appends the audit entry.
func (s *Server) CreateRelease(ctx context.Context, files map[string][]byte, labels map[string]string, actor string) (rel store.Release, created bool, err error) {
	// Validation is CPU work: it happens before the write transaction.
	loaded, err := release.Validate(files)
	if err != nil {
		return store.Release{}, false, err
	}
	digest := release.Digest(files)
	var size int64
	for _, b := range files {
		size += int64(len(b))
	}
	err = s.st.WithTx(ctx, func(tx store.Tx) error {
		existing, err := tx.GetReleaseByDigest(ctx, digest)
		if err == nil {
			rel, created = existing, false
			return nil
		}
		if !errs.Is(err, errs.NotFound) {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		rel = store.Release{ID: release.ID(digest), Digest: digest, Files: files, Labels: labels, Size: size, CreatedAt: now, CreatedBy: actor}
		if err := tx.InsertRelease(ctx, rel); err != nil {
			return err
		}
		names := make([]string, 0, len(loaded.Workspace.Environments))
		for i, e := range loaded.Workspace.Environments {
			env := store.Environment{Name: e.Name, Position: i, Protection: string(e.Protection), Data: string(e.Data),
				Promoted: e.Promotion != nil, UpdatedAt: now}
			if err := tx.UpsertEnvironment(ctx, env); err != nil {
				return err
			}
			tx.Notify(store.Event{Kind: "environment", Environment: e.Name})
			names = append(names, e.Name)
		}
		if _, err := s.audit.Append(ctx, tx, now, audit.Record{Actor: actor, Action: "release.create", Target: rel.ID,
			Details: map[string]any{"digest": digest, "files": len(files), "size": size, "labels": labels, "environments": names}}); err != nil {
			return err
		}
		tx.Notify(store.Event{Kind: "release", ID: rel.ID})
		created = true
		return nil
	})
	if err != nil {
		return store.Release{}, false, err
	}
	if created {
		s.preloaded.Store(&preloaded{id: rel.ID, loaded: loaded})
		s.refresh(ctx)
	}
	return rel, created, nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var fe fieldErrors
	limit := 100
	if v, ok := queryValue(r.URL.RawQuery, "limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fe.add("limit", "must be a whole number from 1 to 1000")
		}
		limit = n
	}
	if err := fe.err(); err != nil {
		return err
	}
	rels, err := s.st.ListReleases(r.Context(), limit)
	if err != nil {
		return err
	}
	out := make([]releaseJSON, 0, len(rels))
	for _, rel := range rels {
		out = append(out, releaseOf(rel, false))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"releases": out})
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	id := r.PathValue("id")
	rel, err := s.st.GetRelease(r.Context(), id)
	if errs.Is(err, errs.NotFound) {
		return errs.E(errs.NotFound, "unknown release %q", id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, releaseOf(rel, true))
}
