package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// Policy gives the administrator settings in force.
type Policy interface {
	Current() *settings.Settings
}

// SetPolicy installs the settings the backend enforces.
func (b *Backend) SetPolicy(p Policy) { b.policy = p }

// SetAudit installs the audit recorder.
func (b *Backend) SetAudit(r audit.Recorder) { b.audit = r }

func (b *Backend) settings() *settings.Settings {
	if b.policy == nil {
		return settings.Default()
	}
	return b.policy.Current()
}

// record adds an event by p to the audit trail.
func (b *Backend) record(ctx context.Context, p *latch.Principal, typ, target, detail string) {
	if b.audit == nil {
		return
	}
	e := audit.Actor(p)
	e.Type, e.Target, e.Detail = typ, target, detail
	b.audit.Record(ctx, e)
}

// userGroupNames returns the names of the groups of the principal's user.
func (b *Backend) userGroupNames(ctx context.Context, p *latch.Principal) ([]string, error) {
	if p.UserID() == 0 {
		return nil, nil
	}
	gs, err := b.store.UserGroups(ctx, p.UserID())
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return names, nil
}

// inPolicyGroups reports whether p's user is in one of groups; an empty
// list admits everyone when emptyAll is set and no one otherwise.
func (b *Backend) inPolicyGroups(ctx context.Context, p *latch.Principal, groups []string, emptyAll bool) (bool, error) {
	if len(groups) == 0 {
		return emptyAll, nil
	}
	names, err := b.userGroupNames(ctx, p)
	if err != nil {
		return false, err
	}
	return settings.InGroups(groups, names), nil
}

// checkExpiryPolicy applies requireExpiry and maxExpiryDays to a new token.
func (b *Backend) checkExpiryPolicy(days *int) error {
	pol := b.settings().Tokens
	return checkExpiry("Tokens", days, pol.RequireExpiry, pol.MaxExpiryDays)
}

// expiresAt checks the expiryDays of a new token or SSH key and returns its
// expiry if made at now: epoch ms, 0 for never (nil or 0 days).
func expiresAt(days *int, now time.Time) (int64, error) {
	if days == nil || *days == 0 {
		return 0, nil
	}
	if *days < 0 || *days > MaxExpiryDays {
		return 0, latch.Invalidf("expiryDays must be between 1 and %d, or 0 or absent for no expiry.", MaxExpiryDays)
	}
	return now.Add(time.Duration(*days) * 24 * time.Hour).UnixMilli(), nil
}

// checkExpiry applies an expiry policy (requireExpiry, maxExpiryDays; 0 for
// no maximum) to the expiryDays of a new credential; what names its kind in
// the messages.
func checkExpiry(what string, days *int, require bool, maxDays int) error {
	d := 0
	if days != nil {
		d = *days
	}
	if require && d == 0 {
		if maxDays > 0 {
			return latch.Invalidf("%s must expire: set expiryDays between 1 and %d.", what, maxDays)
		}
		return latch.Invalidf("%s must expire: set expiryDays.", what)
	}
	if maxDays > 0 && (d == 0 || d > maxDays) {
		return latch.Invalidf("%s may expire at most %d days after creation: set expiryDays between 1 and %d.", what, maxDays, maxDays)
	}
	return nil
}

// MaxGraceSeconds bounds how long a rotated-out secret stays valid.
const MaxGraceSeconds = 86400

