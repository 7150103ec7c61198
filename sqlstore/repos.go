package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const repoCols = "r.id, r.project_id, r.slug, r.name, r.description, r.public, r.default_branch, " + projectCols

const repoFrom = " FROM repos r JOIN projects p ON p.id = r.project_id"

func scanRepo(sc scanner) (*latch.Repository, error) {
	var r latch.Repository
	var p latch.Project
	if err := sc.Scan(&r.ID, &r.ProjectID, &r.Slug, &r.Name, &r.Description, &r.Public, &r.DefaultBranch,
		&p.ID, &p.Key, &p.Name, &p.Description, &p.Public); err != nil {
		return nil, err
	}
	r.Project = &p
	return &r, nil
}

// normalizeRepo checks r and fills its slug from its name when unset.
// Slugs are stored lower-case.
func normalizeRepo(r *latch.Repository) error {
	if strings.TrimSpace(r.Name) == "" {
		return latch.Invalidf("The repository name is required.")
	}
	if r.Slug == "" {
		r.Slug = latch.Slugify(r.Name)
	}
	r.Slug = strings.ToLower(r.Slug)
	if r.Slug == "" {
		return latch.Invalidf("The repository name %q has no letters or digits to make a slug of.", r.Name)
	}
	return nil
}

// CreateRepo stores r in project r.ProjectID, filling r.ID, and r.Slug
// from the name when unset. A slug taken in the project is a conflict; a
// missing project is not found.
func (s *Store) CreateRepo(ctx context.Context, r *latch.Repository) error {
	if err := normalizeRepo(r); err != nil {
		return err
	}
	err := s.q.QueryRowContext(ctx, `INSERT INTO repos (project_id, slug, name, name_lower, description, public, default_branch)
		SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS BOOLEAN), CAST($7 AS TEXT)
		WHERE EXISTS (SELECT 1 FROM projects WHERE id = $1)
		ON CONFLICT DO NOTHING RETURNING id`,
		r.ProjectID, r.Slug, r.Name, strings.ToLower(r.Name), r.Description, r.Public, r.DefaultBranch).Scan(&r.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return s.repoConflict(ctx, r)
	}
	return s.wrap(err, "create repository %q", r.Slug)
}

// repoConflict explains why writing r changed nothing.
func (s *Store) repoConflict(ctx context.Context, r *latch.Repository) error {
	if ok, err := s.exists(ctx, "SELECT 1 FROM projects WHERE id = $1", r.ProjectID); err != nil {
		return s.wrap(err, "read project %d", r.ProjectID)
	} else if !ok {
		return noSuchProjectID(r.ProjectID)
	}
	return duplicate("This repository URL is already taken: the project already has a repository with slug %q.", r.Slug)
}

func (s *Store) repoWhere(ctx context.Context, where string, args ...any) (*latch.Repository, error) {
	return scanRepo(s.q.QueryRowContext(ctx, "SELECT "+repoCols+repoFrom+" WHERE "+where, args...))
}

// RepoBySlug returns a repository, with its project, by project key and
// slug, both compared case-insensitively. A missing project is reported as
// such.
func (s *Store) RepoBySlug(ctx context.Context, projectKey, slug string) (*latch.Repository, error) {
	r, err := s.repoWhere(ctx, "p.key_lower = $1 AND r.slug = $2", strings.ToLower(projectKey), strings.ToLower(slug))
	if errors.Is(err, sql.ErrNoRows) {
		ok, err := s.exists(ctx, "SELECT 1 FROM projects WHERE key_lower = $1", strings.ToLower(projectKey))
		if err != nil {
			return nil, s.wrap(err, "read project %s", projectKey)
		}
		if !ok {
			return nil, latch.NoSuchProject(projectKey)
		}
		return nil, latch.NoSuchRepository(projectKey, slug)
	}
	if err != nil {
		return nil, s.wrap(err, "read repository %s/%s", projectKey, slug)
	}
	return r, nil
}

// RepoByID returns a repository, with its project, by id.
func (s *Store) RepoByID(ctx context.Context, id int64) (*latch.Repository, error) {
	r, err := s.repoWhere(ctx, "r.id = $1", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, noSuchRepoID(id)
	}
	if err != nil {
		return nil, s.wrap(err, "read repository %d", id)
	}
	return r, nil
}

