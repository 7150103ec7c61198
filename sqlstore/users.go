package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const userCols = "u.id, u.name, u.slug, u.display_name, u.email, u.active, u.type, u.created_at"

type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (*latch.User, error) {
	var u latch.User
	dest, finish := userDest(&u)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	finish()
	return &u, nil
}

// userDest returns the scan destinations of userCols and a function that
// completes u once they are scanned, so that a row joining users with other
// tables can be scanned in one call.
func userDest(u *latch.User) (dest []any, finish func()) {
	var typ string
	return []any{&u.ID, &u.Name, &u.Slug, &u.DisplayName, &u.Email, &u.Active, &typ, &u.CreatedAt},
		func() { u.Type = latch.UserType(typ) }
}

// normalizeUser fills the defaults of a user about to be written.
func normalizeUser(u *latch.User) error {
	if strings.TrimSpace(u.Name) == "" {
		return latch.Invalidf("The user name is required.")
	}
	if u.Slug == "" {
		u.Slug = latch.UserSlug(u.Name)
	}
	u.Slug = strings.ToLower(u.Slug)
	if u.Type == "" {
		u.Type = latch.UserNormal
	}
	return nil
}

// CreateUser stores u with passwordHash, filling u.ID, and u.Slug, u.Type
// and u.CreatedAt when unset. A name, slug or email address (compared
// case-insensitively) already taken is a conflict.
func (s *Store) CreateUser(ctx context.Context, u *latch.User, passwordHash string) error {
	if err := normalizeUser(u); err != nil {
		return err
	}
	if u.CreatedAt == 0 {
		u.CreatedAt = time.Now().UnixMilli()
	}
	err := s.q.QueryRowContext(ctx, `INSERT INTO users
		(name, name_lower, slug, display_name, display_name_lower, email, email_lower, active, type, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT DO NOTHING RETURNING id`,
		u.Name, strings.ToLower(u.Name), u.Slug, u.DisplayName, strings.ToLower(u.DisplayName),
		u.Email, strings.ToLower(u.Email), u.Active, string(u.Type), passwordHash, u.CreatedAt,
	).Scan(&u.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return s.userConflict(ctx, u)
	}
	return s.wrap(err, "create user %q", u.Name)
}

// userConflict says which of u's unique values another user holds: the name
// (or the slug made from it), or else the email address.
func (s *Store) userConflict(ctx context.Context, u *latch.User) error {
	taken, err := s.exists(ctx, "SELECT 1 FROM users WHERE (name = $1 OR slug = $2) AND id <> $3", u.Name, u.Slug, u.ID)
	if err != nil {
		return s.wrap(err, "user %q", u.Name)
	}
	if taken {
		return duplicate("A user with the name %q already exists.", u.Name)
	}
	return duplicate("A user with email address %s already exists.", u.Email)
}

func (s *Store) userWhere(ctx context.Context, notFound error, where string, args ...any) (*latch.User, error) {
	u, err := scanUser(s.q.QueryRowContext(ctx, "SELECT "+userCols+" FROM users u WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, s.wrap(err, "read user")
	}
	return u, nil
}

// UserByID returns the user with id.
func (s *Store) UserByID(ctx context.Context, id int64) (*latch.User, error) {
	return s.userWhere(ctx, noSuchUserID(id), "u.id = $1", id)
}

// UserByName returns the user whose name is exactly name.
func (s *Store) UserByName(ctx context.Context, name string) (*latch.User, error) {
	return s.userWhere(ctx, latch.NoSuchUser(name), "u.name = $1", name)
}

// UserBySlug returns the user with slug, compared case-insensitively.
func (s *Store) UserBySlug(ctx context.Context, slug string) (*latch.User, error) {
	return s.userWhere(ctx, latch.NoSuchUser(slug), "u.slug = $1", strings.ToLower(slug))
}

// UserByNameOrEmail returns the user named login or, failing that, the
// (oldest) user whose email equals login case-insensitively.
func (s *Store) UserByNameOrEmail(ctx context.Context, login string) (*latch.User, error) {
	return s.userWhere(ctx, latch.NoSuchUser(login),
		"u.name = $1 OR (u.email_lower = $2 AND $2 <> '') ORDER BY CASE WHEN u.name = $1 THEN 0 ELSE 1 END, u.id LIMIT 1",
		login, strings.ToLower(login))
}

// userTextFilter returns a condition matching f's text against name,
// display name or email, case-insensitively, with its argument appended.
func userTextFilter(text string, args []any) (string, []any) {
	args = append(args, likePattern(text))
	n := len(args)
	return "(u.name_lower LIKE $" + itoa(n) + ` ESCAPE '\' OR u.display_name_lower LIKE $` + itoa(n) +
		` ESCAPE '\' OR u.email_lower LIKE $` + itoa(n) + ` ESCAPE '\')`, args
}

// ListUsers lists users ordered by name (case-insensitively), at most
// p.Limit+1 of them.
func (s *Store) ListUsers(ctx context.Context, f store.UserFilter, p store.Page) ([]latch.User, error) {
	var conds []string
	var args []any
	if f.Text != "" {
		var c string
		c, args = userTextFilter(f.Text, args)
		conds = append(conds, c)
	}
	if !f.IncludeService {
		args = append(args, string(latch.UserService))
		conds = append(conds, "u.type <> $"+itoa(len(args)))
	}
	q := "SELECT " + userCols + " FROM users u" + whereAnd(conds) + " ORDER BY u.name_lower, u.name, u.id"
	q, args = page(q, args, p)
	return s.queryUsers(ctx, "list users", q, args...)
}

func (s *Store) queryUsers(ctx context.Context, what, q string, args ...any) ([]latch.User, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "%s", what)
	}
	defer rows.Close()
	var us []latch.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap(err, "%s", what)
		}
		us = append(us, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "%s", what)
	}
	return us, nil
}

