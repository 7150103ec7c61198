package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const tokenCols = `id, kind, name, user_id, project_id, repo_id, permissions, allowed_cidrs, digest, prev_digest,
	prev_expires_at, created_at, expires_at, last_authenticated, last_address, created_by`

func scanToken(sc scanner) (*store.AccessToken, error) {
	var t store.AccessToken
	dest, finish := tokenDest(&t)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	finish()
	return &t, nil
}

// tokenDest returns the scan destinations of tokenCols and a function that
// completes t once they are scanned (see userDest).
func tokenDest(t *store.AccessToken) (dest []any, finish func()) {
	var kind, perms, cidrs string
	return []any{&t.ID, &kind, &t.Name, &t.UserID, &t.ProjectID, &t.RepoID, &perms, &cidrs, &t.Digest, &t.PrevDigest,
			&t.PrevExpiresAt, &t.CreatedAt, &t.ExpiresAt, &t.LastAuthenticated, &t.LastAddress, &t.CreatedBy},
		func() {
			t.Kind = latch.CredentialKind(kind)
			for _, p := range splitList(perms) {
				t.Permissions = append(t.Permissions, latch.Permission(p))
			}
			t.AllowedCIDRs = splitList(cidrs)
		}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func joinPerms(ps []latch.Permission) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// nullBytes stores an empty digest as NULL, so that the unique index on
// prev_digest admits any number of tokens without one.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func noSuchToken(id string) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("No access token with id %s exists.", id),
		Exception: "com.atlassian.bitbucket.auth.NoSuchAccessTokenException"}
}

