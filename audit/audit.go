// Package audit records credential events: every one is stored in the
// database, where administrators list it through the REST API, and logged as
// one JSON line. Events name tokens by their non-secret id only.
package audit

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// Event types.
const (
	UserCreated       = "user.created"
	UserDeleted       = "user.deleted"
	UserDeactivated   = "user.deactivated"
	UserActivated     = "user.activated"
	PasswordChanged   = "password.changed"
	TokenCreated      = "token.created"
	TokenUpdated      = "token.updated"
	TokenRotated      = "token.rotated"
	TokenRevoked      = "token.revoked"
	TokenRefused      = "token.refused"
	TokenNewAddress   = "token.new_address"
	SSHKeyAdded       = "sshkey.added"
	SSHKeyRemoved     = "sshkey.removed"
	AccessKeyAdded    = "accesskey.added"
	AccessKeyRemoved  = "accesskey.removed"
	AccessKeyChanged  = "accesskey.changed"
	SettingsChanged   = "settings.changed"
	LoginFailed       = "login.failed"
	RateLimited       = "auth.rate_limited"
	SecretBypassed    = "push.secret_bypassed"
	CredentialLeaked  = "credential.revoked_on_report"
	PushBlocked       = "push.blocked"
	KeyRefused        = "sshkey.refused"
	ReminderSent      = "credential.expiry_reminder"
	PermissionChanged = "permission.changed"
	GroupChanged      = "group.changed"
	VisibilityChanged = "visibility.changed"
)

// Outcomes.
const (
	Success = "success"
	Refused = "refused"
	Failure = "failure"
)

// Origin is where a request came from.
type Origin struct {
	Addr      netip.Addr
	UserAgent string
}

type originKey struct{}

// WithOrigin returns a context carrying the request's origin, set by the
// transports so that events record it.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin carried by ctx.
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Recorder records events.
type Recorder interface {
	Record(ctx context.Context, e store.AuditEvent)
}

// Log is the Recorder latch runs with: it stores each event and logs it.
type Log struct {
	st  store.Audit
	log *slog.Logger
	now func() time.Time
}

// NewLog returns a Log over st.
func NewLog(st store.Audit, log *slog.Logger) *Log { return &Log{st: st, log: log, now: time.Now} }

// Record stores e, filling its time and origin when unset, and logs it. A
// failure to store is logged, never returned: the action it records has
// already happened.
func (l *Log) Record(ctx context.Context, e store.AuditEvent) {
	if e.Time == 0 {
		e.Time = l.now().UnixMilli()
	}
	o := OriginFrom(ctx)
	if e.Address == "" && o.Addr.IsValid() {
		e.Address = o.Addr.String()
	}
	if e.UserAgent == "" {
		e.UserAgent = truncate(o.UserAgent, 256)
	}
	if e.Outcome == "" {
		e.Outcome = Success
	}
	if err := l.st.AppendAudit(context.WithoutCancel(ctx), &e); err != nil {
		l.log.Error("store audit event", "type", e.Type, "err", err)
	}
	l.log.Info("audit", "event", e.Type, "outcome", e.Outcome, "actor", e.ActorName, "actor_id", e.ActorID,
		"credential_kind", e.CredentialKind, "credential_id", e.CredentialID, "target", e.Target,
		"address", e.Address, "user_agent", e.UserAgent, "detail", e.Detail, "at", e.Time)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Actor fills the actor fields of an event from a principal.
func Actor(p *latch.Principal) store.AuditEvent {
	var e store.AuditEvent
	if p == nil {
		return e
	}
	if p.User != nil {
		e.ActorID, e.ActorName = p.User.ID, p.User.Name
	}
	e.CredentialKind, e.CredentialID = string(p.Credential), p.CredentialID
	return e
}

// Nop is a Recorder that records nothing.
type Nop struct{}

// Record does nothing.
func (Nop) Record(context.Context, store.AuditEvent) {}
