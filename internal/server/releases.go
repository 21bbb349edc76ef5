package server

import (
	"crypto/sha256"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/domain"
	"github.com/envplane/envplane/internal/errs"
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

func releaseOf(r domain.Release, withFiles bool) releaseJSON {
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

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	// The same bytes as an upload stored before are the same files and
	// labels: answer the stored release without decoding 5 MB of JSON.
	// The store still says whether it holds it.
	sum := sha256.Sum256(data)
	if digest, ok := s.uploads.get(sum); ok {
		if err := p.Can(auth.CreateRelease, ""); err != nil {
			return err
		}
		rel, err := s.st.GetReleaseByDigest(r.Context(), digest)
		if err == nil {
			return writeJSON(w, http.StatusOK, releaseOf(rel, false))
		}
		if !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	var req releaseRequest
	if err := decodeBytes(data, &req, false); err != nil {
		return err
	}
	if len(data) > keepTreeBelow {
		defer s.trim.soon()
	}
	data = nil // the decoded files are what is kept from here on
	var files map[string][]byte
	if req.Files != nil {
		files = make(map[string][]byte, len(req.Files))
		for path, content := range req.Files {
			files[path] = []byte(content)
		}
	}
	req.Files = nil
	rel, created, err := s.app.CreateRelease(r.Context(), p, files, req.Labels)
	if err != nil {
		return err
	}
	s.uploads.put(sum, rel.Digest)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, releaseOf(rel, false))
}

// uploadMemo maps the SHA-256 of recent upload bodies to the digest of the
// release they stored. Identical bytes decode to identical files and
// labels, so a re-upload is answered from it. Bounded: emptied when full.
type uploadMemo struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]string
}

const maxUploadMemo = 1024

func (u *uploadMemo) get(sum [sha256.Size]byte) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	d, ok := u.m[sum]
	return d, ok
}

func (u *uploadMemo) put(sum [sha256.Size]byte, digest string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil || len(u.m) >= maxUploadMemo {
		u.m = map[[sha256.Size]byte]string{}
	}
	u.m[sum] = digest
}

// limitQuery parses an optional ?limit= from 1 to 1000.
func limitQuery(r *http.Request, def int, fe *errs.FieldErrors) int {
	v, ok := queryValue(r.URL.RawQuery, "limit")
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		fe.Add("limit", "must be a whole number from 1 to 1000")
	}
	return n
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var fe errs.FieldErrors
	limit := limitQuery(r, 100, &fe)
	if err := fe.Err(); err != nil {
		return err
	}
	rels, err := s.app.ListReleases(r.Context(), p, limit)
	if err != nil {
		return err
	}
	out := make([]releaseJSON, 0, len(rels))
	for _, rel := range rels {
		out = append(out, releaseOf(rel, false))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"releases": out})
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rel, withFiles, err := s.app.GetRelease(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, releaseOf(rel, withFiles))
}
