package store

import "context"

// Reminders finds credentials that are about to expire and remembers which
// reminders were sent.
type Reminders interface {
	// TokensExpiring lists tokens whose expiry lies in (after, until] and
	// that were not sent reminder yet, at most limit of them, soonest first.
	TokensExpiring(ctx context.Context, after, until int64, reminder string, limit int) ([]AccessToken, error)
	// KeysExpiring does the same for SSH keys, user and access keys.
	KeysExpiring(ctx context.Context, after, until int64, reminder string, limit int) ([]SSHKey, error)
	// MarkReminder records that reminder (e.g. "7d") of credential was sent
	// at, and reports false when it had been recorded before: whoever gets
	// true sends it, so that it is sent exactly once.
	MarkReminder(ctx context.Context, credential, reminder string, at int64) (bool, error)
}
