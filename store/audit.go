package store

import "context"

// AuditEvent is one recorded credential event. It never holds a secret: a
// token appears only by its non-secret id.
type AuditEvent struct {
	ID   int64
	Time int64 // epoch ms
	// Type names the event, e.g. "token.created"; see package audit.
	Type string
	// ActorID and ActorName name the user acting (0 and "" when anonymous);
	// CredentialKind and CredentialID the credential they acted with.
	ActorID        int64
	ActorName      string
	CredentialKind string
	CredentialID   string
	// Target names what the event is about, e.g. "token:123456789012".
	Target    string
	Address   string
	UserAgent string
	// Outcome is "success", "refused" or "failure".
	Outcome string
	// Detail is a short human-readable explanation.
	Detail string
}

// AuditFilter narrows an audit listing; zero fields match everything.
type AuditFilter struct {
	Type  string
	Actor string // actor user name
	Since int64  // epoch ms, inclusive
	Until int64  // epoch ms, exclusive
}

// Audit stores the audit trail.
type Audit interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error
	// ListAudit lists events newest first.
	ListAudit(ctx context.Context, f AuditFilter, p Page) ([]AuditEvent, error)
}
