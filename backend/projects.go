package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/store"
)

// ProjectInput is the input to CreateProject and UpdateProject. Nil fields
// are left as they are on update.
type ProjectInput struct {
	Key         *string
	Name        *string
	Description *string
	Public      *bool
}

const maxDescription = 4000

// CreateProject creates a project; its creator becomes its administrator.
func (b *Backend) CreateProject(ctx context.Context, p *latch.Principal, in ProjectInput) (*latch.Project, error) {
	if err := b.authorize(ctx, p, latch.CreateProject, latch.Resource{}); err != nil {
		return nil, err
	}
	if in.Key == nil {
		return nil, latch.Invalidf("The project key is required.")
	}
	if err := latch.ValidateProjectKey(*in.Key); err != nil {
		return nil, err
	}
	proj := &latch.Project{Key: strings.ToUpper(*in.Key)}
	if in.Name == nil {
		return nil, latch.Invalidf("The project name is required.")
	}
	if err := applyProject(proj, in); err != nil {
		return nil, err
	}
	err := b.store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.CreateProject(ctx, proj); err != nil {
			return err
		}
		if uid := p.UserID(); uid != 0 {
			return tx.SetPermission(ctx, latch.Resource{ProjectID: proj.ID}, store.Subject{UserID: uid}, latch.ProjectAdmin)
		}
		return nil
	})
	if errors.Is(err, latch.ErrConflict) {
		return nil, latch.Errorf(latch.ErrConflict, "Project key %s or name %q is already taken.", proj.Key, proj.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create project: %w", err)
	}
	return proj, nil
}

func applyProject(proj *latch.Project, in ProjectInput) error {
	if in.Name != nil {
		if err := latch.ValidateName("project", *in.Name); err != nil {
			return err
		}
		proj.Name = *in.Name
	}
	if in.Description != nil {
		if err := latch.ValidateText("description", *in.Description); err != nil {
			return err
		}
		if len(*in.Description) > maxDescription {
			return latch.Invalidf("The description must be at most %d characters.", maxDescription)
		}
		proj.Description = *in.Description
	}
	if in.Public != nil {
		proj.Public = *in.Public
	}
	return nil
}

// Project returns a project the principal may read.
func (b *Backend) Project(ctx context.Context, p *latch.Principal, key string) (*latch.Project, error) {
	proj, err := b.store.ProjectByKey(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.ReadProject, latch.Resource{ProjectID: proj.ID}); err != nil {
		return nil, err
	}
	return proj, nil
}

// ListProjects lists the projects the principal may read, or, when
// minPerm is set, those on which it holds at least that permission.
func (b *Backend) ListProjects(ctx context.Context, p *latch.Principal, name string, minPerm latch.Permission, pg store.Page) (Page[latch.Project], error) {
	pg = clampPage(pg)
	filtering := minPerm != "" && minPerm != latch.ProjectRead
	var rows []latch.Project
	var err error
	switch {
	case p != nil && p.Grants != nil:
		rows, err = b.grantProjects(ctx, p, name)
	case filtering:
		rows, err = b.store.ListProjects(ctx, store.ProjectFilter{Name: name, Visibility: b.visibility(p)}, store.Page{})
	default:
		rows, err = b.store.ListProjects(ctx, store.ProjectFilter{Name: name, Visibility: b.visibility(p)}, pg)
		if err != nil {
			return Page[latch.Project]{}, fmt.Errorf("list projects: %w", err)
		}
		return pageOf(rows, pg), nil
	}
	if err != nil {
		return Page[latch.Project]{}, fmt.Errorf("list projects: %w", err)
	}
	if filtering {
		if rows, err = keepPermitted(ctx, b, p, minPerm, rows, func(pr latch.Project) latch.Resource {
			return latch.Resource{ProjectID: pr.ID}
		}); err != nil {
			return Page[latch.Project]{}, err
		}
	}
	return pageOf(window(rows, pg), pg), nil
}

