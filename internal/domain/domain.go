// Package domain holds the one set of types envplane's layers share: an
// environment (with its typed data class and protection), a release, a
// secret, a token, an audit entry and a change event, plus the names of
// audit actions and event kinds. It imports nothing of envplane, so the
// workspace model, the resolver, the stores, the application layer and the
// transports all speak the same types; stores convert their rows at their
// own boundary.
package domain

import (
	"encoding/json"
	"reflect"
	"time"
)

// DataClass says what kind of data an environment holds.
type DataClass string

const (
	DataSynthetic      DataClass = "synthetic"
	DataAnonymized     DataClass = "anonymized"
	DataProductionLike DataClass = "production-like"
	DataLive           DataClass = "live"
)

// Protection says how guarded changes to an environment are.
type Protection string

const (
	ProtectionOpen       Protection = "open"
	ProtectionGuarded    Protection = "guarded"
	ProtectionRestricted Protection = "restricted"
)

// Environment is a stage the server knows and its current release. Its
// definition (position, protection, data class, promotion block) is the one
// of the release current in it; an environment without a release yet keeps
// the definition of the release that introduced it.
type Environment struct {
	Name       string     `json:"name"`
	Position   int        `json:"position"` // order on the promotion path
	Protection Protection `json:"protection"`
	Data       DataClass  `json:"data"`
	// Promoted is true when the definition has a promotion block: the
	// environment's release then changes only through promotions.
	Promoted bool `json:"promoted"`
	// Gates is the promotion block itself (nil without one); environments
	// stored before promotions existed may have Promoted without Gates.
	Gates     *PromotionGates `json:"-"`
	Release   string          `json:"release"` // current release ID, "" when none
	UpdatedAt time.Time       `json:"updatedAt"`
}

// SameDefinition reports whether two environments are defined alike.
func (e Environment) SameDefinition(o Environment) bool {
	return e.Position == o.Position && e.Protection == o.Protection && e.Data == o.Data && e.Promoted == o.Promoted &&
		reflect.DeepEqual(e.Gates, o.Gates)
}

// Release is an immutable, content-addressed snapshot of a workspace.
type Release struct {
	ID        string
	Digest    string            // "sha256:<hex>" over sorted paths and contents
	Files     map[string][]byte // nil in listings
	Labels    map[string]string
	Size      int64 // total bytes of the files
	CreatedAt time.Time
	CreatedBy string
}

// Assignment is one change of an environment's current release.
type Assignment struct {
	Environment string
	Release     string
	Previous    string
	Actor       string
	At          time.Time
}

// Token is an API credential; only its hash is stored.
type Token struct {
	ID           string
	Name         string
	Hash         string // hex SHA-256 of the secret token text
	Role         string
	Environments []string // empty: every environment
	Groups       []string
	CreatedAt    time.Time
	CreatedBy    string
}

// AuditEntry is one link of the chained audit log.
type AuditEntry struct {
	Seq      int64
	At       time.Time
	Actor    string
	Action   string
	Target   string
	Details  json.RawMessage
	PrevHash string
	Hash     string
}

// Secret is one secret value of an environment as resolution sees it.
type Secret struct {
	Value   string
	Version int
	// Sealed marks a secret whose name is known (secrets files keep names in
	// clear) but whose value could not be opened, e.g. lint in CI without the
	// environment's key. References to it count as satisfied; its value is
	// SealedValue and is never typed, compared or bound.
	Sealed bool
	// File is the workspace secrets file the secret came from (a path in
	// the workspace or release); "" for a server-side secret.
	File string
}

// SealedValue stands in for the value of a sealed secret.
const SealedValue = "<sealed>"

// SecretMeta describes the latest version of a server-side secret, never
// its value.
type SecretMeta struct {
	Name      string
	Version   int
	UpdatedAt time.Time
	UpdatedBy string
}

// SecretVersion is one stored version of a server-side secret. Stores never
// see a value: Ciphertext is sealed by internal/vault.
type SecretVersion struct {
	Environment string
	Name        string
	Version     int // 1, 2, … per (Environment, Name), tombstones included
	Ciphertext  []byte
	CreatedAt   time.Time
	CreatedBy   string
}

// EnvKey is an environment's data key, wrapped (encrypted) by the master key
// MasterKeyID names.
type EnvKey struct {
	Environment string
	Wrapped     []byte
	MasterKeyID string
	CreatedAt   time.Time
}

// EventKind names what an Event is about.
type EventKind string

const (
	EventRelease     EventKind = "release"
	EventEnvironment EventKind = "environment"
	EventToken       EventKind = "token"
	EventSecret      EventKind = "secret" // ID is the secret's name
	EventAudit       EventKind = "audit"
	// EventPromotion: a promotion into Environment changed (ID is its ID,
	// State its new state).
	EventPromotion EventKind = "promotion"
	// EventResync means events may have been lost (a dropped LISTEN
	// connection): reload everything.
	EventResync EventKind = "resync"
)

// Event is a change notification, delivered to every replica after commit.
type Event struct {
	Kind        EventKind `json:"kind"`
	Environment string    `json:"environment,omitempty"`
	ID          string    `json:"id,omitempty"`
	State       string    `json:"state,omitempty"`
}

// AuditAction names an audited action.
type AuditAction string

const (
	ActionReleaseCreate   AuditAction = "release.create"
	ActionSetRelease      AuditAction = "environment.set-release"
	ActionTokenCreate     AuditAction = "token.create"
	ActionTokenDelete     AuditAction = "token.delete"
	ActionSecretSet       AuditAction = "secret.set"
	ActionSecretDelete    AuditAction = "secret.delete"
	ActionSecretReveal    AuditAction = "secret.reveal"
	ActionConfigReveal    AuditAction = "config.reveal"
	ActionMasterKeyRotate AuditAction = "secrets.rotate-master-key"
	// Promotions: every transition names the promotion ID as its target.
	ActionPromotionCreate    AuditAction = "promotion.create"
	ActionPromotionCheck     AuditAction = "promotion.check"
	ActionPromotionChecklist AuditAction = "promotion.checklist"
	ActionPromotionApprove   AuditAction = "promotion.approve"
	ActionPromotionReject    AuditAction = "promotion.reject"
	ActionPromotionCancel    AuditAction = "promotion.cancel"
	ActionPromotionAdvance   AuditAction = "promotion.advance" // a state change the server made (timer, freeze ended)
	ActionPromotionApply     AuditAction = "promotion.apply"
	ActionPromotionFail      AuditAction = "promotion.fail"
	ActionPromotionSupersede AuditAction = "promotion.supersede"
)

// MarshalJSON writes the API's shape: release is null while none.
func (e Environment) MarshalJSON() ([]byte, error) {
	type plain Environment
	out := struct {
		plain
		Release *string `json:"release"`
	}{plain: plain(e)}
	out.UpdatedAt = e.UpdatedAt.UTC()
	if e.Release != "" {
		out.Release = &e.Release
	}
	return json.Marshal(out)
}

// Session is one sign-in to the web UI, stored so that every replica
// accepts its cookie. Only the hash of the cookie's random ID is kept.
type Session struct {
	IDHash    string // hex SHA-256 of the cookie's ID
	TokenID   string // the token signed in with; revoking it ends the session
	CSRF      string // the token every state-changing form carries
	CreatedAt time.Time
	ExpiresAt time.Time
}
