package server

import (
	"net/http"

	"github.com/envplane/envplane/internal/auth"
	"golang.org/x/time/rate"
)

// scope says whether a route's action is about the {env} in its path.
type scope bool

const (
	global scope = false
	perEnv scope = true
)

// registerRoutes is the one list of the server's routes. Every pattern here
// is documented in openapi.json (a test keeps the two equal).
func (s *Server) registerRoutes() {
	upload := s.opts.MaxBodyBytes
	small := min(int64(smallBody), upload)

	s.api("POST /api/v1/releases", auth.CreateRelease, global, upload, s.createRelease)
	s.api("GET /api/v1/releases", auth.ReadReleases, global, small, s.listReleases)
	s.api("GET /api/v1/releases/{id}", auth.ReadReleases, global, small, s.getRelease)

	s.api("GET /api/v1/environments", auth.ReadEnvironments, global, small, s.listEnvironments)
	s.api("PUT /api/v1/environments/{env}/release", auth.SetRelease, perEnv, small, s.putRelease)
	s.api("GET /api/v1/environments/{env}/config", auth.ReadConfig, perEnv, small, s.getConfig).quiet = true
	s.api("GET /api/v1/environments/{env}/explain", auth.ReadConfig, perEnv, small, s.explain)
	s.api("GET /api/v1/environments/{env}/diff/{other}", auth.ReadConfig, perEnv, small, s.diff)
	s.api("GET /api/v1/environments/{env}/events", auth.ReadEvents, perEnv, small, s.events)
	s.api("GET /api/v1/environments/{env}/flags", auth.ReadConfig, perEnv, small, s.listFlags)
	s.api("PATCH /api/v1/environments/{env}/flags/{key}", auth.WriteFlags, perEnv, small, s.patchFlag)
	// Change requests of flags in restricted environments (flagchanges.go).
	s.api("GET /api/v1/environments/{env}/flags/changes", auth.ReadPromotions, perEnv, small, s.listFlagChanges)
	s.api("GET /api/v1/environments/{env}/flags/changes/{id}", auth.ReadPromotions, perEnv, small, s.getFlagChange)
	s.api("POST /api/v1/environments/{env}/flags/changes/{id}/approve", auth.ApprovePromotion, perEnv, small, s.flagChangeAction(s.approveFlagChange))
	s.api("POST /api/v1/environments/{env}/flags/changes/{id}/reject", auth.ApprovePromotion, perEnv, small, s.flagChangeAction(s.rejectFlagChange))
	s.api("POST /api/v1/environments/{env}/flags/changes/{id}/cancel", auth.WriteFlags, perEnv, small, s.flagChangeAction(s.cancelFlagChange))
	s.api("POST /api/v1/environments/{env}/data-operations", auth.RecordData, perEnv, small, s.postDataOperation)

	// OFREP: the environment is the token's (flags.go, ofrep.go).
	ofrep := min(int64(ofrepBodyLimit), small)
	s.api("POST /ofrep/v1/evaluate/flags/{key}", auth.ReadConfig, global, ofrep, s.ofrepEvaluate).quiet = true
	s.api("POST /ofrep/v1/evaluate/flags", auth.ReadConfig, global, ofrep, s.ofrepBulkEvaluate).quiet = true
	s.api("GET /ofrep/v1/configuration", auth.ReadConfig, global, small, s.ofrepConfiguration)

	// Revealing a value needs auth.RevealSecrets too, checked by the handler:
	// without reveal=true the same route answers metadata only.
	s.api("GET /api/v1/environments/{env}/secrets", auth.ReadSecrets, perEnv, small, s.listSecrets)
	s.api("GET /api/v1/environments/{env}/secrets/{name}", auth.ReadSecrets, perEnv, small, s.getSecret)
	s.api("PUT /api/v1/environments/{env}/secrets/{name}", auth.WriteSecrets, perEnv, small, s.putSecret)
	s.api("DELETE /api/v1/environments/{env}/secrets/{name}", auth.WriteSecrets, perEnv, small, s.deleteSecret)

	// Promotion routes check the promotion's environment in the App (by
	// effect): the path names no environment.
	s.api("POST /api/v1/promotions", auth.Promote, global, small, s.createPromotion)
	s.api("GET /api/v1/promotions", auth.ReadPromotions, global, small, s.listPromotions)
	s.api("GET /api/v1/promotions/{id}", auth.ReadPromotions, global, small, s.getPromotion)
	s.api("POST /api/v1/promotions/{id}/approve", auth.ApprovePromotion, global, small, s.promotionAction(s.approvePromotion))
	s.api("POST /api/v1/promotions/{id}/reject", auth.ApprovePromotion, global, small, s.promotionAction(s.rejectPromotion))
	s.api("POST /api/v1/promotions/{id}/cancel", auth.Promote, global, small, s.promotionAction(s.cancelPromotion))
	s.api("PUT /api/v1/promotions/{id}/checks/{name}", auth.Promote, global, small, s.promotionAction(s.reportCheck))
	s.api("PUT /api/v1/promotions/{id}/checklist/{index}", auth.Promote, global, small, s.promotionAction(s.tickChecklist))

	s.api("POST /api/v1/tokens", auth.ManageTokens, global, small, s.createToken)
	s.api("GET /api/v1/tokens", auth.ManageTokens, global, small, s.listTokens)
	s.api("DELETE /api/v1/tokens/{id}", auth.ManageTokens, global, small, s.deleteToken)

	s.api("GET /api/v1/audit", auth.ReadAudit, global, small, s.listAudit)
	s.api("GET /api/v1/audit/verify", auth.ReadAudit, global, small, s.verifyAudit)

	s.public("GET /health/live", s.live).quiet = true
	s.public("GET /health/ready", s.ready).quiet = true
	s.public("GET /metrics", s.serveMetrics).quiet = true
	s.public("GET /api/v1/openapi.json", s.openapi)

	// Requests no route matches are counted under this name.
	s.unmatched = &route{s: s, pattern: "unmatched", obs: s.metrics.route("unmatched")}
}

// api registers an authenticated route.
func (s *Server) api(pattern string, action auth.Action, sc scope, bodyLimit int64, h handlerFunc) *route {
	return s.register(&route{pattern: pattern, action: action, scoped: bool(sc), bodyLimit: bodyLimit, h: h})
}

// public registers a route that needs no token.
func (s *Server) public(pattern string, h handlerFunc) *route {
	return s.register(&route{pattern: pattern, bodyLimit: smallBody, h: h})
}

// quietLogRate bounds the info-level request lines of a quiet route.
const quietLogRate = 10

func (s *Server) register(rt *route) *route {
	rt.s = s
	rt.sampled = rate.NewLimiter(quietLogRate, quietLogRate)
	rt.obs = s.metrics.route(rt.pattern)
	s.patterns = append(s.patterns, rt.pattern)
	s.mux.Handle(rt.pattern, rt)
	return rt
}

// Patterns lists every registered route pattern ("METHOD /path").
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }

var _ http.Handler = (*route)(nil)
