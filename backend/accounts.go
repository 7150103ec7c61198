package backend

import (
	"context"
	"fmt"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/auth"
)

// ChangePassword changes the acting user's own password after checking the
// current one.
func (b *Backend) ChangePassword(ctx context.Context, p *latch.Principal, current, next, confirm string) error {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return err
	}
	hash, err := b.store.PasswordHash(ctx, p.UserID())
	if err != nil {
		return fmt.Errorf("read password: %w", err)
	}
	if !auth.VerifyPassword(hash, current) {
		return latch.Invalidf("The current password is incorrect.")
	}
	return b.setPassword(ctx, p, p.User, next, confirm)
}

// SetUserPassword sets another user's password (global ADMIN).
func (b *Backend) SetUserPassword(ctx context.Context, p *latch.Principal, name, next, confirm string) error {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return err
	}
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return err
	}
	if name == "" {
		return latch.Invalidf("The name is required.")
	}
	u, err := b.store.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if u.Type != latch.UserNormal {
		return latch.Invalidf("Service users have no password.")
	}
	if err := b.requireOutrank(ctx, p, u.ID); err != nil {
		return err
	}
	return b.setPassword(ctx, p, u, next, confirm)
}

func (b *Backend) setPassword(ctx context.Context, p *latch.Principal, u *latch.User, next, confirm string) error {
	if next == "" {
		return latch.Invalidf("A new password is required.")
	}
	if confirm != "" && confirm != next {
		return latch.Invalidf("The password confirmation does not match.")
	}
	if len(next) > auth.MaxPasswordLen {
		return latch.Invalidf("The password must be at most %d characters.", auth.MaxPasswordLen)
	}
	hash, err := auth.HashPassword(next)
	if err != nil {
		return err
	}
	if err := b.store.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	b.record(ctx, p, audit.PasswordChanged, "user:"+u.Name, "")
	return nil
}

// SetUserActive activates or deactivates a user (global ADMIN). A
// deactivated user's passwords, tokens and keys stop working at once.
func (b *Backend) SetUserActive(ctx context.Context, p *latch.Principal, slug string, active bool) (*latch.User, error) {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	u, err := b.store.UserBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	if u.ID == p.UserID() {
		return nil, latch.Invalidf("You cannot deactivate yourself.")
	}
	if err := b.requireOutrank(ctx, p, u.ID); err != nil {
		return nil, err
	}
	u.Active = active
	if err := b.store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	b.userChanged(ctx, u.ID)
	if !active {
		b.record(ctx, p, audit.UserDeactivated, "user:"+u.Name, "")
	} else {
		b.record(ctx, p, audit.UserActivated, "user:"+u.Name, "")
	}
	return u, nil
}
