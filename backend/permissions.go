package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/store"
)

// PermTarget names where a permission is granted: the instance (global), a
// project, or a repository.
type PermTarget struct {
	ProjectKey string // "" for global
	RepoSlug   string // "" for project or global
}

func (t PermTarget) scope() latch.Scope {
	switch {
	case t.RepoSlug != "":
		return latch.ScopeRepo
	case t.ProjectKey != "":
		return latch.ScopeProject
	}
	return latch.ScopeGlobal
}

// auditTarget names t in audit events: "global", or resourceTarget's.
func (t PermTarget) auditTarget() string {
	switch t.scope() {
	case latch.ScopeRepo:
		return resourceTarget(t.ProjectKey, t.RepoSlug)
	case latch.ScopeProject:
		return resourceTarget(t.ProjectKey, "")
	}
	return "global"
}

// resourceTarget names a project (slug "") or repository in audit events:
// "project:KEY" or "repository:KEY/slug".
func resourceTarget(projectKey, slug string) string {
	if slug != "" {
		return "repository:" + strings.ToUpper(projectKey) + "/" + slug
	}
	return "project:" + strings.ToUpper(projectKey)
}

// resolveTarget finds the resource and authorizes administering its
// permissions.
func (b *Backend) resolveTarget(ctx context.Context, p *latch.Principal, t PermTarget) (latch.Resource, error) {
	switch t.scope() {
	case latch.ScopeRepo:
		repo, err := b.lookupRepo(ctx, t.ProjectKey, t.RepoSlug)
		if err != nil {
			return latch.Resource{}, err
		}
		r := resourceOf(repo)
		return r, b.authorize(ctx, p, latch.AdminRepo, r)
	case latch.ScopeProject:
		proj, err := b.store.ProjectByKey(ctx, t.ProjectKey)
		if err != nil {
			return latch.Resource{}, err
		}
		r := latch.Resource{ProjectID: proj.ID}
		return r, b.authorize(ctx, p, latch.AdminProject, r)
	}
	return latch.Resource{}, b.authorize(ctx, p, latch.AdminInstance, latch.Resource{})
}

// UserPermissions lists the users granted a permission on t.
func (b *Backend) UserPermissions(ctx context.Context, p *latch.Principal, t PermTarget, filter string, pg store.Page) (Page[store.UserGrant], error) {
	r, err := b.resolveTarget(ctx, p, t)
	if err != nil {
		return Page[store.UserGrant]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.UserGrants(ctx, r, filter, pg)
	if err != nil {
		return Page[store.UserGrant]{}, fmt.Errorf("list user permissions: %w", err)
	}
	return pageOf(rows, pg), nil
}

// GroupPermissions lists the groups granted a permission on t.
func (b *Backend) GroupPermissions(ctx context.Context, p *latch.Principal, t PermTarget, filter string, pg store.Page) (Page[store.GroupGrant], error) {
	r, err := b.resolveTarget(ctx, p, t)
	if err != nil {
		return Page[store.GroupGrant]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.GroupGrants(ctx, r, filter, pg)
	if err != nil {
		return Page[store.GroupGrant]{}, fmt.Errorf("list group permissions: %w", err)
	}
	return pageOf(rows, pg), nil
}

// SubjectKind says whether permission names refer to users or groups.
type SubjectKind int

// Subject kinds.
const (
	Users SubjectKind = iota
	Groups
)

// String names the kind in audit events.
func (k SubjectKind) String() string {
	if k == Groups {
		return "group"
	}
	return "user"
}

// SetPermission grants perm on t to each named user or group, all or none.
func (b *Backend) SetPermission(ctx context.Context, p *latch.Principal, t PermTarget, kind SubjectKind, names []string, perm string) error {
	if len(names) == 0 {
		return latch.Invalidf("At least one name is required.")
	}
	if perm == "" {
		return latch.Invalidf("A permission is required.")
	}
	pm, err := latch.ParsePermission(perm, t.scope())
	if err != nil {
		return err
	}
	r, err := b.resolveTarget(ctx, p, t)
	if err != nil {
		return err
	}
	if t.scope() == latch.ScopeGlobal && pm == latch.SysAdmin {
		if err := b.authorize(ctx, p, latch.SysAdminInstance, latch.Resource{}); err != nil {
			return err
		}
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		for _, name := range names {
			s, err := subjectOf(ctx, tx, kind, name)
			if err != nil {
				return err
			}
			if t.scope() == latch.ScopeGlobal {
				if err := b.guardGlobal(ctx, tx, p, s); err != nil {
					return err
				}
			}
			if err := tx.SetPermission(ctx, r, s, pm); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.userChanged(ctx, 0)
		b.record(ctx, p, audit.PermissionChanged, t.auditTarget(), fmt.Sprintf("%s %s: %s", kind, strings.Join(names, ", "), pm))
	}
	return err
}

// RevokePermission removes the permission of the named user or group on t.
func (b *Backend) RevokePermission(ctx context.Context, p *latch.Principal, t PermTarget, kind SubjectKind, name string) error {
	if name == "" {
		return latch.Invalidf("A name is required.")
	}
	r, err := b.resolveTarget(ctx, p, t)
	if err != nil {
		return err
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		s, err := subjectOf(ctx, tx, kind, name)
		if err != nil {
			return err
		}
		if t.scope() == latch.ScopeGlobal {
			if err := b.guardGlobal(ctx, tx, p, s); err != nil {
				return err
			}
		}
		return tx.RevokePermission(ctx, r, s)
	})
	if err == nil {
		b.userChanged(ctx, 0)
		b.record(ctx, p, audit.PermissionChanged, t.auditTarget(), fmt.Sprintf("%s %s: revoked", kind, name))
	}
	return err
}

// guardGlobal stops administrators from changing their own global permission
// (and so locking themselves out) and ADMINs from touching SYS_ADMINs.
func (b *Backend) guardGlobal(ctx context.Context, tx store.Store, p *latch.Principal, s store.Subject) error {
	if s.UserID != 0 && s.UserID == p.UserID() {
		return latch.Errorf(latch.ErrConflict, "You cannot change your own global permission.")
	}
	current, err := tx.DirectPermission(ctx, latch.Resource{}, s)
	if err != nil {
		return err
	}
	if current == latch.SysAdmin {
		return b.authorize(ctx, p, latch.SysAdminInstance, latch.Resource{})
	}
	return nil
}

func subjectOf(ctx context.Context, tx store.Store, kind SubjectKind, name string) (store.Subject, error) {
	if kind == Groups {
		g, err := tx.GroupByName(ctx, name)
		if err != nil {
			return store.Subject{}, err
		}
		return store.Subject{GroupID: g.ID}, nil
	}
	u, err := tx.UserByName(ctx, name)
	if err != nil {
		return store.Subject{}, err
	}
	return store.Subject{UserID: u.ID}, nil
}
