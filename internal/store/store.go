// Package store defines what the server persists — releases, environments and
// their current release, tokens, the audit log, encrypted secrets and the
// wrapped keys that open them — and how it is reached: a
// Reader for queries and a Tx for writes that commit together with their audit
// entries. Implementations (sqlite, postgres) only store: validation, hashing
// and authorization live in domain packages. storetest holds the one suite
// every implementation passes.
//
// Errors: a missing row is errs.NotFound, a uniqueness or check-and-set
// violation errs.Conflict, an unreachable database errs.Unavailable.
package store

import (
	"context"
	"time"

	"github.com/envplane/envplane/internal/domain"
)

// The store speaks the domain's types; backends convert their rows to them.
type (
	Release       = domain.Release
	Environment   = domain.Environment
	Assignment    = domain.Assignment
	Token         = domain.Token
	AuditEntry    = domain.AuditEntry
	SecretMeta    = domain.SecretMeta
	SecretVersion = domain.SecretVersion
	EnvKey        = domain.EnvKey
	FlagOverride  = domain.FlagOverride
	Event         = domain.Event
	Promotion     = domain.Promotion
	FlagChange    = domain.FlagChange
	Session       = domain.Session
)

// Reader answers queries.
type Reader interface {
	GetRelease(ctx context.Context, id string) (Release, error)
	// GetReleaseByDigest returns the release with digest, without its
	// files: it answers "is this content stored?" (GetRelease has them).
	GetReleaseByDigest(ctx context.Context, digest string) (Release, error)
	// GetReleaseFile returns one file of a release; NotFound when the
	// release or the file does not exist.
	GetReleaseFile(ctx context.Context, id, path string) ([]byte, error)
	// ListReleases returns newest first, without files.
	ListReleases(ctx context.Context, limit int) ([]Release, error)
	ListEnvironments(ctx context.Context) ([]Environment, error)
	GetEnvironment(ctx context.Context, name string) (Environment, error)
	// History returns an environment's assignments, newest first.
	History(ctx context.Context, env string, limit int) ([]Assignment, error)
	GetTokenByHash(ctx context.Context, hash string) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	// ListAudit returns entries with Seq > after, oldest first.
	ListAudit(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
	// LastAudit returns the newest entry; ok is false on an empty log.
	LastAudit(ctx context.Context) (entry AuditEntry, ok bool, err error)
	// ListSecrets describes the latest version of every secret of env that
	// is not deleted, by name.
	ListSecrets(ctx context.Context, env string) ([]SecretMeta, error)
	// LatestSecrets is ListSecrets with the ciphertexts: everything that
	// resolving env's config needs, in one query.
	LatestSecrets(ctx context.Context, env string) ([]SecretVersion, error)
	// GetSecret returns the latest version of a secret; NotFound when it was
	// never set or its latest version is a deletion.
	GetSecret(ctx context.Context, env, name string) (SecretVersion, error)
	// LatestSecretVersion is the highest version stored for a secret,
	// deletions included; 0 when it was never set.
	LatestSecretVersion(ctx context.Context, env, name string) (int, error)
	GetEnvKey(ctx context.Context, env string) (EnvKey, error)
	// GetPromotion returns a promotion; NotFound when there is none.
	GetPromotion(ctx context.Context, id string) (Promotion, error)
	// ListPromotions returns the promotions f selects, newest first.
	ListPromotions(ctx context.Context, f domain.PromotionFilter) ([]Promotion, error)
	// ListEnvKeys returns every environment's wrapped key, by environment.
	ListEnvKeys(ctx context.Context) ([]EnvKey, error)
	// ListFlagOverrides returns the flag overrides of env ("" for every
	// environment), by environment and key.
	ListFlagOverrides(ctx context.Context, env string) ([]FlagOverride, error)
	// GetFlagChange returns a flag change request; NotFound when there is
	// none.
	GetFlagChange(ctx context.Context, id string) (FlagChange, error)
	// ListFlagChanges returns the flag change requests f selects, newest
	// first.
	ListFlagChanges(ctx context.Context, f domain.FlagChangeFilter) ([]FlagChange, error)
	// GetSession returns the session whose ID hashes to idHash and the
	// token it was signed in with, expired or not; NotFound when there is
	// none (never stored, signed out, or its token deleted).
	GetSession(ctx context.Context, idHash string) (Session, Token, error)
}

// Tx is one write transaction. Writers are serialized, so a Tx that reads
// LastAudit and appends Seq+1 never races another.
type Tx interface {
	Reader
	// InsertRelease stores a new release; a duplicate ID or digest is a Conflict.
	InsertRelease(ctx context.Context, r Release) error
	// UpsertEnvironment creates or updates an environment's definition,
	// leaving its current release alone.
	UpsertEnvironment(ctx context.Context, e Environment) error
	// SetRelease makes release current in env, records the assignment and
	// returns the previous release ("" when none).
	SetRelease(ctx context.Context, env, release, actor string, at time.Time) (previous string, err error)
	InsertToken(ctx context.Context, t Token) error
	DeleteToken(ctx context.Context, id string) error
	// AppendAudit adds the next entry; its Seq must be LastAudit's + 1.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// SetAuditHash replaces the PrevHash and Hash of entry seq, leaving its
	// content alone: only for re-keying the whole chain in one transaction
	// (audit.Chain.Rekey). NotFound when there is no such entry.
	SetAuditHash(ctx context.Context, seq int64, prevHash, hash string) error
	// PutSecret stores a new version. Its Version must be one more than
	// LatestSecretVersion, else Conflict; an unknown environment is NotFound.
	// Check-and-set against what a client saw is the domain layer's job.
	PutSecret(ctx context.Context, v SecretVersion) error
	// DeleteSecret appends a deletion (tombstone) version, keeping history;
	// NotFound when the secret is not set.
	DeleteSecret(ctx context.Context, env, name, actor string, at time.Time) error
	// PutEnvKey inserts or replaces env's wrapped key (master-key rotation
	// replaces); an unknown environment is NotFound.
	PutEnvKey(ctx context.Context, k EnvKey) error
	// InsertPromotion stores a new promotion; a duplicate ID is a Conflict,
	// an unknown environment or release NotFound.
	InsertPromotion(ctx context.Context, p Promotion) error
	// UpdatePromotion replaces a stored promotion; NotFound when missing.
	UpdatePromotion(ctx context.Context, p Promotion) error
	// PutFlagOverride inserts or replaces the override of (Environment,
	// Key); an unknown environment is NotFound.
	PutFlagOverride(ctx context.Context, o FlagOverride) error
	// DeleteFlagOverride removes one; NotFound when there is none.
	DeleteFlagOverride(ctx context.Context, env, key string) error
	// InsertFlagChange stores a new flag change request; a duplicate ID is
	// a Conflict, an unknown environment NotFound.
	InsertFlagChange(ctx context.Context, c FlagChange) error
	// UpdateFlagChange replaces a stored one; NotFound when missing.
	UpdateFlagChange(ctx context.Context, c FlagChange) error
	// InsertSession stores a new session; a duplicate IDHash is a Conflict,
	// an unknown token NotFound. Deleting its token deletes it.
	InsertSession(ctx context.Context, s Session) error
	// DeleteSession removes one; NotFound when there is none.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteSessions removes the sessions that expired at or before now,
	// and those of tokenID ("" for none) beyond its keep newest ones; it
	// returns how many went.
	DeleteSessions(ctx context.Context, now time.Time, tokenID string, keep int) (int64, error)
	// Notify queues an event, delivered to subscribers only if the
	// transaction commits.
	Notify(ev Event)
}

// Store is a database holding envplane's state.
type Store interface {
	Reader
	// WithTx runs fn in one serialized write transaction, committing when
	// fn returns nil and rolling back otherwise.
	WithTx(ctx context.Context, fn func(Tx) error) error
	// Subscribe delivers committed events (from every replica, where the
	// backend supports several) until ctx ends.
	Subscribe(ctx context.Context) (<-chan Event, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Migrations reports the schema version applied and the latest known.
	Migrations(ctx context.Context) (applied, latest int, err error)
	Close() error
}
