package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// scopeOf returns the scope of the permissions that apply to r.
func scopeOf(r latch.Resource) latch.Scope {
	switch {
	case r.RepoID != 0:
		return latch.ScopeRepo
	case r.ProjectID != 0:
		return latch.ScopeProject
	}
	return latch.ScopeGlobal
}

// resourceCond returns the condition selecting the grants g on exactly r.
func resourceCond(r latch.Resource, args []any) (string, []any) {
	switch scopeOf(r) {
	case latch.ScopeRepo:
		args = append(args, r.RepoID)
		return "g.repo_id = $" + itoa(len(args)), args
	case latch.ScopeProject:
		args = append(args, r.ProjectID)
		return "g.project_id = $" + itoa(len(args)) + " AND g.repo_id = 0", args
	}
	return "g.project_id = 0 AND g.repo_id = 0", args
}

// subjectCond returns the condition selecting the grants g to exactly sub.
func subjectCond(sub store.Subject, args []any) (string, []any, error) {
	switch {
	case sub.UserID != 0 && sub.GroupID == 0:
		args = append(args, sub.UserID)
		return "g.user_id = $" + itoa(len(args)) + " AND g.group_id = 0", args, nil
	case sub.GroupID != 0 && sub.UserID == 0:
		args = append(args, sub.GroupID)
		return "g.group_id = $" + itoa(len(args)) + " AND g.user_id = 0", args, nil
	}
	return "", nil, latch.Invalidf("A permission is granted to exactly one user or group.")
}

// SetPermission grants p on r to sub, replacing what sub held on exactly r.
// p must belong to r's scope; the subject and the resource must exist.
func (s *Store) SetPermission(ctx context.Context, r latch.Resource, sub store.Subject, p latch.Permission) error {
	if _, _, err := subjectCond(sub, nil); err != nil {
		return err
	}
	if _, err := latch.ParsePermission(string(p), scopeOf(r)); err != nil {
		return err
	}
	return s.atomic(ctx, func(s *Store) error {
		if sub.UserID != 0 {
			if ok, err := s.exists(ctx, "SELECT 1 FROM users WHERE id = $1", sub.UserID); err != nil {
				return s.wrap(err, "read user %d", sub.UserID)
			} else if !ok {
				return noSuchUserID(sub.UserID)
			}
		} else {
			if ok, err := s.exists(ctx, "SELECT 1 FROM groups WHERE id = $1", sub.GroupID); err != nil {
				return s.wrap(err, "read group %d", sub.GroupID)
			} else if !ok {
				return noSuchGroupID(sub.GroupID)
			}
		}
		projectID := r.ProjectID
		switch scopeOf(r) {
		case latch.ScopeRepo:
			// A repository grant carries its repository's project.
			err := s.q.QueryRowContext(ctx, "SELECT project_id FROM repos WHERE id = $1", r.RepoID).Scan(&projectID)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && r.ProjectID != 0 && r.ProjectID != projectID) {
				return noSuchRepoID(r.RepoID)
			}
			if err != nil {
				return s.wrap(err, "read repository %d", r.RepoID)
			}
		case latch.ScopeProject:
			if ok, err := s.exists(ctx, "SELECT 1 FROM projects WHERE id = $1", r.ProjectID); err != nil {
				return s.wrap(err, "read project %d", r.ProjectID)
			} else if !ok {
				return noSuchProjectID(r.ProjectID)
			}
		}
		_, err := s.q.ExecContext(ctx, `INSERT INTO grants (project_id, repo_id, user_id, group_id, permission, level)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (project_id, repo_id, user_id, group_id) DO UPDATE SET permission = excluded.permission, level = excluded.level`,
			projectID, r.RepoID, sub.UserID, sub.GroupID, string(p), int(p.Level()))
		return s.wrap(err, "grant %s on %+v to %+v", p, r, sub)
	})
}

// RevokePermission removes what sub was granted on exactly r; revoking
// nothing is not an error.
func (s *Store) RevokePermission(ctx context.Context, r latch.Resource, sub store.Subject) error {
	rc, args := resourceCond(r, nil)
	sc, args, err := subjectCond(sub, args)
	if err != nil {
		return err
	}
	_, err = s.q.ExecContext(ctx, "DELETE FROM grants AS g WHERE "+rc+" AND "+sc, args...)
	return s.wrap(err, "revoke permission on %+v from %+v", r, sub)
}

// UserGrants lists the users granted a permission on exactly r, with it,
// ordered by user name and filtered like ListUsers, at most p.Limit+1 of
// them.
func (s *Store) UserGrants(ctx context.Context, r latch.Resource, filter string, p store.Page) ([]store.UserGrant, error) {
	rc, args := resourceCond(r, nil)
	conds := []string{rc, "g.user_id <> 0"}
	if filter != "" {
		var c string
		c, args = userTextFilter(filter, args)
		conds = append(conds, c)
	}
	q, args := page("SELECT "+userCols+", g.permission FROM grants g JOIN users u ON u.id = g.user_id"+
		whereAnd(conds)+" ORDER BY u.name_lower, u.name, u.id", args, p)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list user grants on %+v", r)
	}
	defer rows.Close()
	var gs []store.UserGrant
	for rows.Next() {
		var g store.UserGrant
		var typ, perm string
		if err := rows.Scan(&g.User.ID, &g.User.Name, &g.User.Slug, &g.User.DisplayName, &g.User.Email,
			&g.User.Active, &typ, &g.User.CreatedAt, &perm); err != nil {
			return nil, s.wrap(err, "list user grants on %+v", r)
		}
		g.User.Type, g.Permission = latch.UserType(typ), latch.Permission(perm)
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "list user grants on %+v", r)
	}
	return gs, nil
}

// GroupGrants lists the groups granted a permission on exactly r, with it,
// ordered by group name and filtered by a case-insensitive substring of it,
// at most p.Limit+1 of them.
func (s *Store) GroupGrants(ctx context.Context, r latch.Resource, filter string, p store.Page) ([]store.GroupGrant, error) {
	rc, args := resourceCond(r, nil)
	conds := []string{rc, "g.group_id <> 0"}
	if filter != "" {
		args = append(args, likePattern(filter))
		conds = append(conds, `gr.name_lower LIKE $`+itoa(len(args))+` ESCAPE '\'`)
	}
	q, args := page("SELECT gr.id, gr.name, g.permission FROM grants g JOIN groups gr ON gr.id = g.group_id"+
		whereAnd(conds)+" ORDER BY gr.name_lower, gr.id", args, p)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list group grants on %+v", r)
	}
	defer rows.Close()
	var gs []store.GroupGrant
	for rows.Next() {
		var g store.GroupGrant
		var perm string
		if err := rows.Scan(&g.Group.ID, &g.Group.Name, &perm); err != nil {
			return nil, s.wrap(err, "list group grants on %+v", r)
		}
		g.Permission = latch.Permission(perm)
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "list group grants on %+v", r)
	}
	return gs, nil
}

// DirectPermission returns the permission granted on exactly r to exactly
// sub (not through a group, project or global grant), or "".
func (s *Store) DirectPermission(ctx context.Context, r latch.Resource, sub store.Subject) (latch.Permission, error) {
	rc, args := resourceCond(r, nil)
	sc, args, err := subjectCond(sub, args)
	if err != nil {
		return "", err
	}
	var perm string
	err = s.q.QueryRowContext(ctx, "SELECT g.permission FROM grants g WHERE "+rc+" AND "+sc, args...).Scan(&perm)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", s.wrap(err, "read permission on %+v of %+v", r, sub)
	}
	return latch.Permission(perm), nil
}
