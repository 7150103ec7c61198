package sqlstore

import (
	"context"

	"github.com/latchhq/latch/store"
)

// TokensExpiring lists tokens expiring in (after, until] not yet sent
// reminder, soonest first.
func (s *Store) TokensExpiring(ctx context.Context, after, until int64, reminder string, limit int) ([]store.AccessToken, error) {
	rows, err := s.q.QueryContext(ctx, "SELECT "+tokenCols+` FROM access_tokens t
		WHERE expires_at <> 0 AND expires_at > $1 AND expires_at <= $2
		AND NOT EXISTS (SELECT 1 FROM reminders_sent r WHERE r.credential = 'token:' || t.id AND r.reminder = $3)
		ORDER BY expires_at, id LIMIT $4`, after, until, reminder, limit)
	if err != nil {
		return nil, s.wrap(err, "list expiring tokens")
	}
	defer rows.Close()
	var out []store.AccessToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, s.wrap(err, "list expiring tokens")
		}
		out = append(out, *t)
	}
	return out, s.wrap(rows.Err(), "list expiring tokens")
}

// KeysExpiring lists SSH keys expiring in (after, until] not yet sent
// reminder, soonest first.
func (s *Store) KeysExpiring(ctx context.Context, after, until int64, reminder string, limit int) ([]store.SSHKey, error) {
	return s.listKeys(ctx, "list expiring SSH keys", "SELECT "+keyCols+` FROM ssh_keys k
		WHERE k.expires_at <> 0 AND k.expires_at > $1 AND k.expires_at <= $2
		AND NOT EXISTS (SELECT 1 FROM reminders_sent r WHERE r.credential = 'sshkey:' || k.id AND r.reminder = $3)
		ORDER BY k.expires_at, k.id LIMIT $4`, []any{after, until, reminder, limit})
}

// MarkReminder records a sent reminder; false when it already was.
func (s *Store) MarkReminder(ctx context.Context, credential, reminder string, at int64) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO reminders_sent (credential, reminder, sent_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, credential, reminder, at)
	if err != nil {
		return false, s.wrap(err, "mark reminder")
	}
	n, err := rowsAffected(res)
	if err != nil {
		return false, s.wrap(err, "mark reminder")
	}
	return n == 1, nil
}