// RotateToken gives a token a new secret, keeping its id, name, permissions
// and ranges. With graceSeconds > 0 the old secret stays valid that long.
// The token's owner (or a member of the on-behalf groups) may rotate a
// personal token; a project's or repository's administrators its tokens.
func (b *Backend) RotateToken(ctx context.Context, p *latch.Principal, id string, graceSeconds int) (*TokenView, error) {
	if graceSeconds < 0 || graceSeconds > MaxGraceSeconds {
		return nil, latch.Invalidf("graceSeconds must be between 0 and %d.", MaxGraceSeconds)
	}
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return nil, err
	}
	t, err := b.store.TokenByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, noSuchToken(id)
	}
	if err != nil {
		return nil, err
	}
	// Rotating mints a secret: the same rule as creating one.
	if ok, err := b.inPolicyGroups(ctx, p, b.settings().Tokens.CreateGroups, true); err != nil {
		return nil, err
	} else if !ok {
		return nil, &Denied{Decision: latch.Decision{Visible: true}, Reason: "You are not in a group allowed to create access tokens."}
	}
	var s tokenScope
	switch t.Kind {
	case latch.CredPersonalToken:
		if t.UserID != p.UserID() {
			ok, err := b.inPolicyGroups(ctx, p, b.settings().Tokens.OnBehalfGroups, false)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, noSuchToken(id)
			}
			if err := b.requireOutrank(ctx, p, t.UserID); err != nil {
				return nil, err
			}
		}
	case latch.CredRepoToken:
		if err := b.authorize(ctx, p, latch.AdminRepo, latch.Resource{ProjectID: t.ProjectID, RepoID: t.RepoID}); err != nil {
			return nil, err
		}
	default:
		if err := b.authorize(ctx, p, latch.AdminProject, latch.Resource{ProjectID: t.ProjectID}); err != nil {
			return nil, err
		}
	}
	secret, err := token.Generate(auth.TokenKind(t.Kind))
	if err != nil {
		return nil, fmt.Errorf("generate token: %w", err)
	}
	d := b.hasher.Digest(secret)
	old := t.Digest
	var prev []byte
	var prevExpires int64
	if graceSeconds > 0 {
		prev = old
		prevExpires = b.now().Add(time.Duration(graceSeconds) * time.Second).UnixMilli()
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		// Secrets that stop working now read as revoked from now on.
		gone := &store.AccessToken{ID: t.ID, Kind: t.Kind, UserID: t.UserID, PrevDigest: t.PrevDigest}
		if graceSeconds == 0 {
			gone.Digest = old
		}
		if err := b.recordRevoked(ctx, tx, gone); err != nil {
			return err
		}
		ok, err := tx.RotateTokenDigest(ctx, t.ID, old, d[:], prev, prevExpires)
		if err != nil {
			return err
		}
		if !ok {
			return latch.Errorf(latch.ErrConflict, "The token was rotated or revoked meanwhile; try again.")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rotate token: %w", err)
	}
	t.Digest, t.PrevDigest, t.PrevExpiresAt = d[:], prev, prevExpires
	b.tokenChanged(ctx, t.ID)
	b.record(ctx, p, audit.TokenRotated, "token:"+t.ID, fmt.Sprintf("grace %ds", graceSeconds))
	v, err := b.viewToken(ctx, *t, s)
	if err != nil {
		return nil, err
	}
	v.Secret = secret
	return v, nil
}

// Settings returns the settings document (SYS_ADMIN).
func (b *Backend) Settings(ctx context.Context, p *latch.Principal) (*settings.Settings, error) {
	if err := b.authorize(ctx, p, latch.SysAdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	return b.settings(), nil
}

// SettingsUpdater applies a settings document.
type SettingsUpdater interface {
	Update(ctx context.Context, body []byte) (before, after *settings.Settings, err error)
}

// UpdateSettings applies a PUT of the settings document (SYS_ADMIN).
func (b *Backend) UpdateSettings(ctx context.Context, p *latch.Principal, u SettingsUpdater, body []byte) (*settings.Settings, error) {
	if err := b.authorize(ctx, p, latch.SysAdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	_, after, err := u.Update(ctx, body)
	if err != nil {
		return nil, err
	}
	// The resulting document, not the request body: bounded and validated.
	doc, _ := json.Marshal(after)
	b.record(ctx, p, audit.SettingsChanged, "settings", string(doc))
	return after, nil
}

// Audit lists audit events (ADMIN).
func (b *Backend) Audit(ctx context.Context, p *latch.Principal, f store.AuditFilter, pg store.Page) (Page[store.AuditEvent], error) {
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return Page[store.AuditEvent]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.ListAudit(ctx, f, pg)
	if err != nil {
		return Page[store.AuditEvent]{}, fmt.Errorf("list audit events: %w", err)
	}
	return pageOf(rows, pg), nil
}
