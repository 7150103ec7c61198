package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const keyCols = `k.id, COALESCE(k.user_id, 0), k.fingerprint, k.text, k.label, k.algorithm, k.bits, k.created_at, k.created_by,
	k.last_authenticated, k.expires_at`

func scanKey(sc scanner) (*store.SSHKey, error) {
	var k store.SSHKey
	if err := sc.Scan(keyDest(&k)...); err != nil {
		return nil, err
	}
	return &k, nil
}

// keyDest returns the scan destinations of keyCols.
func keyDest(k *store.SSHKey) []any {
	return []any{&k.ID, &k.UserID, &k.Fingerprint, &k.Text, &k.Label, &k.Algorithm, &k.Bits, &k.CreatedAt, &k.CreatedBy,
		&k.LastAuthenticated, &k.ExpiresAt}
}

func noSuchKey(id int64) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("No SSH key with id %d exists.", id),
		Exception: "com.atlassian.bitbucket.ssh.NoSuchSshKeyException"}
}

// nullID stores 0 as NULL, for optional references.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// CreateKey stores k, filling k.ID; a fingerprint already stored is a conflict.
func (s *Store) CreateKey(ctx context.Context, k *store.SSHKey) error {
	if k.Fingerprint == "" || k.Text == "" {
		return latch.Invalidf("An SSH key needs its text and fingerprint.")
	}
	err := s.q.QueryRowContext(ctx, `INSERT INTO ssh_keys
		(user_id, fingerprint, text, label, label_lower, algorithm, bits, created_at, created_by, last_authenticated, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING RETURNING id`,
		nullID(k.UserID), k.Fingerprint, k.Text, k.Label, strings.ToLower(k.Label), k.Algorithm, k.Bits, k.CreatedAt, k.CreatedBy,
		k.LastAuthenticated, k.ExpiresAt).Scan(&k.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return duplicate("The SSH key already exists on the system.")
	}
	return s.wrap(err, "create SSH key")
}

func (s *Store) keyWhere(ctx context.Context, notFound error, where string, args ...any) (*store.SSHKey, error) {
	k, err := scanKey(s.q.QueryRowContext(ctx, "SELECT "+keyCols+" FROM ssh_keys k WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, s.wrap(err, "read SSH key")
	}
	return k, nil
}

// KeyByID returns the key with id.
func (s *Store) KeyByID(ctx context.Context, id int64) (*store.SSHKey, error) {
	return s.keyWhere(ctx, noSuchKey(id), "k.id = $1", id)
}

// KeyByFingerprint returns the key with fingerprint.
func (s *Store) KeyByFingerprint(ctx context.Context, fingerprint string) (*store.SSHKey, error) {
	return s.keyWhere(ctx, latch.Errorf(latch.ErrNotFound, "No such SSH key."), "k.fingerprint = $1", fingerprint)
}

// labelPrefix returns a LIKE pattern matching labels that start with text.
func labelPrefix(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(strings.ToLower(text)) + "%"
}

func (s *Store) listKeys(ctx context.Context, what, q string, args []any) ([]store.SSHKey, error) {
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "%s", what)
	}
	defer rows.Close()
	var out []store.SSHKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.wrap(err, "%s", what)
		}
		out = append(out, *k)
	}
	return out, s.wrap(rows.Err(), "%s", what)
}

// ListUserKeys lists a user's keys, oldest first.
func (s *Store) ListUserKeys(ctx context.Context, userID int64, label string, p store.Page) ([]store.SSHKey, error) {
	conds, args := []string{"k.user_id = $1"}, []any{userID}
	if label != "" {
		args = append(args, labelPrefix(label))
		conds = append(conds, `k.label_lower LIKE $`+itoa(len(args))+` ESCAPE '\'`)
	}
	q, args := page("SELECT "+keyCols+" FROM ssh_keys k"+whereAnd(conds)+" ORDER BY k.id", args, p)
	return s.listKeys(ctx, "list SSH keys", q, args)
}

