package backend

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/store"
)

// NewUser is the input to CreateUser.
type NewUser struct {
	Name        string
	Password    string
	DisplayName string
	Email       string
}

func validateUserName(name string) error {
	if name == "" {
		return latch.Invalidf("The user name is required.")
	}
	if len(name) > 255 {
		return latch.Invalidf("The user name must be at most 255 characters.")
	}
	if !utf8.ValidString(name) || name == "." || name == ".." {
		// "." and ".." would be path segments that URLs cannot name.
		return latch.Invalidf("The user name %q is not allowed.", name)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' || r == '\\' || r == ':' {
			return latch.Invalidf("The user name %q contains characters that are not allowed.", name)
		}
	}
	return nil
}

// CreateUser creates a normal user. It needs global ADMIN and an interactive
// credential (tokens cannot create accounts).
func (b *Backend) CreateUser(ctx context.Context, p *latch.Principal, nu NewUser) (*latch.User, error) {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	u, err := b.createUser(ctx, nu)
	if err == nil {
		b.record(ctx, p, audit.UserCreated, "user:"+u.Name, "")
	}
	return u, err
}

// Bootstrap creates the first system administrator when there are no users
// yet; it reports whether it did.
func (b *Backend) Bootstrap(ctx context.Context, name, password, email string) (bool, error) {
	n, err := b.store.CountUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		u, err := (&Backend{store: tx}).createUser(ctx, NewUser{Name: name, Password: password, DisplayName: "Administrator", Email: email})
		if err != nil {
			return err
		}
		return tx.SetPermission(ctx, latch.Resource{}, store.Subject{UserID: u.ID}, latch.SysAdmin)
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap admin: %w", err)
	}
	return true, nil
}

func (b *Backend) createUser(ctx context.Context, nu NewUser) (*latch.User, error) {
	if err := validateUserName(nu.Name); err != nil {
		return nil, err
	}
	if nu.Password == "" {
		return nil, latch.Invalidf("A password is required.")
	}
	if len(nu.Password) > auth.MaxPasswordLen {
		return nil, latch.Invalidf("The password must be at most %d characters.", auth.MaxPasswordLen)
	}
	if nu.Email == "" {
		return nil, latch.Invalidf("An email address is required.")
	}
	addr, err := mail.ParseAddress(nu.Email)
	if err != nil || addr.Address != nu.Email {
		return nil, latch.Invalidf("%q is not a valid email address.", nu.Email)
	}
	if nu.DisplayName == "" {
		nu.DisplayName = nu.Name
	}
	if err := latch.ValidateText("display name", nu.DisplayName); err != nil {
		return nil, err
	}
	if len(nu.DisplayName) > 255 {
		return nil, latch.Invalidf("The display name must be at most 255 characters.")
	}
	if _, err := b.store.UserByNameOrEmail(ctx, nu.Email); err == nil {
		return nil, latch.Errorf(latch.ErrConflict, "A user with email address %s already exists.", nu.Email)
	}
	hash, err := auth.HashPassword(nu.Password)
	if err != nil {
		return nil, err
	}
	u := &latch.User{
		Name: nu.Name, Slug: latch.UserSlug(nu.Name), DisplayName: nu.DisplayName, Email: nu.Email,
		Active: true, Type: latch.UserNormal, CreatedAt: b.nowMillis(),
	}
	if err := b.store.CreateUser(ctx, u, hash); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			// The store's message names what is taken: the name, or the
			// email address when another creation won the race.
			return nil, err
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

func (b *Backend) nowMillis() int64 {
	if b.now == nil {
		return 0
	}
	return b.now().UnixMilli()
}

// ListUsers lists normal users; any signed-in user may.
func (b *Backend) ListUsers(ctx context.Context, p *latch.Principal, filter string, pg store.Page) (Page[latch.User], error) {
	if err := b.authorize(ctx, p, latch.Authenticated, latch.Resource{}); err != nil {
		return Page[latch.User]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.ListUsers(ctx, store.UserFilter{Text: filter}, pg)
	if err != nil {
		return Page[latch.User]{}, fmt.Errorf("list users: %w", err)
	}
	return pageOf(rows, pg), nil
}

// User returns the user with the given slug; any signed-in user may look.
func (b *Backend) User(ctx context.Context, p *latch.Principal, slug string) (*latch.User, error) {
	if err := b.authorize(ctx, p, latch.Authenticated, latch.Resource{}); err != nil {
		return nil, err
	}
	return b.store.UserBySlug(ctx, slug)
}

// DeleteUser deletes a user with every grant and credential of theirs.
// Only an administrator may, with an interactive credential, and not
// themselves.
func (b *Backend) DeleteUser(ctx context.Context, p *latch.Principal, name string) (*latch.User, error) {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, latch.Invalidf("The name parameter is required.")
	}
	u, err := b.store.UserByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if u.ID == p.UserID() {
		return nil, latch.Invalidf("You cannot delete yourself.")
	}
	if err := b.requireOutrank(ctx, p, u.ID); err != nil {
		return nil, err
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		// The user's tokens go with them: their secrets read as revoked.
		toks, err := tx.ListTokens(ctx, store.TokenOwner{UserID: u.ID}, store.Page{})
		if err != nil {
			return err
		}
		for i := range toks {
			if err := b.recordRevoked(ctx, tx, &toks[i]); err != nil {
				return err
			}
		}
		return tx.DeleteUser(ctx, u.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("delete user: %w", err)
	}
	b.userChanged(ctx, u.ID)
	b.record(ctx, p, audit.UserDeleted, "user:"+u.Name, "")
	return u, nil
}

// requireOutrank refuses when the target holds a higher global permission
// than the actor: an ADMIN may not delete or demote a SYS_ADMIN.
func (b *Backend) requireOutrank(ctx context.Context, p *latch.Principal, target int64) error {
	theirs, err := b.store.Access(ctx, target, latch.Resource{})
	if err != nil {
		return err
	}
	// The actor needs the target's global permission, asked of the one
	// decision like any other.
	return b.authorize(ctx, p, globalAction(theirs.Global), latch.Resource{})
}

// globalAction is the action that needs global level l.
func globalAction(l latch.Level) latch.Action {
	switch {
	case l >= latch.LevelSysAdmin:
		return latch.SysAdminInstance
	case l >= latch.LevelAdmin:
		return latch.AdminInstance
	case l >= latch.LevelWrite:
		return latch.CreateProject
	}
	return latch.Authenticated
}

// guardGroup refuses changes to a group that holds a global permission
// above the actor's: an ADMIN could otherwise join a SYS_ADMIN group, or
// demote its members by emptying or deleting it.
func (b *Backend) guardGroup(ctx context.Context, tx store.Store, p *latch.Principal, g *latch.Group) error {
	perm, err := tx.DirectPermission(ctx, latch.Resource{}, store.Subject{GroupID: g.ID})
	if err != nil {
		return err
	}
	if perm == "" {
		return nil
	}
	return b.authorize(ctx, p, globalAction(perm.Level()), latch.Resource{})
}

// CreateGroup creates a group (global ADMIN).
func (b *Backend) CreateGroup(ctx context.Context, p *latch.Principal, name string) (*latch.Group, error) {
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 {
		return nil, latch.Invalidf("A group name of 1 to 255 characters is required.")
	}
	if !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return nil, latch.Invalidf("The group name contains characters that are not allowed.")
	}
	g := &latch.Group{Name: name}
	if err := b.store.CreateGroup(ctx, g); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return nil, latch.Errorf(latch.ErrConflict, "A group named %s already exists.", name)
		}
		return nil, fmt.Errorf("create group: %w", err)
	}
	b.record(ctx, p, audit.GroupChanged, "group:"+g.Name, "created")
	return g, nil
}