// CreateToken stores t. Its ID is chosen by the caller; an ID or digest
// already in use is a conflict.
func (s *Store) CreateToken(ctx context.Context, t *store.AccessToken) error {
	if t.ID == "" || len(t.Digest) == 0 {
		return latch.Invalidf("A token needs an id and a digest.")
	}
	res, err := s.q.ExecContext(ctx, `INSERT INTO access_tokens (`+tokenCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING`,
		t.ID, string(t.Kind), t.Name, t.UserID, t.ProjectID, t.RepoID, joinPerms(t.Permissions), strings.Join(t.AllowedCIDRs, ","),
		t.Digest, nullBytes(t.PrevDigest), t.PrevExpiresAt, t.CreatedAt, t.ExpiresAt, t.LastAuthenticated, t.LastAddress, t.CreatedBy)
	if err != nil {
		return s.wrap(err, "create token")
	}
	n, err := rowsAffected(res)
	if err != nil {
		return s.wrap(err, "create token")
	}
	if n == 0 {
		return duplicate("An access token with id %s already exists.", t.ID)
	}
	return nil
}

func (s *Store) tokenWhere(ctx context.Context, notFound error, where string, args ...any) (*store.AccessToken, error) {
	t, err := scanToken(s.q.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM access_tokens WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, s.wrap(err, "read token")
	}
	return t, nil
}

// TokenByDigest finds the token whose current or previous digest is d.
func (s *Store) TokenByDigest(ctx context.Context, d []byte) (*store.AccessToken, error) {
	return s.tokenWhere(ctx, latch.Errorf(latch.ErrNotFound, "No such access token."), "digest = $1 OR prev_digest = $1", d)
}

// TokenAuthByDigest reads the token whose current or previous digest is d,
// its owner and the owner's group names with one query: a row per group
// (one with a NULL group name when there is none).
func (s *Store) TokenAuthByDigest(ctx context.Context, d []byte) (*store.TokenAuth, error) {
	rows, err := s.q.QueryContext(ctx, tokenAuthQuery, d)
	if err != nil {
		return nil, s.wrap(err, "read token")
	}
	defer rows.Close()
	var a *store.TokenAuth
	for rows.Next() {
		var row store.TokenAuth
		var group sql.NullString
		td, tokenDone := tokenDest(&row.Token)
		ud, userDone := userDest(&row.Owner)
		if err := rows.Scan(append(append(td, ud...), &group)...); err != nil {
			return nil, s.wrap(err, "read token")
		}
		if a == nil {
			tokenDone()
			userDone()
			a = &row
		}
		if group.Valid {
			a.Groups = append(a.Groups, group.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "read token")
	}
	if a == nil {
		return nil, latch.Errorf(latch.ErrNotFound, "No such access token.")
	}
	slices.Sort(a.Groups)
	return a, nil
}

var tokenAuthQuery = `SELECT ` + tokenColsAs("t") + `, ` + userCols + `, g.name
	FROM access_tokens t
	JOIN users u ON u.id = t.user_id
	LEFT JOIN group_members m ON m.user_id = u.id
	LEFT JOIN groups g ON g.id = m.group_id
	WHERE t.digest = $1 OR t.prev_digest = $1`

// tokenColsAs is tokenCols with each column qualified by alias.
func tokenColsAs(alias string) string {
	cols := strings.Split(tokenCols, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// TokenByID returns the token with id.
func (s *Store) TokenByID(ctx context.Context, id string) (*store.AccessToken, error) {
	return s.tokenWhere(ctx, noSuchToken(id), "id = $1", id)
}

// tokenOwnerWhere selects the tokens of exactly one owner.
func tokenOwnerWhere(o store.TokenOwner) (string, []any) {
	if o.UserID != 0 {
		return "user_id = $1 AND project_id = 0 AND repo_id = 0", []any{o.UserID}
	}
	return "project_id = $1 AND repo_id = $2 AND project_id <> 0", []any{o.ProjectID, o.RepoID}
}

// ListTokens lists the tokens of one owner, newest first.
func (s *Store) ListTokens(ctx context.Context, o store.TokenOwner, p store.Page) ([]store.AccessToken, error) {
	where, args := tokenOwnerWhere(o)
	q, args := page("SELECT "+tokenCols+" FROM access_tokens WHERE "+where+" ORDER BY created_at DESC, id", args, p)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list tokens")
	}
	defer rows.Close()
	var out []store.AccessToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, s.wrap(err, "list tokens")
		}
		out = append(out, *t)
	}
	return out, s.wrap(rows.Err(), "list tokens")
}

// LockOwner locks the owner's row for the rest of the transaction. A
// no-op update takes PostgreSQL's row lock portably (SQLite's transactions
// already hold the database's write lock).
func (s *Store) LockOwner(ctx context.Context, o store.TokenOwner) error {
	q, id := "UPDATE users SET id = id WHERE id = $1", o.UserID
	switch {
	case o.RepoID != 0:
		q, id = "UPDATE repos SET id = id WHERE id = $1", o.RepoID
	case o.UserID == 0:
		q, id = "UPDATE projects SET id = id WHERE id = $1", o.ProjectID
	}
	_, err := s.q.ExecContext(ctx, q, id)
	return s.wrap(err, "lock owner")
}

// CountTokens counts the tokens of one owner.
func (s *Store) CountTokens(ctx context.Context, o store.TokenOwner) (int, error) {
	where, args := tokenOwnerWhere(o)
	var n int
	err := s.q.QueryRowContext(ctx, "SELECT COUNT(*) FROM access_tokens WHERE "+where, args...).Scan(&n)
	return n, s.wrap(err, "count tokens")
}

// UpdateToken saves a token's name, permissions and address ranges.
func (s *Store) UpdateToken(ctx context.Context, t *store.AccessToken) error {
	res, err := s.q.ExecContext(ctx, `UPDATE access_tokens SET name = $2, permissions = $3, allowed_cidrs = $4 WHERE id = $1`,
		t.ID, t.Name, joinPerms(t.Permissions), strings.Join(t.AllowedCIDRs, ","))
	if err != nil {
		return s.wrap(err, "update token %s", t.ID)
	}
	if n, err := rowsAffected(res); err != nil || n == 0 {
		if err != nil {
			return s.wrap(err, "update token %s", t.ID)
		}
		return noSuchToken(t.ID)
	}
	return nil
}

// DeleteToken deletes a token; deleting a missing one is ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	res, err := s.q.ExecContext(ctx, "DELETE FROM access_tokens WHERE id = $1", id)
	if err != nil {
		return s.wrap(err, "delete token %s", id)
	}
	if n, err := rowsAffected(res); err != nil || n == 0 {
		if err != nil {
			return s.wrap(err, "delete token %s", id)
		}
		return noSuchToken(id)
	}
	return nil
}

// RecordTokenUse stores a batch of last uses in one transaction, never
// moving a token's last use back in time.
func (s *Store) RecordTokenUse(ctx context.Context, uses []store.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	return s.atomic(ctx, func(tx *Store) error {
		for _, u := range uses {
			if _, err := tx.q.ExecContext(ctx, `UPDATE access_tokens SET last_authenticated = $2, last_address = $3
				WHERE id = $1 AND last_authenticated < $2`, u.ID, u.At, u.Address); err != nil {
				return tx.wrap(err, "record token use")
			}
		}
		return nil
	})
}

// RecordTokenAddress remembers an address a token was used from; true the
// first time.
func (s *Store) RecordTokenAddress(ctx context.Context, id, address string, at int64) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO token_addresses (token_id, address, first_seen) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, id, address, at)
	if err != nil {
		if s.isForeignKeyViolation(err) {
			return false, nil // the token was deleted meanwhile
		}
		return false, s.wrap(err, "record token address")
	}
	n, err := rowsAffected(res)
	if err != nil {
		return false, s.wrap(err, "record token address")
	}
	return n == 1, nil
}

// RotateTokenDigest swaps a token's digest if it is still old.
func (s *Store) RotateTokenDigest(ctx context.Context, id string, old, next, prev []byte, prevExpiresAt int64) (bool, error) {
	res, err := s.q.ExecContext(ctx, `UPDATE access_tokens SET digest = $3, prev_digest = $4, prev_expires_at = $5
		WHERE id = $1 AND digest = $2`, id, old, next, nullBytes(prev), prevExpiresAt)
	if err != nil {
		return false, s.wrap(err, "rotate token %s", id)
	}
	n, err := rowsAffected(res)
	if err != nil {
		return false, s.wrap(err, "rotate token %s", id)
	}
	return n == 1, nil
}