// UpdateUser writes u's name, slug, display name, email, active flag and
// type. A name, slug or email address taken by another user is a conflict.
func (s *Store) UpdateUser(ctx context.Context, u *latch.User) error {
	if err := normalizeUser(u); err != nil {
		return err
	}
	res, err := s.q.ExecContext(ctx, `UPDATE users SET
		name = $2, name_lower = $3, slug = $4, display_name = $5, display_name_lower = $6,
		email = $7, email_lower = $8, active = $9, type = $10
		WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM users o
			WHERE (o.name = $2 OR o.slug = $4 OR (o.email_lower = $8 AND $8 <> '')) AND o.id <> $1)`,
		u.ID, u.Name, strings.ToLower(u.Name), u.Slug, u.DisplayName, strings.ToLower(u.DisplayName),
		u.Email, strings.ToLower(u.Email), u.Active, string(u.Type))
	if err != nil {
		return s.wrap(err, "update user %d", u.ID)
	}
	n, err := rowsAffected(res)
	if err != nil || n > 0 {
		return s.wrap(err, "update user %d", u.ID)
	}
	if ok, err := s.exists(ctx, "SELECT 1 FROM users WHERE id = $1", u.ID); err != nil {
		return s.wrap(err, "update user %d", u.ID)
	} else if !ok {
		return noSuchUserID(u.ID)
	}
	return s.userConflict(ctx, u)
}

// DeleteUser deletes a user with their group memberships and grants.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.atomic(ctx, func(s *Store) error {
		res, err := s.q.ExecContext(ctx, "DELETE FROM users WHERE id = $1", id)
		if err != nil {
			return s.wrap(err, "delete user %d", id)
		}
		if n, err := rowsAffected(res); err != nil {
			return s.wrap(err, "delete user %d", id)
		} else if n == 0 {
			return noSuchUserID(id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM group_members WHERE user_id = $1", id); err != nil {
			return s.wrap(err, "delete user %d: memberships", id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM grants WHERE user_id = $1", id); err != nil {
			return s.wrap(err, "delete user %d: grants", id)
		}
		return nil
	})
}

// PasswordHash returns the user's stored password hash ("" for none).
func (s *Store) PasswordHash(ctx context.Context, userID int64) (string, error) {
	var h string
	err := s.q.QueryRowContext(ctx, "SELECT password_hash FROM users WHERE id = $1", userID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", noSuchUserID(userID)
	}
	return h, s.wrap(err, "read password hash of user %d", userID)
}

// SetPasswordHash replaces the user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	res, err := s.q.ExecContext(ctx, "UPDATE users SET password_hash = $2 WHERE id = $1", userID, hash)
	if err != nil {
		return s.wrap(err, "set password hash of user %d", userID)
	}
	if n, err := rowsAffected(res); err != nil {
		return s.wrap(err, "set password hash of user %d", userID)
	} else if n == 0 {
		return noSuchUserID(userID)
	}
	return nil
}

// CountUsers counts every user, service users included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	return n, s.wrap(err, "count users")
}
