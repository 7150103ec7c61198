package sqlstore

import (
	"context"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

// userGrantsCTE defines ug: every grant held by user $1, directly or through
// a group. $1 must not be 0, as group grants have user_id 0.
const userGrantsCTE = `WITH ug AS MATERIALIZED (
	SELECT project_id, repo_id, level FROM grants WHERE user_id = $1
	UNION ALL
	SELECT g.project_id, g.repo_id, g.level FROM group_members m JOIN grants g ON g.group_id = m.group_id WHERE m.user_id = $1
) `

var globalAdminInUG = "EXISTS (SELECT 1 FROM ug WHERE project_id = 0 AND repo_id = 0 AND level >= " + itoa(int(latch.LevelAdmin)) + ")"

// visibleProjects returns the WITH clause, conditions and arguments that
// restrict a listing of projects p to those v may read.
func visibleProjects(v store.Visibility) (with string, conds []string, args []any) {
	switch {
	case v.All:
		return "", nil, nil
	case v.UserID == 0:
		return "", []string{"p.public"}, nil
	}
	return userGrantsCTE,
		[]string{"(p.public OR p.id IN (SELECT project_id FROM ug) OR " + globalAdminInUG + ")"},
		[]any{v.UserID}
}

// visibleRepos returns the WITH clause, conditions and arguments that
// restrict a listing of repositories r in projects p to those v may read.
func visibleRepos(v store.Visibility) (with string, conds []string, args []any) {
	switch {
	case v.All:
		return "", nil, nil
	case v.UserID == 0:
		return "", []string{"(r.public OR p.public)"}, nil
	}
	return userGrantsCTE,
		[]string{"(r.public OR p.public" +
			" OR r.id IN (SELECT repo_id FROM ug WHERE repo_id <> 0)" +
			" OR r.project_id IN (SELECT project_id FROM ug WHERE repo_id = 0 AND project_id <> 0)" +
			" OR " + globalAdminInUG + ")"},
		[]any{v.UserID}
}

// accessAnonymousSQL reads whether project $1 is public and whether
// repository $2 or its project is.
const accessAnonymousSQL = `SELECT
	COALESCE((SELECT public FROM projects WHERE id = $1), FALSE),
	COALESCE((SELECT r.public OR p.public FROM repos r JOIN projects p ON p.id = r.project_id WHERE r.id = $2), FALSE)`

// accessUserSQL reads, for user $1, project $2 and repository $3, in one
// row: the global level; the level granted on the project, whether the user
// holds a grant on one of its repositories, whether it is public; the level
// granted on the repository, the level granted on the repository's project,
// whether the repository or its project is public. Only the user's grants
// that are global or in either project are read (indexes grants_user,
// grants_group, group_members_user).
const accessUserSQL = `WITH rp AS (
	SELECT r.project_id, r.public OR p.public AS public FROM repos r JOIN projects p ON p.id = r.project_id WHERE r.id = $3
), ug AS MATERIALIZED (
	SELECT project_id, repo_id, level FROM grants
	WHERE user_id = $1 AND project_id IN (0, $2, (SELECT project_id FROM rp))
	UNION ALL
	SELECT g.project_id, g.repo_id, g.level FROM group_members m JOIN grants g ON g.group_id = m.group_id
	WHERE m.user_id = $1 AND g.project_id IN (0, $2, (SELECT project_id FROM rp))
)
SELECT
	COALESCE((SELECT MAX(level) FROM ug WHERE project_id = 0 AND repo_id = 0), 0),
	COALESCE((SELECT MAX(level) FROM ug WHERE project_id = $2 AND repo_id = 0), 0),
	EXISTS (SELECT 1 FROM ug WHERE project_id = $2 AND repo_id <> 0),
	COALESCE((SELECT public FROM projects WHERE id = $2), FALSE),
	COALESCE((SELECT MAX(level) FROM ug WHERE repo_id = $3), 0),
	COALESCE((SELECT MAX(ug.level) FROM ug JOIN rp ON ug.project_id = rp.project_id WHERE ug.repo_id = 0), 0),
	COALESCE((SELECT public FROM rp), FALSE)`

// Access returns what user userID (0: anonymous) holds on r now, with
// every inheritance applied, in one query:
//
//   - Global: the highest global grant to the user or one of their groups.
//   - Project (when r.ProjectID is set): the highest project grant, at least
//     read when the project is public or the user holds a grant on one of
//     its repositories.
//   - Repo (when r.RepoID is set): the highest of the repository grants and
//     the grants on its project (PROJECT_READ gives REPO_READ and so on), at
//     least read when the repository or its project is public.
//   - A global ADMIN or SYS_ADMIN is admin of every project and repository.
//
// Anonymous users hold read on public projects and repositories only.
func (s *Store) Access(ctx context.Context, userID int64, r latch.Resource) (latch.Access, error) {
	var a latch.Access
	if userID == 0 {
		if r.ProjectID == 0 && r.RepoID == 0 {
			return a, nil
		}
		var projectPublic, repoPublic bool
		if err := s.q.QueryRowContext(ctx, accessAnonymousSQL, r.ProjectID, r.RepoID).Scan(&projectPublic, &repoPublic); err != nil {
			return a, s.wrap(err, "read anonymous access to %+v", r)
		}
		if r.ProjectID != 0 && projectPublic {
			a.Project = latch.LevelRead
		}
		if r.RepoID != 0 && repoPublic {
			a.Repo = latch.LevelRead
		}
		return a, nil
	}

	var (
		global, project, repo, repoProject int
		repoGrantInProject, projectPublic  bool
		repoPublic                         bool
	)
	err := s.q.QueryRowContext(ctx, accessUserSQL, userID, r.ProjectID, r.RepoID).
		Scan(&global, &project, &repoGrantInProject, &projectPublic, &repo, &repoProject, &repoPublic)
	if err != nil {
		return a, s.wrap(err, "read access of user %d to %+v", userID, r)
	}
	a.Global = latch.Level(global)
	if r.ProjectID != 0 {
		a.Project = latch.Level(project)
		if repoGrantInProject || projectPublic {
			a.Project = max(a.Project, latch.LevelRead)
		}
	}
	if r.RepoID != 0 {
		// Project levels map 1:1 to repository levels.
		a.Repo = latch.Level(max(repo, repoProject))
		if repoPublic {
			a.Repo = max(a.Repo, latch.LevelRead)
		}
	}
	if a.Global >= latch.LevelAdmin {
		if r.ProjectID != 0 {
			a.Project = latch.LevelAdmin
		}
		if r.RepoID != 0 {
			a.Repo = latch.LevelAdmin
		}
	}
	return a, nil
}

// HighestAccess returns the highest levels user id holds anywhere: globally,
// on any project, and on any repository (project grants count for their
// repositories); a global ADMIN holds admin everywhere.
func (s *Store) HighestAccess(ctx context.Context, userID int64) (latch.Access, error) {
	if userID == 0 {
		return latch.Access{}, nil
	}
	var a latch.Access
	err := s.q.QueryRowContext(ctx, userGrantsCTE+`SELECT
		COALESCE((SELECT MAX(level) FROM ug WHERE project_id = 0 AND repo_id = 0), 0),
		COALESCE((SELECT MAX(level) FROM ug WHERE project_id <> 0 AND repo_id = 0), 0),
		COALESCE((SELECT MAX(level) FROM ug WHERE project_id <> 0), 0)`, userID).Scan(&a.Global, &a.Project, &a.Repo)
	if err != nil {
		return latch.Access{}, s.wrap(err, "read highest access of user %d", userID)
	}
	if a.Global >= latch.LevelAdmin {
		a.Project, a.Repo = latch.LevelAdmin, latch.LevelAdmin
	}
	return a, nil
}
