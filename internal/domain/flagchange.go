package domain

import (
	"encoding/json"
	"time"
)

// FlagChangeState is where a flag change request stands.
type FlagChangeState string

const (
	FlagChangePending   FlagChangeState = "pending"
	FlagChangeApplied   FlagChangeState = "applied"
	FlagChangeRejected  FlagChangeState = "rejected"
	FlagChangeCancelled FlagChangeState = "cancelled"
	// FlagChangeSuperseded: the flag's override changed after the request
	// (another change applied), so it no longer applies to what was asked.
	FlagChangeSuperseded FlagChangeState = "superseded"
	// FlagChangeStale: a release changed the flag's variants (or dropped
	// the flag) after the request.
	FlagChangeStale FlagChangeState = "stale"
)

// FlagChangeStates lists every state, in the order of the life cycle.
var FlagChangeStates = []FlagChangeState{FlagChangePending, FlagChangeApplied, FlagChangeRejected, FlagChangeCancelled,
	FlagChangeSuperseded, FlagChangeStale}

// Open reports whether the request still waits for approvals.
func (s FlagChangeState) Open() bool { return s == FlagChangePending }

// FlagFields are the fields of a flag a change sets (nil: unchanged).
type FlagFields struct {
	State          *string         `json:"state,omitempty"`
	DefaultVariant *string         `json:"defaultVariant,omitempty"`
	Targeting      json.RawMessage `json:"targeting,omitempty"`
}

// FlagChange is a request to change one flag of a restricted environment,
// applied once the environment's approval gate passed. Its approvals are
// tied to Digest, the flag's definition (variants and override) when it was
// requested: a change made to something else never applies.
type FlagChange struct {
	ID          string          `json:"id"`
	Environment string          `json:"environment"`
	Key         string          `json:"flag"`
	Change      FlagFields      `json:"change"`   // the fields requested
	Override    FlagFields      `json:"override"` // the flag's override once applied
	Release     string          `json:"release"`  // current in Environment when requested
	Variants    string          `json:"variantsDigest"`
	Digest      string          `json:"digest"`
	State       FlagChangeState `json:"state"`
	RequestedBy string          `json:"requestedBy"`
	// RequesterToken is the requester's token ID, for self-approval and
	// "cancel your own".
	RequesterToken string        `json:"requesterToken,omitempty"`
	Gate           GateApprovals `json:"gate"`
	Approvals      []Approval    `json:"approvals"`
	Reason         string        `json:"reason,omitempty"` // why it ended, when not applied
	CreatedAt      time.Time     `json:"createdAt"`
	UpdatedAt      time.Time     `json:"updatedAt"`
}

// FlagChangeFilter selects flag change requests to list.
type FlagChangeFilter struct {
	Environment string
	Key         string
	State       FlagChangeState
	Limit       int
}

const (
	// EventFlagChange: a flag change request of Environment changed (ID is
	// its ID, State its new state).
	EventFlagChange EventKind = "flag-change"

	// Flag change requests: every transition names the request's ID.
	ActionFlagChangeRequest   AuditAction = "flag.change-request"
	ActionFlagChangeApprove   AuditAction = "flag.change-approve"
	ActionFlagChangeApply     AuditAction = "flag.change-apply"
	ActionFlagChangeReject    AuditAction = "flag.change-reject"
	ActionFlagChangeCancel    AuditAction = "flag.change-cancel"
	ActionFlagChangeSupersede AuditAction = "flag.change-supersede"
	ActionFlagChangeStale     AuditAction = "flag.change-stale"
)
