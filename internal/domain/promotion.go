package domain

import "time"

// PromotionState is where a promotion stands (see internal/promote).
type PromotionState string

const (
	PromotionChecking         PromotionState = "checking"
	PromotionAwaitingApproval PromotionState = "awaiting-approval"
	PromotionApproved         PromotionState = "approved" // waiting only for a timer or a freeze
	PromotionApplied          PromotionState = "applied"
	PromotionFailed           PromotionState = "failed"
	PromotionRejected         PromotionState = "rejected"
	PromotionCancelled        PromotionState = "cancelled"
	PromotionSuperseded       PromotionState = "superseded"
)

// Open reports whether a promotion in state s may still change.
func (s PromotionState) Open() bool {
	return s == PromotionChecking || s == PromotionAwaitingApproval || s == PromotionApproved
}

// PromotionGates are the gates of an environment's promotion block, as the
// workspace of the release current in it defines them.
type PromotionGates struct {
	From      string          `json:"from"`
	Auto      bool            `json:"auto,omitempty"`
	Checks    []GateCheck     `json:"checks,omitempty"`
	Checklist []string        `json:"checklist,omitempty"`
	Approvals *GateApprovals  `json:"approvals,omitempty"`
	WaitTimer time.Duration   `json:"waitTimer,omitempty"`
	Freeze    []FreezeWindow  `json:"freeze,omitempty"`
	Webhooks  []PromotionHook `json:"webhooks,omitempty"`
}

// Check types.
const (
	CheckPolicy     = "policy"     // built in: lint of the release resolved for the target
	CheckReferences = "references" // built in: every ${…} resolves in the target
	CheckExternal   = "external"   // reported by CI through the API
	CheckHTTP       = "http"       // the server calls a URL
)

// GateCheck is one check of a promotion block.
type GateCheck struct {
	Name         string        `json:"name"`
	Type         string        `json:"type"`
	URL          string        `json:"url,omitempty"`
	ExpectStatus int           `json:"expectStatus,omitempty"`
	Timeout      time.Duration `json:"timeout,omitempty"`
}

// GateApprovals says who must approve.
type GateApprovals struct {
	Required          int      `json:"required"`
	Groups            []string `json:"groups,omitempty"`
	AllowSelfApproval bool     `json:"allowSelfApproval,omitempty"`
}

// FreezeWindow is a time when promotions into an environment wait: a fixed
// window [From, To) or a recurring one starting at each Cron match and
// lasting Duration, in Timezone (UTC when empty).
type FreezeWindow struct {
	From     time.Time     `json:"from,omitzero"`
	To       time.Time     `json:"to,omitzero"`
	Cron     string        `json:"cron,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	Timezone string        `json:"timezone,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

// PromotionHook is a webhook told of promotion events; Secret names a
// server-side secret of the environment that signs the body.
type PromotionHook struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret"`
	Events []string `json:"events,omitempty"`
}

// Check statuses.
const (
	CheckPending = "pending"
	CheckRunning = "running" // a replica holds its lease and runs it
	CheckPassed  = "passed"
	CheckFailed  = "failed"
)

// CheckStatus is the state of one check of a promotion.
type CheckStatus struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	URL     string `json:"url,omitempty"`
	Message string `json:"message,omitempty"`
	// Lease: the replica running a server-side check and until when; a
	// lease that ran out is taken over (a restart resumes).
	LeaseOwner string    `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	Attempts   int       `json:"attempts,omitempty"`
	By         string    `json:"by,omitempty"`
}

// ChecklistItem is one item a person ticks.
type ChecklistItem struct {
	Item string `json:"item"`
	Done bool   `json:"done"`
	By   string `json:"by,omitempty"`
}

// Approval is one counted approval, tied to the release digest.
type Approval struct {
	By      string    `json:"by"`
	TokenID string    `json:"tokenId,omitempty"`
	At      time.Time `json:"at"`
	Digest  string    `json:"digest"`
}

// Promotion is a request to make Release current in Environment through
// the gates the environment's definition had when it was opened.
type Promotion struct {
	ID          string         `json:"id"`
	Release     string         `json:"release"`
	Digest      string         `json:"digest"`
	Environment string         `json:"environment"`
	From        string         `json:"from"`
	State       PromotionState `json:"state"`
	RequestedBy string         `json:"requestedBy"`
	// RequesterToken is the requester's token ID ("" for the server
	// itself), for self-approval and "cancel your own".
	RequesterToken string          `json:"requesterToken,omitempty"`
	Rollback       bool            `json:"rollback"`
	Emergency      bool            `json:"emergency,omitempty"`
	Auto           bool            `json:"auto,omitempty"`
	Gates          PromotionGates  `json:"gates"`
	Checks         []CheckStatus   `json:"checks"`
	Checklist      []ChecklistItem `json:"checklist"`
	Approvals      []Approval      `json:"approvals"`
	ApprovedAt     time.Time       `json:"approvedAt,omitzero"`
	WaitUntil      time.Time       `json:"waitUntil,omitzero"`
	Previous       string          `json:"previous,omitempty"` // the target's release when applied
	Reason         string          `json:"reason,omitempty"`   // why it ended, when not applied
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
}

// PromotionFilter selects promotions to list.
type PromotionFilter struct {
	Environment string
	State       PromotionState
	OpenOnly    bool
	Limit       int
}