// UpdateKeyLabel changes a key's label.
func (s *Store) UpdateKeyLabel(ctx context.Context, id int64, label string) error {
	res, err := s.q.ExecContext(ctx, "UPDATE ssh_keys SET label = $2, label_lower = $3 WHERE id = $1", id, label, strings.ToLower(label))
	if err != nil {
		return s.wrap(err, "update SSH key %d", id)
	}
	if n, err := rowsAffected(res); err != nil {
		return s.wrap(err, "update SSH key %d", id)
	} else if n == 0 {
		return noSuchKey(id)
	}
	return nil
}

// DeleteKey deletes a key and its grants; a missing key is ErrNotFound.
func (s *Store) DeleteKey(ctx context.Context, id int64) error {
	return s.atomic(ctx, func(s *Store) error {
		// The grants cascade; deleting them first keeps this independent of
		// whether the connection enforces foreign keys.
		if _, err := s.q.ExecContext(ctx, "DELETE FROM ssh_key_projects WHERE key_id = $1", id); err != nil {
			return s.wrap(err, "delete SSH key %d: project grants", id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM ssh_key_repos WHERE key_id = $1", id); err != nil {
			return s.wrap(err, "delete SSH key %d: repository grants", id)
		}
		res, err := s.q.ExecContext(ctx, "DELETE FROM ssh_keys WHERE id = $1", id)
		if err != nil {
			return s.wrap(err, "delete SSH key %d", id)
		}
		if n, err := rowsAffected(res); err != nil {
			return s.wrap(err, "delete SSH key %d", id)
		} else if n == 0 {
			return noSuchKey(id)
		}
		return nil
	})
}

// DeleteUserKeys deletes every key of a user.
func (s *Store) DeleteUserKeys(ctx context.Context, userID int64) (int, error) {
	if userID == 0 {
		return 0, nil
	}
	res, err := s.q.ExecContext(ctx, "DELETE FROM ssh_keys WHERE user_id = $1", userID)
	if err != nil {
		return 0, s.wrap(err, "delete SSH keys of user %d", userID)
	}
	n, err := rowsAffected(res)
	return int(n), s.wrap(err, "delete SSH keys of user %d", userID)
}

// grantTable returns the table and column holding grants on r.
func grantTable(r latch.Resource) (table, col string, id int64) {
	if r.RepoID != 0 {
		return "ssh_key_repos", "repo_id", r.RepoID
	}
	return "ssh_key_projects", "project_id", r.ProjectID
}

func checkAccessKeyPermission(g store.AccessKeyGrant) error {
	want := latch.ScopeProject
	if g.RepoID != 0 {
		want = latch.ScopeRepo
	}
	if g.Permission.Scope() != want || g.Permission.Level() < latch.LevelRead || g.Permission.Level() > latch.LevelWrite {
		return latch.Invalidf("Invalid access key permission %q.", g.Permission)
	}
	return nil
}

// SetAccessKeyGrant grants an access key a permission on a project or
// repository, replacing any permission it had there.
func (s *Store) SetAccessKeyGrant(ctx context.Context, g store.AccessKeyGrant) (bool, error) {
	if g.ProjectID == 0 && g.RepoID == 0 {
		return false, latch.Invalidf("An access key is granted on a project or a repository.")
	}
	if err := checkAccessKeyPermission(g); err != nil {
		return false, err
	}
	table, col, id := grantTable(g.Resource())
	var created bool
	err := s.atomic(ctx, func(s *Store) error {
		k, err := s.KeyByID(ctx, g.KeyID)
		if err != nil {
			return err
		}
		if !k.IsAccessKey() {
			return latch.Errorf(latch.ErrConflict, "SSH key %d is a user key and cannot be an access key.", g.KeyID)
		}
		res, err := s.q.ExecContext(ctx, "UPDATE "+table+" SET permission = $3 WHERE key_id = $1 AND "+col+" = $2", g.KeyID, id, string(g.Permission))
		if err != nil {
			return s.wrap(err, "grant access key %d", g.KeyID)
		}
		if n, err := rowsAffected(res); err != nil || n > 0 {
			return s.wrap(err, "grant access key %d", g.KeyID)
		}
		res, err = s.q.ExecContext(ctx, "INSERT INTO "+table+" (key_id, "+col+", permission) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
			g.KeyID, id, string(g.Permission))
		if err != nil {
			if s.isForeignKeyViolation(err) {
				if g.RepoID != 0 {
					return noSuchRepoID(g.RepoID)
				}
				return noSuchProjectID(g.ProjectID)
			}
			return s.wrap(err, "grant access key %d", g.KeyID)
		}
		n, err := rowsAffected(res)
		created = n > 0
		return s.wrap(err, "grant access key %d", g.KeyID)
	})
	return created, err
}

// RemoveAccessKeyGrant removes an access key's grant on exactly r.
func (s *Store) RemoveAccessKeyGrant(ctx context.Context, keyID int64, r latch.Resource) (bool, error) {
	table, col, id := grantTable(r)
	res, err := s.q.ExecContext(ctx, "DELETE FROM "+table+" WHERE key_id = $1 AND "+col+" = $2", keyID, id)
	if err != nil {
		return false, s.wrap(err, "remove access key %d", keyID)
	}
	n, err := rowsAffected(res)
	return n > 0, s.wrap(err, "remove access key %d", keyID)
}

// AccessKeyGrants lists an access key's grants, projects first, each
// ordered by id.
func (s *Store) AccessKeyGrants(ctx context.Context, keyID int64) ([]store.AccessKeyGrant, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT g.project_id, 0, g.permission, 0 FROM ssh_key_projects g WHERE g.key_id = $1
		UNION ALL
		SELECT r.project_id, g.repo_id, g.permission, 1 FROM ssh_key_repos g JOIN repos r ON r.id = g.repo_id WHERE g.key_id = $1
		ORDER BY 4, 1, 2`, keyID)
	if err != nil {
		return nil, s.wrap(err, "read access key %d grants", keyID)
	}
	defer rows.Close()
	var out []store.AccessKeyGrant
	for rows.Next() {
		g := store.AccessKeyGrant{KeyID: keyID}
		var perm string
		var kind int
		if err := rows.Scan(&g.ProjectID, &g.RepoID, &perm, &kind); err != nil {
			return nil, s.wrap(err, "read access key %d grants", keyID)
		}
		g.Permission = latch.Permission(perm)
		out = append(out, g)
	}
	return out, s.wrap(rows.Err(), "read access key %d grants", keyID)
}

// ListAccessKeys lists the access keys granted on exactly r, oldest first.
func (s *Store) ListAccessKeys(ctx context.Context, r latch.Resource, label string, p store.Page) ([]store.AccessKey, error) {
	table, col, id := grantTable(r)
	conds, args := []string{"g." + col + " = $1"}, []any{id}
	if label != "" {
		args = append(args, labelPrefix(label))
		conds = append(conds, `k.label_lower LIKE $`+itoa(len(args))+` ESCAPE '\'`)
	}
	q, args := page("SELECT "+keyCols+", g.permission FROM "+table+" g JOIN ssh_keys k ON k.id = g.key_id"+whereAnd(conds)+" ORDER BY k.id", args, p)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list access keys")
	}
	defer rows.Close()
	var out []store.AccessKey
	for rows.Next() {
		var a store.AccessKey
		var perm string
		k := &a.Key
		if err := rows.Scan(append(keyDest(k), &perm)...); err != nil {
			return nil, s.wrap(err, "list access keys")
		}
		a.Grant = store.AccessKeyGrant{KeyID: k.ID, ProjectID: r.ProjectID, RepoID: r.RepoID, Permission: latch.Permission(perm)}
		out = append(out, a)
	}
	return out, s.wrap(rows.Err(), "list access keys")
}

// RecordKeyUse stores a batch of last-authenticated times in one
// transaction, never moving a key's time back.
func (s *Store) RecordKeyUse(ctx context.Context, uses []store.KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	return s.atomic(ctx, func(tx *Store) error {
		for _, u := range uses {
			if _, err := tx.q.ExecContext(ctx, "UPDATE ssh_keys SET last_authenticated = $2 WHERE id = $1 AND last_authenticated < $2", u.ID, u.At); err != nil {
				return tx.wrap(err, "record SSH key use")
			}
		}
		return nil
	})
}
