// Package auth is envplane's access model: bearer tokens (ep_…, stored only as
// SHA-256 hashes), roles, environment scopes, and the one table that says
// which role may do what.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"unsafe"

	"github.com/envplane/envplane/internal/errs"
)

// TokenPrefix starts every token, so leaked tokens are easy to scan for.
const TokenPrefix = "ep_"

// Role is what a token may do.
type Role string

const (
	Viewer   Role = "viewer"
	Editor   Role = "editor"
	Approver Role = "approver"
	Admin    Role = "admin"
	SDK      Role = "sdk" // an application's key for one environment
)

// Roles lists every role.
var Roles = []Role{Viewer, Editor, Approver, Admin, SDK}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", errs.E(errs.Invalid, "role %q: use one of viewer, editor, approver, admin, sdk", s)
}

// Action is something a request does.
type Action string

const (
	ReadConfig       Action = "config.read"
	RevealConfig     Action = "config.reveal"
	ReadReleases     Action = "releases.read"
	CreateRelease    Action = "releases.create"
	ReadEnvironments Action = "environments.read"
	SetRelease       Action = "environments.set-release"
	ReadEvents       Action = "events.read"
	ReadAudit        Action = "audit.read"
	ManageTokens     Action = "tokens.manage"
	// ReadSecrets lists secret names and versions, never values.
	ReadSecrets   Action = "secrets.read"
	WriteSecrets  Action = "secrets.write"
	RevealSecrets Action = "secrets.reveal"
	// ReadPromotions lists and shows promotions of the token's environments.
	ReadPromotions Action = "promotions.read"
	// Promote opens promotions, reports external checks, ticks checklist
	// items and cancels one's own promotions.
	Promote Action = "promotions.create"
	// ApprovePromotion approves or rejects, and opens emergency rollbacks.
	ApprovePromotion Action = "promotions.approve"
	// WriteFlags overrides a flag in one environment without a release.
	WriteFlags Action = "flags.write"
	// RecordData records a data copy or seed into one environment (data.go).
	RecordData Action = "data.record"
)

// grants is the permission table. Environment-scoped actions are further
// limited to the token's environments.
var grants = map[Role]map[Action]bool{
	Viewer: {ReadConfig: true, ReadReleases: true, ReadEnvironments: true, ReadEvents: true, ReadSecrets: true, ReadPromotions: true},
	Editor: {ReadConfig: true, ReadReleases: true, ReadEnvironments: true, ReadEvents: true, CreateRelease: true,
		ReadSecrets: true, WriteSecrets: true, ReadPromotions: true, Promote: true, WriteFlags: true, RecordData: true},
	Approver: {ReadConfig: true, ReadReleases: true, ReadEnvironments: true, ReadEvents: true, ReadSecrets: true,
		ReadPromotions: true, Promote: true, ApprovePromotion: true},
	Admin: {ReadConfig: true, RevealConfig: true, ReadReleases: true, CreateRelease: true, ReadEnvironments: true,
		SetRelease: true, ReadEvents: true, ReadAudit: true, ManageTokens: true,
		ReadSecrets: true, WriteSecrets: true, RevealSecrets: true,
		ReadPromotions: true, Promote: true, ApprovePromotion: true, WriteFlags: true, RecordData: true},
	// An application reads its own environment's secrets; writing them is
	// for people and CI.
	SDK: {ReadConfig: true, RevealConfig: true, ReadEvents: true, ReadSecrets: true, RevealSecrets: true},
}

// Principal is the authenticated caller.
type Principal struct {
	TokenID      string
	Name         string
	Role         Role
	Environments []string // empty: all (never for SDK keys)
	Groups       []string
}

// System is envplane itself acting as an unscoped admin (serve
// --workspace, offline admin commands), named in the audit log as name.
func System(name string) *Principal { return &Principal{Name: name, Role: Admin} }

// Actor names the principal in the audit log.
func (p Principal) Actor() string {
	if p.TokenID == "" {
		return p.Name
	}
	if p.Name == "" {
		return "token:" + p.TokenID
	}
	return p.Name + " (token " + p.TokenID + ")"
}

// InScope reports whether env is one of the principal's environments.
func (p Principal) InScope(env string) bool {
	if len(p.Environments) == 0 {
		return p.Role != SDK
	}
	for _, e := range p.Environments {
		if e == env {
			return true
		}
	}
	return false
}

// Can reports whether the principal may do action (in env, when the action is
// about one environment), as a Forbidden error saying why not.
func (p Principal) Can(action Action, env string) error {
	if !grants[p.Role][action] {
		return errs.E(errs.Forbidden, "role %s may not %s", p.Role, action)
	}
	if env != "" && !p.InScope(env) {
		return errs.E(errs.Forbidden, "token is not scoped to environment %q", env)
	}
	return nil
}

// NewToken returns a fresh token text and its hash, from rnd (crypto/rand when nil).
func NewToken(rnd io.Reader) (token, hash string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	token = TokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token: Sum in hex.
func HashToken(token string) string {
	sum := Sum(token)
	return hex.EncodeToString(sum[:])
}

// Sum is the SHA-256 of a token, computed over the string's bytes in place:
// converting would allocate on every authenticated request.
func Sum(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// SameHash compares hashes in constant time.
func SameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// ValidateScope checks a token request: SDK keys need exactly one environment.
func ValidateScope(role Role, envs []string) error {
	if role == SDK && len(envs) != 1 {
		return &errs.Error{Kind: errs.Invalid, Message: "an sdk key is for exactly one environment",
			Fields: []errs.FieldError{{Field: "environments", Message: "give exactly one environment for role sdk"}}}
	}
	return nil
}