// keepPermitted keeps the rows on which p holds minPerm, asking the one
// decision for each. Listings filtered by permission are built in memory.
func keepPermitted[T any](ctx context.Context, b *Backend, p *latch.Principal, minPerm latch.Permission, rows []T, res func(T) latch.Resource) ([]T, error) {
	action, ok := latch.ActionFor(minPerm)
	if !ok {
		return nil, latch.Invalidf("Invalid permission %q.", minPerm)
	}
	kept := rows[:0]
	for _, r := range rows {
		d, err := b.authz.Authorize(ctx, p, action, res(r))
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// visibility maps a user principal to a listing filter.
func (b *Backend) visibility(p *latch.Principal) store.Visibility {
	if p == nil || p.User == nil || !p.User.Active || p.Grants != nil {
		return store.Visibility{}
	}
	return store.Visibility{UserID: p.User.ID}
}

// grantProjects lists, ordered by key, the projects that a self-contained
// principal's grants (project and repository tokens) reach. Such principals
// hold a grant or two, so the listing is built in memory.
func (b *Backend) grantProjects(ctx context.Context, p *latch.Principal, name string) ([]latch.Project, error) {
	seen := map[int64]bool{}
	var out []latch.Project
	for _, g := range p.Grants {
		id := g.Resource.ProjectID
		if id == 0 || seen[id] {
			continue
		}
		seen[id] = true
		proj, err := b.store.ProjectByID(ctx, id)
		if errors.Is(err, latch.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		if containsFold(proj.Name, name) {
			out = append(out, *proj)
		}
	}
	slices.SortFunc(out, func(a, b latch.Project) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// grantRepos lists, ordered by project key and slug, the repositories that a
// self-contained principal's grants reach, within the filter's project.
func (b *Backend) grantRepos(ctx context.Context, p *latch.Principal, f store.RepoFilter) ([]latch.Repository, error) {
	seen := map[int64]bool{}
	var out []latch.Repository
	add := func(r latch.Repository) {
		if !seen[r.ID] && (f.ProjectID == 0 || r.ProjectID == f.ProjectID) && containsFold(r.Name, f.Name) {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	for _, g := range p.Grants {
		if g.Resource.RepoID != 0 {
			r, err := b.store.RepoByID(ctx, g.Resource.RepoID)
			if errors.Is(err, latch.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list repositories: %w", err)
			}
			add(*r)
			continue
		}
		if g.Resource.ProjectID == 0 {
			continue
		}
		rows, err := b.store.ListRepos(ctx, store.RepoFilter{ProjectID: g.Resource.ProjectID, Visibility: store.Visibility{All: true}}, store.Page{})
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		for _, r := range rows {
			add(r)
		}
	}
	slices.SortFunc(out, func(a, b latch.Repository) int {
		if c := strings.Compare(a.Project.Key, b.Project.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Slug, b.Slug)
	})
	return out, nil
}

func containsFold(s, sub string) bool {
	return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// window cuts rows to a page fetched with Limit+1, as the store does.
func window[T any](rows []T, p store.Page) []T {
	if p.Start >= len(rows) {
		return nil
	}
	return rows[p.Start:min(len(rows), p.Start+p.Limit+1)]
}

// UpdateProject changes a project's key, name, description or visibility
// (PROJECT_ADMIN).
func (b *Backend) UpdateProject(ctx context.Context, p *latch.Principal, key string, in ProjectInput) (*latch.Project, error) {
	proj, err := b.store.ProjectByKey(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.AdminProject, latch.Resource{ProjectID: proj.ID}); err != nil {
		return nil, err
	}
	if in.Key != nil {
		if err := latch.ValidateProjectKey(*in.Key); err != nil {
			return nil, err
		}
		proj.Key = strings.ToUpper(*in.Key)
	}
	wasPublic := proj.Public
	if err := applyProject(proj, in); err != nil {
		return nil, err
	}
	if err := b.store.UpdateProject(ctx, proj); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return nil, latch.Errorf(latch.ErrConflict, "Project key %s or name %q is already taken.", proj.Key, proj.Name)
		}
		return nil, fmt.Errorf("update project: %w", err)
	}
	if proj.Public != wasPublic {
		b.record(ctx, p, audit.VisibilityChanged, resourceTarget(proj.Key, ""), fmt.Sprintf("public %t", proj.Public))
	}
	return proj, nil
}

// DeleteProject deletes an empty project (PROJECT_ADMIN).
func (b *Backend) DeleteProject(ctx context.Context, p *latch.Principal, key string) error {
	proj, err := b.store.ProjectByKey(ctx, key)
	if err != nil {
		return err
	}
	if err := b.authorize(ctx, p, latch.AdminProject, latch.Resource{ProjectID: proj.ID}); err != nil {
		return err
	}
	return b.store.WithTx(ctx, func(tx store.Store) error {
		repos, err := tx.ListRepos(ctx, store.RepoFilter{ProjectID: proj.ID, Visibility: store.Visibility{All: true}}, store.Page{Limit: 1})
		if err != nil {
			return err
		}
		if len(repos) > 0 {
			return latch.Errorf(latch.ErrConflict, "The project %s cannot be deleted because it has repositories.", proj.Key)
		}
		return tx.DeleteProject(ctx, proj.ID)
	})
}

// RepoInput is the input to CreateRepo and UpdateRepo. Nil fields are left as
// they are on update.
type RepoInput struct {
	Name          *string
	Description   *string
	Public        *bool
	DefaultBranch *string
}

// CreateRepo creates a repository in a project (PROJECT_ADMIN): the database
// row and the bare repository on disk are created together or not at all.
func (b *Backend) CreateRepo(ctx context.Context, p *latch.Principal, projectKey string, in RepoInput) (*latch.Repository, error) {
	proj, err := b.store.ProjectByKey(ctx, projectKey)
	if err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.AdminProject, latch.Resource{ProjectID: proj.ID}); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, latch.Invalidf("The repository name is required.")
	}
	repo := &latch.Repository{ProjectID: proj.ID, DefaultBranch: "main", Project: proj}
	if err := applyRepo(repo, in); err != nil {
		return nil, err
	}
	if repo.Slug, err = repoSlug(repo.Name); err != nil {
		return nil, err
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.CreateRepo(ctx, repo); err != nil {
			return err
		}
		// Created inside the transaction: if the commit then fails the
		// directory is removed below, so row and directory come and go together.
		return b.repos.Init(ctx, repo.ID)
	})
	if errors.Is(err, latch.ErrConflict) {
		return nil, latch.Errorf(latch.ErrConflict, "This repository URL is already taken by %q in project %s.", repo.Slug, proj.Key)
	}
	if err != nil {
		if repo.ID != 0 {
			if rmErr := b.repos.Remove(repo.ID); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				b.log.Error("remove repository after failed create", "repo_id", repo.ID, "err", rmErr)
			}
		}
		return nil, fmt.Errorf("create repository: %w", err)
	}
	return repo, nil
}

func applyRepo(repo *latch.Repository, in RepoInput) error {
	if in.Name != nil {
		if err := latch.ValidateName("repository", *in.Name); err != nil {
			return err
		}
		repo.Name = *in.Name
	}
	if in.Description != nil {
		if err := latch.ValidateText("description", *in.Description); err != nil {
			return err
		}
		if len(*in.Description) > maxDescription {
			return latch.Invalidf("The description must be at most %d characters.", maxDescription)
		}
		repo.Description = *in.Description
	}
	if in.Public != nil {
		repo.Public = *in.Public
	}
	if in.DefaultBranch != nil {
		br := strings.TrimPrefix(*in.DefaultBranch, "refs/heads/")
		if !validBranchName(br) {
			return latch.Invalidf("%q is not a valid branch name.", *in.DefaultBranch)
		}
		repo.DefaultBranch = br
	}
	return nil
}

// repoSlug is the slug of a repository named name; a name whose slug would
// be empty, "." or ".." (which no URL can name) is refused.
func repoSlug(name string) (string, error) {
	slug := latch.Slugify(name)
	if strings.Trim(slug, ".") == "" {
		return "", latch.Invalidf("The repository name must contain at least one letter or digit.")
	}
	return slug, nil
}

// validBranchName applies a conservative subset of git check-ref-format.
func validBranchName(s string) bool {
	if s == "" || len(s) > 255 || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") ||
		strings.HasSuffix(s, ".lock") || strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("~^:?*[\\", r) {
			return false
		}
	}
	return true
}

// Repo returns a repository the principal may read.
func (b *Backend) Repo(ctx context.Context, p *latch.Principal, projectKey, slug string) (*latch.Repository, error) {
	repo, err := b.lookupRepo(ctx, projectKey, slug)
	if err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.ReadRepo, resourceOf(repo)); err != nil {
		return nil, err
	}
	return repo, nil
}

