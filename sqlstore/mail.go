package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const mailCols = `id, recipients, subject, body, status, attempts, next_attempt_at, lease_until, claim_token, last_error, created_at, sent_at`

func scanMail(sc scanner) (*store.Mail, error) {
	var m store.Mail
	var to string
	if err := sc.Scan(&m.ID, &to, &m.Subject, &m.Body, &m.Status, &m.Attempts, &m.NextAttemptAt, &m.LeaseUntil, &m.ClaimToken,
		&m.LastError, &m.CreatedAt, &m.SentAt); err != nil {
		return nil, err
	}
	m.To = splitList(to)
	return &m, nil
}

// EnqueueMail adds m to the outbox as pending, filling m.ID.
func (s *Store) EnqueueMail(ctx context.Context, m *store.Mail) error {
	if len(m.To) == 0 {
		return latch.Invalidf("A mail needs at least one recipient.")
	}
	for _, to := range m.To {
		if to == "" || strings.ContainsAny(to, ",\r\n") {
			return latch.Invalidf("Invalid mail recipient %q.", to)
		}
	}
	m.Status = store.MailPending
	err := s.q.QueryRowContext(ctx, `INSERT INTO mail_outbox (recipients, subject, body, status, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		strings.Join(m.To, ","), m.Subject, m.Body, m.Status, m.NextAttemptAt, m.CreatedAt).Scan(&m.ID)
	return s.wrap(err, "enqueue mail")
}

// mailDue is the condition of a claimable row: pending and due, or claimed
// by a sender whose lease expired. It is checked in the inner SELECT and
// again by the UPDATE itself, so that under PostgreSQL's READ COMMITTED a
// row another claimer took meanwhile is re-evaluated and skipped, not taken
// twice. Several PostgreSQL nodes can add FOR UPDATE SKIP LOCKED to the inner
// SELECT to stop waiting on each other's rows.
const mailDue = `((status = 'pending' AND next_attempt_at <= $1) OR (status = 'sending' AND lease_until <= $1))`

// ClaimMail claims up to c.Limit due messages for c.Token.
func (s *Store) ClaimMail(ctx context.Context, c store.MailClaim) ([]store.Mail, error) {
	if c.Token == "" || c.Limit <= 0 {
		return nil, latch.Invalidf("A mail claim needs a token and a limit.")
	}
	rows, err := s.q.QueryContext(ctx, `UPDATE mail_outbox
		SET status = 'sending', lease_until = $2, claim_token = $3, attempts = attempts + 1
		WHERE id IN (SELECT id FROM mail_outbox WHERE `+mailDue+` ORDER BY id LIMIT $4) AND `+mailDue+`
		RETURNING `+mailCols, c.Now, c.LeaseUntil, c.Token, c.Limit)
	if err != nil {
		return nil, s.wrap(err, "claim mail")
	}
	defer rows.Close()
	var out []store.Mail
	for rows.Next() {
		m, err := scanMail(rows)
		if err != nil {
			return nil, s.wrap(err, "claim mail")
		}
		out = append(out, *m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "claim mail")
	}
	// RETURNING gives no order; oldest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// FinishMail records the outcome of an attempt, if the caller still holds
// the claim.
func (s *Store) FinishMail(ctx context.Context, id int64, token string, now int64, errMsg string, retryAt int64, giveUp bool) (bool, error) {
	var res sql.Result
	var err error
	switch {
	case errMsg == "" && !giveUp:
		res, err = s.q.ExecContext(ctx, `UPDATE mail_outbox SET status = 'sent', sent_at = $3, last_error = '', claim_token = '', lease_until = 0
			WHERE id = $1 AND claim_token = $2 AND status = 'sending'`, id, token, now)
	case giveUp:
		res, err = s.q.ExecContext(ctx, `UPDATE mail_outbox SET status = 'failed', last_error = $3, claim_token = '', lease_until = 0
			WHERE id = $1 AND claim_token = $2 AND status = 'sending'`, id, token, truncateErr(errMsg))
	default:
		res, err = s.q.ExecContext(ctx, `UPDATE mail_outbox SET status = 'pending', next_attempt_at = $3, last_error = $4, claim_token = '', lease_until = 0
			WHERE id = $1 AND claim_token = $2 AND status = 'sending'`, id, token, retryAt, truncateErr(errMsg))
	}
	if err != nil {
		return false, s.wrap(err, "finish mail %d", id)
	}
	n, err := rowsAffected(res)
	return n > 0, s.wrap(err, "finish mail %d", id)
}

func truncateErr(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}

// MailByID returns one message.
func (s *Store) MailByID(ctx context.Context, id int64) (*store.Mail, error) {
	m, err := scanMail(s.q.QueryRowContext(ctx, "SELECT "+mailCols+" FROM mail_outbox WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.Errorf(latch.ErrNotFound, "No mail with id %d exists.", id)
	}
	if err != nil {
		return nil, s.wrap(err, "read mail %d", id)
	}
	return m, nil
}

// PurgeMail deletes the finished messages created before before.
func (s *Store) PurgeMail(ctx context.Context, before int64) (int64, error) {
	res, err := s.q.ExecContext(ctx, "DELETE FROM mail_outbox WHERE status IN ('sent', 'failed') AND created_at < $1", before)
	if err != nil {
		return 0, s.wrap(err, "purge mail")
	}
	n, err := rowsAffected(res)
	return n, s.wrap(err, "purge mail")
}

// NextMailDue returns when the earliest unsent message falls due.
func (s *Store) NextMailDue(ctx context.Context) (int64, bool, error) {
	var at sql.NullInt64
	err := s.q.QueryRowContext(ctx, `SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END)
		FROM mail_outbox WHERE status IN ('pending', 'sending')`).Scan(&at)
	if err != nil {
		return 0, false, fmt.Errorf("sqlstore: next mail due: %w", s.mapErr(err))
	}
	return at.Int64, at.Valid, nil
}
