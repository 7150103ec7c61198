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

// reminder is one expiry reminder of one credential.
type reminder struct {
	target, window string // "token:ID" or "sshkey:ID"; "7d" or "1d"
	kind           latch.CredentialKind
	id             string
	subject, body  string
	// recipients reads, in the reminder's transaction, the user the audit
	// event names and the addresses the mail goes to (none: no mail).
	recipients func(tx store.Store) (actor *latch.User, to []string, err error)
}

// sendReminder queues r's mail and marks r sent in one transaction, unless
// it was sent before, then audits it. It reports whether it queued a mail.
func (b *Backend) sendReminder(ctx context.Context, r reminder, now time.Time) (bool, error) {
	var queued bool
	var actor *latch.User
	err := b.store.WithTx(ctx, func(tx store.Store) error {
		var to []string
		var err error
		if actor, to, err = r.recipients(tx); err != nil {
			return err
		}
		first, err := tx.MarkReminder(ctx, r.target, r.window, now.UnixMilli())
		if err != nil || !first || len(to) == 0 {
			return err
		}
		if err := tx.EnqueueMail(ctx, &store.Mail{To: to, Subject: r.subject, Body: r.body}); err != nil {
			return err
		}
		queued = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("expiry reminder for %s: %w", r.target, err)
	}
	if queued && b.audit != nil {
		b.audit.Record(ctx, store.AuditEvent{Type: audit.ReminderSent, ActorID: actor.ID, ActorName: actor.Name,
			CredentialKind: string(r.kind), CredentialID: r.id, Target: r.target, Detail: r.window + " before expiry"})
	}
	return queued, nil
}

// remindKey queues one reminder of an SSH key to its owner (a user key) or
// to whoever added it (an access key), unless it was sent before.
func (b *Backend) remindKey(ctx context.Context, k store.SSHKey, window string, now time.Time) (bool, error) {
	kind, noun, userID := latch.CredUserKey, "SSH key", k.UserID
	if k.IsAccessKey() {
		kind, noun, userID = latch.CredAccessKey, "SSH access key", k.CreatedBy
	}
	expires := time.UnixMilli(k.ExpiresAt).UTC()
	return b.sendReminder(ctx, reminder{
		target: keyTarget(k.ID), window: window, kind: kind, id: strconv.FormatInt(k.ID, 10),
		subject: fmt.Sprintf("Your %s %q expires %s", noun, k.Label, expires.Format("2 Jan 2006")),
		body: fmt.Sprintf("The %s %q (%s) expires at %s, in %s.\n\n"+
			"Add a new key where this one is used before then: an expired key is refused.\n",
			noun, k.Label, k.Fingerprint, expires.Format(time.RFC1123), expires.Sub(now).Round(time.Hour)),
		recipients: func(tx store.Store) (*latch.User, []string, error) {
			if userID == 0 {
				return nil, nil, nil
			}
			u, err := tx.UserByID(ctx, userID)
			switch {
			case errors.Is(err, latch.ErrNotFound):
				return nil, nil, nil // whoever added the access key is gone
			case err != nil || u.Email == "":
				return u, nil, err
			}
			return u, []string{u.Email}, nil
		},
	}, now)
}

// keyTarget names an SSH key in reminders and the audit trail, as the SSH
// server does.
func keyTarget(id int64) string { return "sshkey:" + strconv.FormatInt(id, 10) }

// remindToken queues one reminder, unless it was sent before.
func (b *Backend) remindToken(ctx context.Context, t store.AccessToken, window string, now time.Time) (bool, error) {
	expires := time.UnixMilli(t.ExpiresAt).UTC()
	return b.sendReminder(ctx, reminder{
		target: "token:" + t.ID, window: window, kind: t.Kind, id: t.ID,
		subject: fmt.Sprintf("Your access token %q expires %s", t.Name, expires.Format("2 Jan 2006")),
		body: fmt.Sprintf("The access token %q (id %s) expires at %s, in %s.\n\n"+
			"Create a new token and move your integrations to it before then, or rotate this one with\n"+
			"POST /rest/latch/1.0/access-tokens/%s/rotate.\n",
			t.Name, t.ID, expires.Format(time.RFC1123), expires.Sub(now).Round(time.Hour), t.ID),
		recipients: func(tx store.Store) (*latch.User, []string, error) {
			u, err := tx.UserByID(ctx, t.UserID)
			if err != nil {
				return nil, nil, err
			}
			return u, reminderRecipients(ctx, tx, t, u), nil
		},
	}, now)
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