func resourceOf(r *latch.Repository) latch.Resource {
	return latch.Resource{ProjectID: r.ProjectID, RepoID: r.ID}
}

// lookupRepo finds a repository, answering NoSuchProject when the project
// itself is missing, as Data Center does.
func (b *Backend) lookupRepo(ctx context.Context, projectKey, slug string) (*latch.Repository, error) {
	repo, err := b.store.RepoBySlug(ctx, projectKey, slug)
	if errors.Is(err, latch.ErrNotFound) {
		if _, perr := b.store.ProjectByKey(ctx, projectKey); perr != nil {
			return nil, perr
		}
		return nil, latch.NoSuchRepository(projectKey, slug)
	}
	return repo, err
}

// ListRepos lists the repositories of one project (projectKey != "") or of
// all projects that the principal may read.
func (b *Backend) ListRepos(ctx context.Context, p *latch.Principal, projectKey, name string, minPerm latch.Permission, pg store.Page) (Page[latch.Repository], error) {
	f := store.RepoFilter{Name: name, Visibility: b.visibility(p)}
	if projectKey != "" {
		proj, err := b.store.ProjectByKey(ctx, projectKey)
		if err != nil {
			return Page[latch.Repository]{}, err
		}
		if err := b.authorize(ctx, p, latch.ReadProject, latch.Resource{ProjectID: proj.ID}); err != nil {
			return Page[latch.Repository]{}, err
		}
		f.ProjectID = proj.ID
	}
	pg = clampPage(pg)
	filtering := minPerm != "" && minPerm != latch.RepoRead
	var rows []latch.Repository
	var err error
	switch {
	case p != nil && p.Grants != nil:
		rows, err = b.grantRepos(ctx, p, f)
	case filtering:
		rows, err = b.store.ListRepos(ctx, f, store.Page{})
	default:
		rows, err = b.store.ListRepos(ctx, f, pg)
		if err != nil {
			return Page[latch.Repository]{}, fmt.Errorf("list repositories: %w", err)
		}
		return pageOf(rows, pg), nil
	}
	if err != nil {
		return Page[latch.Repository]{}, fmt.Errorf("list repositories: %w", err)
	}
	if filtering {
		if rows, err = keepPermitted(ctx, b, p, minPerm, rows, resourceOfValue); err != nil {
			return Page[latch.Repository]{}, err
		}
	}
	return pageOf(window(rows, pg), pg), nil
}

