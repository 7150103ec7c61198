package sqlstore

import (
	"context"

	"github.com/latchhq/latch/store"
)

const auditCols = "id, time, type, actor_id, actor_name, credential_kind, credential_id, target, address, user_agent, outcome, detail"

// AppendAudit stores e, filling e.ID.
func (s *Store) AppendAudit(ctx context.Context, e *store.AuditEvent) error {
	err := s.q.QueryRowContext(ctx, `INSERT INTO audit_events (time, type, actor_id, actor_name, credential_kind,
		credential_id, target, address, user_agent, outcome, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		e.Time, e.Type, e.ActorID, e.ActorName, e.CredentialKind, e.CredentialID, e.Target, e.Address, e.UserAgent,
		e.Outcome, e.Detail).Scan(&e.ID)
	return s.wrap(err, "append audit event")
}

// ListAudit lists events matching f, newest first.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter, p store.Page) ([]store.AuditEvent, error) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+" $"+itoa(len(args)))
	}
	if f.Type != "" {
		add("type =", f.Type)
	}
	if f.Actor != "" {
		add("actor_name =", f.Actor)
	}
	if f.Since != 0 {
		add("time >=", f.Since)
	}
	if f.Until != 0 {
		add("time <", f.Until)
	}
	q, args := page("SELECT "+auditCols+" FROM audit_events"+whereAnd(conds)+" ORDER BY time DESC, id DESC", args, p)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list audit events")
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var e store.AuditEvent
		if err := rows.Scan(&e.ID, &e.Time, &e.Type, &e.ActorID, &e.ActorName, &e.CredentialKind, &e.CredentialID,
			&e.Target, &e.Address, &e.UserAgent, &e.Outcome, &e.Detail); err != nil {
			return nil, s.wrap(err, "list audit events")
		}
		out = append(out, e)
	}
	return out, s.wrap(rows.Err(), "list audit events")
}