// ListGroups lists groups (global ADMIN).
func (b *Backend) ListGroups(ctx context.Context, p *latch.Principal, filter string, pg store.Page) (Page[latch.Group], error) {
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return Page[latch.Group]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.ListGroups(ctx, filter, pg)
	if err != nil {
		return Page[latch.Group]{}, fmt.Errorf("list groups: %w", err)
	}
	return pageOf(rows, pg), nil
}

// DeleteGroup deletes a group and its grants (global ADMIN).
func (b *Backend) DeleteGroup(ctx context.Context, p *latch.Principal, name string) (*latch.Group, error) {
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, latch.Invalidf("The name parameter is required.")
	}
	g, err := b.store.GroupByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := b.guardGroup(ctx, b.store, p, g); err != nil {
		return nil, err
	}
	if err := b.store.DeleteGroup(ctx, g.ID); err != nil {
		return nil, fmt.Errorf("delete group: %w", err)
	}
	b.userChanged(ctx, 0)
	b.record(ctx, p, audit.GroupChanged, "group:"+g.Name, "deleted")
	return g, nil
}

// AddUsersToGroup adds users to a group, all or none (global ADMIN).
func (b *Backend) AddUsersToGroup(ctx context.Context, p *latch.Principal, group string, users []string) error {
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return err
	}
	if group == "" || len(users) == 0 {
		return latch.Invalidf("A group and at least one user are required.")
	}
	err := b.store.WithTx(ctx, func(tx store.Store) error {
		g, err := tx.GroupByName(ctx, group)
		if err != nil {
			return err
		}
		if err := b.guardGroup(ctx, tx, p, g); err != nil {
			return err
		}
		for _, name := range users {
			u, err := tx.UserByName(ctx, name)
			if err != nil {
				return err
			}
			if err := tx.AddGroupMember(ctx, g.ID, u.ID); err != nil && !errors.Is(err, latch.ErrConflict) {
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.userChanged(ctx, 0)
		b.record(ctx, p, audit.GroupChanged, "group:"+group, "added "+strings.Join(users, ", "))
	}
	return err
}

// RemoveUserFromGroup removes one user from a group (global ADMIN).
func (b *Backend) RemoveUserFromGroup(ctx context.Context, p *latch.Principal, group, user string) error {
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return err
	}
	g, err := b.store.GroupByName(ctx, group)
	if err != nil {
		return err
	}
	if err := b.guardGroup(ctx, b.store, p, g); err != nil {
		return err
	}
	u, err := b.store.UserByName(ctx, user)
	if err != nil {
		return err
	}
	if err := b.store.RemoveGroupMember(ctx, g.ID, u.ID); err != nil {
		return err
	}
	b.userChanged(ctx, u.ID)
	b.record(ctx, p, audit.GroupChanged, "group:"+g.Name, "removed "+u.Name)
	return nil
}
