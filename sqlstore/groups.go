package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// CreateGroup stores g, filling g.ID. Group names are unique
// case-insensitively.
func (s *Store) CreateGroup(ctx context.Context, g *latch.Group) error {
	if strings.TrimSpace(g.Name) == "" {
		return latch.Invalidf("The group name is required.")
	}
	err := s.q.QueryRowContext(ctx,
		"INSERT INTO groups (name, name_lower) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id",
		g.Name, strings.ToLower(g.Name)).Scan(&g.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return duplicate("A group named %q already exists.", g.Name)
	}
	return s.wrap(err, "create group %q", g.Name)
}

// GroupByName returns the group named name, compared case-insensitively.
func (s *Store) GroupByName(ctx context.Context, name string) (*latch.Group, error) {
	var g latch.Group
	err := s.q.QueryRowContext(ctx, "SELECT id, name FROM groups WHERE name_lower = $1", strings.ToLower(name)).Scan(&g.ID, &g.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, latch.NoSuchGroup(name)
	}
	if err != nil {
		return nil, s.wrap(err, "read group %q", name)
	}
	return &g, nil
}

// ListGroups lists groups whose name contains filter case-insensitively,
// ordered by name, at most p.Limit+1 of them.
func (s *Store) ListGroups(ctx context.Context, filter string, p store.Page) ([]latch.Group, error) {
	q := "SELECT g.id, g.name FROM groups g"
	var args []any
	if filter != "" {
		args = append(args, likePattern(filter))
		q += ` WHERE g.name_lower LIKE $1 ESCAPE '\'`
	}
	q, args = page(q+" ORDER BY g.name_lower, g.id", args, p)
	return s.queryGroups(ctx, "list groups", q, args...)
}

func (s *Store) queryGroups(ctx context.Context, what, q string, args ...any) ([]latch.Group, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "%s", what)
	}
	defer rows.Close()
	var gs []latch.Group
	for rows.Next() {
		var g latch.Group
		if err := rows.Scan(&g.ID, &g.Name); err != nil {
			return nil, s.wrap(err, "%s", what)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "%s", what)
	}
	return gs, nil
}

// DeleteGroup deletes a group with its memberships and grants.
func (s *Store) DeleteGroup(ctx context.Context, id int64) error {
	return s.atomic(ctx, func(s *Store) error {
		res, err := s.q.ExecContext(ctx, "DELETE FROM groups WHERE id = $1", id)
		if err != nil {
			return s.wrap(err, "delete group %d", id)
		}
		if n, err := rowsAffected(res); err != nil {
			return s.wrap(err, "delete group %d", id)
		} else if n == 0 {
			return noSuchGroupID(id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = $1", id); err != nil {
			return s.wrap(err, "delete group %d: members", id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM grants WHERE group_id = $1", id); err != nil {
			return s.wrap(err, "delete group %d: grants", id)
		}
		return nil
	})
}

// checkMembership returns the not-found error for a missing group or user.
func (s *Store) checkMembership(ctx context.Context, groupID, userID int64) error {
	if ok, err := s.exists(ctx, "SELECT 1 FROM groups WHERE id = $1", groupID); err != nil {
		return s.wrap(err, "read group %d", groupID)
	} else if !ok {
		return noSuchGroupID(groupID)
	}
	if ok, err := s.exists(ctx, "SELECT 1 FROM users WHERE id = $1", userID); err != nil {
		return s.wrap(err, "read user %d", userID)
	} else if !ok {
		return noSuchUserID(userID)
	}
	return nil
}

// AddGroupMember adds a user to a group; adding a member again is not an
// error.
func (s *Store) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	res, err := s.q.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id)
		SELECT CAST($1 AS BIGINT), CAST($2 AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM groups WHERE id = $1) AND EXISTS (SELECT 1 FROM users WHERE id = $2)
		ON CONFLICT DO NOTHING`, groupID, userID)
	if err != nil {
		return s.wrap(err, "add user %d to group %d", userID, groupID)
	}
	if n, err := rowsAffected(res); err != nil || n > 0 {
		return s.wrap(err, "add user %d to group %d", userID, groupID)
	}
	return s.checkMembership(ctx, groupID, userID)
}

// RemoveGroupMember removes a user from a group; removing a non-member is
// not an error, but a missing group or user is.
func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	res, err := s.q.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2", groupID, userID)
	if err != nil {
		return s.wrap(err, "remove user %d from group %d", userID, groupID)
	}
	if n, err := rowsAffected(res); err != nil || n > 0 {
		return s.wrap(err, "remove user %d from group %d", userID, groupID)
	}
	return s.checkMembership(ctx, groupID, userID)
}

// GroupMembers lists a group's members ordered by name, at most p.Limit+1
// of them.
func (s *Store) GroupMembers(ctx context.Context, groupID int64, p store.Page) ([]latch.User, error) {
	q, args := page("SELECT "+userCols+" FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 ORDER BY u.name_lower, u.name, u.id",
		[]any{groupID}, p)
	us, err := s.queryUsers(ctx, "list group members", q, args...)
	if err != nil || len(us) > 0 {
		return us, err
	}
	if ok, err := s.exists(ctx, "SELECT 1 FROM groups WHERE id = $1", groupID); err != nil {
		return nil, s.wrap(err, "read group %d", groupID)
	} else if !ok {
		return nil, noSuchGroupID(groupID)
	}
	return nil, nil
}

// UserGroups lists the groups a user belongs to, ordered by name.
func (s *Store) UserGroups(ctx context.Context, userID int64) ([]latch.Group, error) {
	gs, err := s.queryGroups(ctx, "list groups of user",
		"SELECT g.id, g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1 ORDER BY g.name_lower, g.id", userID)
	if err != nil || len(gs) > 0 {
		return gs, err
	}
	if ok, err := s.exists(ctx, "SELECT 1 FROM users WHERE id = $1", userID); err != nil {
		return nil, s.wrap(err, "read user %d", userID)
	} else if !ok {
		return nil, noSuchUserID(userID)
	}
	return nil, nil
}
