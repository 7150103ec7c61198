package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// Credential statuses, as the validity check answers them.
const (
	CredentialActive  = "active"
	CredentialRevoked = "revoked"
	CredentialExpired = "expired"
	CredentialUnknown = "unknown"
)

// CredentialState is what latch knows of one presented secret.
type CredentialState struct {
	// Status is CredentialActive, CredentialRevoked, CredentialExpired or
	// CredentialUnknown.
	Status string
	// Kind is the token kind (its prefix) when the secret is a well-formed
	// latch token with a correct checksum, else "".
	Kind token.Kind
	// ID is the token's non-secret id when latch knows the secret
	// (active, expired, or revoked and remembered), else "".
	ID string
	// Token is the stored token when it still exists (active, expired, or
	// a rotated-out secret).
	Token *store.AccessToken
	// revokedOwner names the user a revoked token acted as, as remembered
	// when it was revoked.
	revokedOwner string
}

// Live reports whether the secret authenticates (or would, were its owner
// active): it is the credential a leak must kill.
func (s *CredentialState) Live() bool { return s.Status == CredentialActive }

// CredentialState looks up one secret. A string that is not a well-formed
// latch token with a correct checksum is unknown without any database query;
// otherwise it costs one keyed digest and one indexed lookup (two when the
// token is gone). It needs no authorization: only the holder of a secret
// can ask about it.
func (b *Backend) CredentialState(ctx context.Context, secret string) (*CredentialState, error) {
	kind, err := token.Parse(secret)
	if err != nil {
		return &CredentialState{Status: CredentialUnknown}, nil
	}
	st := &CredentialState{Status: CredentialUnknown, Kind: kind}
	if b.hasher == nil {
		return nil, errors.New("credential state: no token hasher configured")
	}
	d := b.hasher.Digest(secret)
	t, err := b.store.TokenByDigest(ctx, d[:])
	switch {
	case err == nil:
		now := b.now().UnixMilli()
		st.ID, st.Token = t.ID, t
		switch {
		case string(t.Digest) != string(d[:]) && now >= t.PrevExpiresAt:
			// A rotated-out secret past its grace period.
			st.Status = CredentialRevoked
		case t.ExpiresAt != 0 && now >= t.ExpiresAt:
			st.Status = CredentialExpired
		default:
			st.Status = CredentialActive
		}
		return st, nil
	case !errors.Is(err, latch.ErrNotFound):
		return nil, fmt.Errorf("look up token: %w", err)
	}
	r, err := b.store.RevokedTokenByDigest(ctx, d[:])
	switch {
	case err == nil:
		st.Status, st.ID, st.revokedOwner = CredentialRevoked, r.ID, r.Owner
	case !errors.Is(err, latch.ErrNotFound):
		return nil, fmt.Errorf("look up revoked token: %w", err)
	}
	return st, nil
}

// CredentialCheck is one answer of CheckCredentials.
type CredentialCheck struct {
	CredentialState
	// Owner is the user the token acts as (for project and repository
	// tokens, their service user); set only for system administrators.
	Owner *latch.User
}

// CheckCredentials answers the validity check for each secret, in order.
// The owner of a known token is included only when p is a system
// administrator.
func (b *Backend) CheckCredentials(ctx context.Context, p *latch.Principal, secrets []string) ([]CredentialCheck, error) {
	admin := p != nil && !p.IsAnonymous() && b.authorize(ctx, p, latch.SysAdminInstance, latch.Resource{}) == nil
	out := make([]CredentialCheck, len(secrets))
	owners := map[int64]*latch.User{}
	for i, s := range secrets {
		st, err := b.CredentialState(ctx, s)
		if err != nil {
			return nil, err
		}
		out[i].CredentialState = *st
		switch {
		case !admin:
		case st.Token != nil:
			uid := st.Token.UserID
			u, ok := owners[uid]
			if !ok {
				if u, err = b.store.UserByID(ctx, uid); err != nil && !errors.Is(err, latch.ErrNotFound) {
					return nil, fmt.Errorf("token owner: %w", err)
				}
				owners[uid] = u
			}
			out[i].Owner = u
		case st.revokedOwner != "":
			// The user may be gone since (a deleted repository's
			// service user): then there is no owner to name.
			u, err := b.store.UserByName(ctx, st.revokedOwner)
			if err != nil && !errors.Is(err, latch.ErrNotFound) {
				return nil, fmt.Errorf("revoked token owner: %w", err)
			}
			out[i].Owner = u
		}
	}
	return out, nil
}

