package server

import (
	"context"
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/errs"
)

type auditJSON struct {
	Seq      int64       `json:"seq"`
	At       time.Time   `json:"at"`
	Actor    string      `json:"actor"`
	Action   string      `json:"action"`
	Target   string      `json:"target"`
	Details  jsonOrEmpty `json:"details"`
	PrevHash string      `json:"prevHash"`
	Hash     string      `json:"hash"`
}

// jsonOrEmpty writes stored JSON details as they are ({} when empty).
type jsonOrEmpty []byte

func (j jsonOrEmpty) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("{}"), nil
	}
	return j, nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var fe errs.FieldErrors
	var after int64
	if v, ok := queryValue(r.URL.RawQuery, "after"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			fe.Add("after", "must be a sequence number (a whole number ≥ 0)")
		}
		after = n
	}
	limit := limitQuery(r, 100, &fe)
	if err := fe.Err(); err != nil {
		return err
	}
	entries, next, err := s.app.ListAudit(r.Context(), p, after, limit)
	if err != nil {
		return err
	}
	out := make([]auditJSON, 0, len(entries))
	for _, e := range entries {
		out = append(out, auditJSON{Seq: e.Seq, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, Target: e.Target,
			Details: jsonOrEmpty(e.Details), PrevHash: e.PrevHash, Hash: e.Hash})
	}
	// next: where to continue (?after=next); a scoped token's listing may
	// stop before the log ends with fewer than limit entries.
	return writeJSON(w, http.StatusOK, map[string]any{"entries": out, "next": next})
}

// verifyAudit checks the chain's links and MACs, and the log against the
// latest checkpoint this server knows and, with ?checkpoint=SEQ:HEAD, an
// anchor the caller recorded.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	anchor, _ := queryValue(r.URL.RawQuery, "checkpoint")
	res, err := s.app.VerifyAudit(r.Context(), p, anchor)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the body of /health/ready.
type readiness struct {
	Ready      bool     `json:"ready"`
	Store      string   `json:"store"`
	Migrations string   `json:"migrations,omitempty"`
	Problems   []string `json:"problems,omitempty"`
}

// ready reports whether this replica should get traffic: the store answers,
// its schema is current and the server is not shutting down. Causes are
// logged; the body only says which check failed.
func (s *Server) ready(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := readiness{Ready: true, Store: "ok"}
	if s.notReady.Load() {
		out.Ready = false
		out.Problems = append(out.Problems, "the server is shutting down")
	}
	if err := s.st.Ping(ctx); err != nil {
		s.log.Warn("readiness: store ping failed", "err", err)
		out.Ready, out.Store = false, "unreachable"
		out.Problems = append(out.Problems, "the store does not answer")
	} else if applied, latest, err := s.st.Migrations(ctx); err != nil {
		s.log.Warn("readiness: reading migrations failed", "err", err)
		out.Ready = false
		out.Problems = append(out.Problems, "the schema version cannot be read")
	} else {
		out.Migrations = strconv.Itoa(applied) + "/" + strconv.Itoa(latest)
		if applied < latest {
			out.Ready = false
			out.Problems = append(out.Problems, "database migrations are behind ("+out.Migrations+" applied)")
		}
	}
	status := http.StatusOK
	if !out.Ready {
		status = http.StatusServiceUnavailable
	}
	return writeJSON(w, status, out)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	// The exposition format is text, not the API's JSON.
	delete(w.Header(), "Content-Security-Policy")
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	w.Header()["Content-Type"] = hdrJSON
	w.Header()["Cache-Control"] = hdrRevalid
	_, err := w.Write(openapiDoc)
	return err
}
