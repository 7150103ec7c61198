package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const projectCols = "p.id, p.key, p.name, p.description, p.public"

func scanProject(sc scanner) (*latch.Project, error) {
	var p latch.Project
	if err := sc.Scan(&p.ID, &p.Key, &p.Name, &p.Description, &p.Public); err != nil {
		return nil, err
	}
	return &p, nil
}

func checkProject(p *latch.Project) error {
	if strings.TrimSpace(p.Key) == "" {
		return latch.Invalidf("The project key is required.")
	}
	if strings.TrimSpace(p.Name) == "" {
		return latch.Invalidf("The project name is required.")
	}
	return nil
}

// projectConflict explains why writing p conflicted: its key or its name is
// taken (both compared case-insensitively).
func (s *Store) projectConflict(ctx context.Context, p *latch.Project) error {
	taken, err := s.exists(ctx, "SELECT 1 FROM projects WHERE key_lower = $1 AND id <> $2", strings.ToLower(p.Key), p.ID)
	if err != nil {
		return s.wrap(err, "read project %s", p.Key)
	}
	if taken {
		return duplicate("Project key %s is already taken.", p.Key)
	}
	return duplicate("Project name %q is already taken.", p.Name)
}

// CreateProject stores p, filling p.ID. The key is stored as given and must
// be unique case-insensitively, as must the name.
func (s *Store) CreateProject(ctx context.Context, p *latch.Project) error {
	if err := checkProject(p); err != nil {
		return err
	}
	err := s.q.QueryRowContext(ctx, `INSERT INTO projects (key, key_lower, name, name_lower, description, public)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id`,
		p.Key, strings.ToLower(p.Key), p.Name, strings.ToLower(p.Name), p.Description, p.Public).Scan(&p.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return s.projectConflict(ctx, p)
	}
	return s.wrap(err, "create project %s", p.Key)
}

func (s *Store) projectWhere(ctx context.Context, notFound error, where string, args ...any) (*latch.Project, error) {
	p, err := scanProject(s.q.QueryRowContext(ctx, "SELECT "+projectCols+" FROM projects p WHERE "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, s.wrap(err, "read project")
	}
	return p, nil
}

// ProjectByKey returns the project with key, compared case-insensitively.
func (s *Store) ProjectByKey(ctx context.Context, key string) (*latch.Project, error) {
	return s.projectWhere(ctx, latch.NoSuchProject(key), "p.key_lower = $1", strings.ToLower(key))
}

// ProjectByID returns the project with id.
func (s *Store) ProjectByID(ctx context.Context, id int64) (*latch.Project, error) {
	return s.projectWhere(ctx, noSuchProjectID(id), "p.id = $1", id)
}

// ListProjects lists the projects f selects ordered by key, at most
// p.Limit+1 of them.
func (s *Store) ListProjects(ctx context.Context, f store.ProjectFilter, pg store.Page) ([]latch.Project, error) {
	with, conds, args := visibleProjects(f.Visibility)
	if f.Name != "" {
		args = append(args, likePattern(f.Name))
		conds = append(conds, `p.name_lower LIKE $`+itoa(len(args))+` ESCAPE '\'`)
	}
	q, args := page(with+"SELECT "+projectCols+" FROM projects p"+whereAnd(conds)+" ORDER BY p.key_lower, p.id", args, pg)
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list projects")
	}
	defer rows.Close()
	var ps []latch.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, s.wrap(err, "list projects")
		}
		ps = append(ps, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "list projects")
	}
	return ps, nil
}

// UpdateProject writes p's key, name, description and public flag.
func (s *Store) UpdateProject(ctx context.Context, p *latch.Project) error {
	if err := checkProject(p); err != nil {
		return err
	}
	res, err := s.q.ExecContext(ctx, `UPDATE projects SET
		key = $2, key_lower = $3, name = $4, name_lower = $5, description = $6, public = $7
		WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM projects o WHERE (o.key_lower = $3 OR o.name_lower = $5) AND o.id <> $1)`,
		p.ID, p.Key, strings.ToLower(p.Key), p.Name, strings.ToLower(p.Name), p.Description, p.Public)
	if err != nil {
		return s.wrap(err, "update project %d", p.ID)
	}
	if n, err := rowsAffected(res); err != nil || n > 0 {
		return s.wrap(err, "update project %d", p.ID)
	}
	if ok, err := s.exists(ctx, "SELECT 1 FROM projects WHERE id = $1", p.ID); err != nil {
		return s.wrap(err, "update project %d", p.ID)
	} else if !ok {
		return noSuchProjectID(p.ID)
	}
	return s.projectConflict(ctx, p)
}

// DeleteProject deletes a project with its repositories and every grant on
// either.
func (s *Store) DeleteProject(ctx context.Context, id int64) error {
	return s.atomic(ctx, func(s *Store) error {
		// Project and repository tokens go with their service users.
		if _, err := s.q.ExecContext(ctx, "DELETE FROM users WHERE id IN (SELECT user_id FROM access_tokens WHERE project_id = $1)", id); err != nil {
			return s.wrap(err, "delete project %d: tokens", id)
		}
		if _, err := s.q.ExecContext(ctx, "DELETE FROM repos WHERE project_id = $1", id); err != nil {
			return s.wrap(err, "delete project %d: repositories", id)
		}
		res, err := s.q.ExecContext(ctx, "DELETE FROM projects WHERE id = $1", id)
		if err != nil {
			return s.wrap(err, "delete project %d", id)
		}
		if n, err := rowsAffected(res); err != nil {
			return s.wrap(err, "delete project %d", id)
		} else if n == 0 {
			return noSuchProjectID(id)
		}
		// Repository grants carry their project's id.
		if _, err := s.q.ExecContext(ctx, "DELETE FROM grants WHERE project_id = $1", id); err != nil {
			return s.wrap(err, "delete project %d: grants", id)
		}
		return nil
	})
}