// LeakedToken describes a token revoked on a leak report.
type LeakedToken struct {
	Token store.AccessToken
	// Owner is the user the token acted as (a service user, now deleted,
	// for project and repository tokens).
	Owner *latch.User
	// Notify is who is told: the owner of a personal token, the creator of
	// a project or repository token; nil when nobody can be found.
	Notify *latch.User
	// Project and Repo name what a project or repository token was bound to.
	Project *latch.Project
	Repo    *latch.Repository
}

// RevokeLeakedCredential revokes the token whose secret is secret, if it is
// live, and returns what was revoked; it returns nil, nil when the secret is
// not a live latch token. It needs no authorization: holding the secret is
// proof enough to kill it. Caches drop the token at once. notice, when not
// nil, writes the messages that tell of the revocation: they are queued in
// the outbox in the revocation's own transaction.
func (b *Backend) RevokeLeakedCredential(ctx context.Context, secret string, notice func(*LeakedToken) []store.Mail) (*LeakedToken, error) {
	st, err := b.CredentialState(ctx, secret)
	if err != nil || !st.Live() {
		return nil, err
	}
	t := st.Token
	leak := &LeakedToken{Token: *t}
	if leak.Owner, err = b.store.UserByID(ctx, t.UserID); err != nil && !errors.Is(err, latch.ErrNotFound) {
		return nil, fmt.Errorf("token owner: %w", err)
	}
	leak.Notify = leak.Owner
	if t.Kind != latch.CredPersonalToken {
		leak.Notify = nil
		if t.CreatedBy != 0 {
			leak.Notify, _ = b.store.UserByID(ctx, t.CreatedBy)
		}
		if t.ProjectID != 0 {
			leak.Project, _ = b.store.ProjectByID(ctx, t.ProjectID)
		}
		if t.RepoID != 0 {
			leak.Repo, _ = b.store.RepoByID(ctx, t.RepoID)
		}
	}
	gone, queued := false, false
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteToken(ctx, t.ID); err != nil {
			if errors.Is(err, latch.ErrNotFound) {
				gone = true // revoked meanwhile by someone else
				return nil
			}
			return err
		}
		// Recorded before a service user goes, so that its name is kept.
		if err := b.recordRevoked(ctx, tx, t); err != nil {
			return err
		}
		if t.Kind != latch.CredPersonalToken {
			if err := tx.DeleteUser(ctx, t.UserID); err != nil && !errors.Is(err, latch.ErrNotFound) {
				return err
			}
		}
		if notice == nil {
			return nil
		}
		for _, m := range notice(leak) {
			if m.CreatedAt == 0 {
				m.CreatedAt = b.nowMillis()
			}
			if err := tx.EnqueueMail(ctx, &m); err != nil {
				return fmt.Errorf("queue mail: %w", err)
			}
			queued = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("revoke leaked token: %w", err)
	}
	b.tokenChanged(ctx, t.ID)
	if gone {
		return nil, nil
	}
	b.mailQueued(queued)
	return leak, nil
}

// recordRevoked remembers the digests of a deleted token, so that its
// secrets read as revoked from now on.
func (b *Backend) recordRevoked(ctx context.Context, tx store.Store, t *store.AccessToken) error {
	now := b.nowMillis()
	owner := ""
	if u, err := tx.UserByID(ctx, t.UserID); err == nil {
		owner = u.Name
	}
	for _, d := range [][]byte{t.Digest, t.PrevDigest} {
		if len(d) == 0 {
			continue
		}
		if err := tx.RecordRevokedToken(ctx, &store.RevokedToken{Digest: d, ID: t.ID, Kind: t.Kind, RevokedAt: now, Owner: owner}); err != nil {
			return err
		}
	}
	return nil
}