// ListRepos lists the repositories f selects ordered by project key then
// slug, each with its project, at most p.Limit+1 of them.
func (s *Store) ListRepos(ctx context.Context, f store.RepoFilter, pg store.Page) ([]latch.Repository, error) {
	with, conds, args := visibleRepos(f.Visibility)
	if f.ProjectID != 0 {
		args = append(args, f.ProjectID)
		conds = append(conds, "r.project_id = $"+itoa(len(args)))
	}
	if f.Name != "" {
		args = append(args, likePattern(f.Name))
		conds = append(conds, `r.name_lower LIKE $`+itoa(len(args))+` ESCAPE '\'`)
	}
	q, args := page(with+"SELECT "+repoCols+repoFrom+whereAnd(conds)+" ORDER BY p.key_lower, r.slug, r.id", args, pg)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list repositories")
	}
	defer rows.Close()
	var rs []latch.Repository
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, s.wrap(err, "list repositories")
		}
		rs = append(rs, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "list repositories")
	}
	return rs, nil
}

// UpdateRepo writes r's name, slug, description, public flag, default
// branch and project: a changed ProjectID moves the repository, with its
// grants, to that project (0 keeps the current one).
func (s *Store) UpdateRepo(ctx context.Context, r *latch.Repository) error {
	if err := normalizeRepo(r); err != nil {
		return err
	}
	return s.atomic(ctx, func(s *Store) error {
		if r.ProjectID == 0 {
			err := s.q.QueryRowContext(ctx, "SELECT project_id FROM repos WHERE id = $1", r.ID).Scan(&r.ProjectID)
			if errors.Is(err, sql.ErrNoRows) {
				return noSuchRepoID(r.ID)
			}
			if err != nil {
				return s.wrap(err, "read repository %d", r.ID)
			}
		}
		res, err := s.q.ExecContext(ctx, `UPDATE repos SET
			project_id = $2, slug = $3, name = $4, name_lower = $5, description = $6, public = $7, default_branch = $8
			WHERE id = $1 AND EXISTS (SELECT 1 FROM projects WHERE id = $2)
			AND NOT EXISTS (SELECT 1 FROM repos o WHERE o.project_id = $2 AND o.slug = $3 AND o.id <> $1)`,
			r.ID, r.ProjectID, r.Slug, r.Name, strings.ToLower(r.Name), r.Description, r.Public, r.DefaultBranch)
		if err != nil {
			return s.wrap(err, "update repository %d", r.ID)
		}
		n, err := rowsAffected(res)
		if err != nil {
			return s.wrap(err, "update repository %d", r.ID)
		}
		if n == 0 {
			if ok, err := s.exists(ctx, "SELECT 1 FROM repos WHERE id = $1", r.ID); err != nil {
				return s.wrap(err, "update repository %d", r.ID)
			} else if !ok {
				return noSuchRepoID(r.ID)
			}
			return s.repoConflict(ctx, r)
		}
		// Repository grants carry their project's id.
		if _, err := s.q.ExecContext(ctx, "UPDATE grants SET project_id = $2 WHERE repo_id = $1 AND project_id <> $2", r.ID, r.ProjectID); err != nil {
			return s.wrap(err, "update repository %d: grants", r.ID)
		}
		return nil
	})
}

// DeleteRepo deletes a repository and every grant on it.
func (s *Store) DeleteRepo(ctx context.Context, id int64) error {
	return s.atomic(ctx, func(s *Store) error {
		res, err := s.q.ExecContext(ctx, "DELETE FROM repos WHERE id = $1", id)
		if err != nil {
			return s.wrap(err, "delete repository %d", id)
		}
		if n, err := rowsAffected(res); err != nil {
			return s.wrap(err, "delete repository %d", id)
		} else if n == 0 {
			return noSuchRepoID(id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM grants WHERE repo_id = $1", id); err != nil {
			return s.wrap(err, "delete repository %d: grants", id)
		}
		// Repository tokens go with their service users.
		if _, err := s.q.ExecContext(ctx, "DELETE FROM users WHERE id IN (SELECT user_id FROM access_tokens WHERE repo_id = $1)", id); err != nil {
			return s.wrap(err, "delete repository %d: tokens", id)
		}
		return nil
	})
}
