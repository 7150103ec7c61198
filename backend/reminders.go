package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/store"
)

// Reminder windows: the owner of an expiring token or SSH key gets one mail
// a week before and one a day before its expiry.
var reminderWindows = []struct {
	name   string
	before time.Duration
}{
	{"7d", 7 * 24 * time.Hour},
	{"1d", 24 * time.Hour},
}

const reminderBatch = 500

// SendExpiryReminders queues the expiry reminders due at now: for every
// token and SSH key expiring within a window, one mail per window, exactly
// once across restarts and nodes (the reminder is marked sent in the
// transaction that queues its mail). A window that had already begun when
// the credential was created is skipped: a token made to last three days
// gets the one-day reminder only. It returns how many mails it queued.
func (b *Backend) SendExpiryReminders(ctx context.Context, now time.Time) (int, error) {
	sent := 0
	nowMS := now.UnixMilli()
	for i, w := range reminderWindows {
		// Tokens already inside the next, shorter window get that one only.
		after := nowMS
		if i+1 < len(reminderWindows) {
			after = now.Add(reminderWindows[i+1].before).UnixMilli()
		}
		toks, err := b.store.TokensExpiring(ctx, after, now.Add(w.before).UnixMilli(), w.name, reminderBatch)
		if err != nil {
			return sent, fmt.Errorf("expiry reminders: %w", err)
		}
		for _, t := range toks {
			ok, err := b.remind(ctx, "token:"+t.ID, t.CreatedAt, t.ExpiresAt, w.name, w.before, now,
				func() (bool, error) { return b.remindToken(ctx, t, w.name, now) })
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
			}
		}
		keys, err := b.store.KeysExpiring(ctx, after, now.Add(w.before).UnixMilli(), w.name, reminderBatch)
		if err != nil {
			return sent, fmt.Errorf("expiry reminders: %w", err)
		}
		for _, k := range keys {
			ok, err := b.remind(ctx, keyTarget(k.ID), k.CreatedAt, k.ExpiresAt, w.name, w.before, now,
				func() (bool, error) { return b.remindKey(ctx, k, w.name, now) })
			if err != nil {
				return sent, err
			}
			if ok {
				sent++
			}
		}
	}
	if sent > 0 && b.keys.mailer != nil {
		b.keys.mailer.Wake()
	}
	return sent, nil
}

// remind sends one reminder of a credential with send, unless the window
// (before expiry) had begun when the credential was created: then it is
// marked as done without a mail, so that it is not listed again.
func (b *Backend) remind(ctx context.Context, credential string, created, expires int64, window string, before time.Duration,
	now time.Time, send func() (bool, error)) (bool, error) {
	if created > expires-before.Milliseconds() {
		if _, err := b.store.MarkReminder(ctx, credential, window, now.UnixMilli()); err != nil {
			return false, fmt.Errorf("expiry reminders: %w", err)
		}
		return false, nil
	}
	return send()
}