func resourceOfValue(r latch.Repository) latch.Resource { return resourceOf(&r) }

// UpdateRepo changes a repository's name, description, visibility or default
// branch (REPO_ADMIN). Renaming changes the slug; the directory on disk is
// keyed by id and stays.
func (b *Backend) UpdateRepo(ctx context.Context, p *latch.Principal, projectKey, slug string, in RepoInput) (*latch.Repository, error) {
	repo, err := b.lookupRepo(ctx, projectKey, slug)
	if err != nil {
		return nil, err
	}
	if err := b.authorize(ctx, p, latch.AdminRepo, resourceOf(repo)); err != nil {
		return nil, err
	}
	wasPublic := repo.Public
	if err := applyRepo(repo, in); err != nil {
		return nil, err
	}
	if repo.Slug, err = repoSlug(repo.Name); err != nil {
		return nil, err
	}
	if err := b.store.UpdateRepo(ctx, repo); err != nil {
		if errors.Is(err, latch.ErrConflict) {
			return nil, latch.Errorf(latch.ErrConflict, "This repository URL is already taken by %q.", repo.Slug)
		}
		return nil, fmt.Errorf("update repository: %w", err)
	}
	if repo.Public != wasPublic {
		b.record(ctx, p, audit.VisibilityChanged, resourceTarget(projectKey, repo.Slug), fmt.Sprintf("public %t", repo.Public))
	}
	return repo, nil
}

// DeleteRepo deletes a repository's row and its directory (REPO_ADMIN).
func (b *Backend) DeleteRepo(ctx context.Context, p *latch.Principal, projectKey, slug string) error {
	repo, err := b.lookupRepo(ctx, projectKey, slug)
	if err != nil {
		return err
	}
	if err := b.authorize(ctx, p, latch.AdminRepo, resourceOf(repo)); err != nil {
		return err
	}
	dir := b.repos.Path(repo.ID)
	trash := dir + ".deleting"
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.DeleteRepo(ctx, repo.ID); err != nil {
			return err
		}
		if err := os.Rename(dir, trash); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move repository aside: %w", err)
		}
		return nil
	})
	if err != nil {
		if _, statErr := os.Stat(trash); statErr == nil {
			_ = os.Rename(trash, dir)
		}
		return fmt.Errorf("delete repository: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		b.log.Error("remove deleted repository", "repo_id", repo.ID, "err", err)
	}
	return nil
}