// remindKey queues one reminder of an SSH key to its owner (a user key) or
// to whoever added it (an access key), unless it was sent before.
func (b *Backend) remindKey(ctx context.Context, k store.SSHKey, window string, now time.Time) (bool, error) {
	var queued bool
	var to *latch.User
	err := b.store.WithTx(ctx, func(tx store.Store) error {
		id := k.UserID
		if k.IsAccessKey() {
			id = k.CreatedBy
		}
		first, err := tx.MarkReminder(ctx, keyTarget(k.ID), window, now.UnixMilli())
		if err != nil || !first || id == 0 {
			return err
		}
		u, err := tx.UserByID(ctx, id)
		if errors.Is(err, latch.ErrNotFound) {
			return nil // whoever added the access key is gone
		}
		if err != nil || u.Email == "" {
			return err
		}
		to = u
		kind := "SSH key"
		if k.IsAccessKey() {
			kind = "SSH access key"
		}
		expires := time.UnixMilli(k.ExpiresAt).UTC()
		m := &store.Mail{
			To:      []string{u.Email},
			Subject: fmt.Sprintf("Your %s %q expires %s", kind, k.Label, expires.Format("2 Jan 2006")),
			Body: fmt.Sprintf("The %s %q (%s) expires at %s, in %s.\n\n"+
				"Add a new key where this one is used before then: an expired key is refused.\n",
				kind, k.Label, k.Fingerprint, expires.Format(time.RFC1123), expires.Sub(now).Round(time.Hour)),
		}
		if err := tx.EnqueueMail(ctx, m); err != nil {
			return err
		}
		queued = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("expiry reminder for SSH key %d: %w", k.ID, err)
	}
	if queued && b.audit != nil {
		kind := latch.CredUserKey
		if k.IsAccessKey() {
			kind = latch.CredAccessKey
		}
		b.audit.Record(ctx, store.AuditEvent{Type: audit.ReminderSent, ActorID: to.ID, ActorName: to.Name,
			CredentialKind: string(kind), CredentialID: strconv.FormatInt(k.ID, 10), Target: keyTarget(k.ID), Detail: window + " before expiry"})
	}
	return queued, nil
}

// keyTarget names an SSH key in reminders and the audit trail, as the SSH
// server does.
func keyTarget(id int64) string { return "sshkey:" + strconv.FormatInt(id, 10) }

// remindToken queues one reminder, unless it was sent before.
func (b *Backend) remindToken(ctx context.Context, t store.AccessToken, window string, now time.Time) (bool, error) {
	var queued bool
	var owner *latch.User
	err := b.store.WithTx(ctx, func(tx store.Store) error {
		u, err := tx.UserByID(ctx, t.UserID)
		if err != nil {
			return err
		}
		owner = u
		first, err := tx.MarkReminder(ctx, "token:"+t.ID, window, now.UnixMilli())
		if err != nil || !first {
			return err
		}
		to := reminderRecipients(ctx, tx, t, u)
		if len(to) == 0 {
			return nil
		}
		expires := time.UnixMilli(t.ExpiresAt).UTC()
		m := &store.Mail{
			To:      to,
			Subject: fmt.Sprintf("Your access token %q expires %s", t.Name, expires.Format("2 Jan 2006")),
			Body: fmt.Sprintf("The access token %q (id %s) expires at %s, in %s.\n\n"+
				"Create a new token and move your integrations to it before then, or rotate this one with\n"+
				"POST /rest/latch/1.0/access-tokens/%s/rotate.\n",
				t.Name, t.ID, expires.Format(time.RFC1123), expires.Sub(now).Round(time.Hour), t.ID),
		}
		if err := tx.EnqueueMail(ctx, m); err != nil {
			return err
		}
		queued = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("expiry reminder for token %s: %w", t.ID, err)
	}
	if queued && b.audit != nil {
		b.audit.Record(ctx, store.AuditEvent{Type: audit.ReminderSent, ActorID: owner.ID, ActorName: owner.Name,
			CredentialKind: string(t.Kind), CredentialID: t.ID, Target: "token:" + t.ID, Detail: window + " before expiry"})
	}
	return queued, nil
}

// reminderRecipients is the token's owner, or for a project or repository
// token (whose owner is a service user) the user who created it.
func reminderRecipients(ctx context.Context, tx store.Store, t store.AccessToken, owner *latch.User) []string {
	if owner.Type == latch.UserNormal && owner.Email != "" {
		return []string{owner.Email}
	}
	if t.CreatedBy != 0 {
		if u, err := tx.UserByID(ctx, t.CreatedBy); err == nil && u.Email != "" {
			return []string{u.Email}
		}
	}
	return nil
}

// RunReminders sends expiry reminders every interval until ctx ends.
func (b *Backend) RunReminders(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := b.SendExpiryReminders(ctx, b.now()); err != nil && ctx.Err() == nil {
			log.Error("expiry reminders", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
