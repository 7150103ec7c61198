// Package store defines the persistence interfaces the latch domain consumes.
// Implementations live in their own packages (sqlstore, opened by the sqlite
// and postgres packages) and must pass the conformance suite in storetest.
//
// Methods return latch domain errors: a missing row is an error wrapping
// latch.ErrNotFound and a uniqueness violation one wrapping latch.ErrConflict.
package store

import (
	"context"

	"github.com/latchhq/latch"
)

// Page selects a window of a listing: Start rows skipped, at most Limit rows
// (listings return up to Limit+1 so that callers can tell whether another
// page follows). A Limit of zero or less means no limit.
type Page struct {
	Start int
	Limit int
}

// Subject is who a permission is granted to: a user or a group.
type Subject struct {
	UserID  int64
	GroupID int64
}

// UserGrant is a permission granted to a user.
type UserGrant struct {
	User       latch.User
	Permission latch.Permission
}

// GroupGrant is a permission granted to a group.
type GroupGrant struct {
	Group      latch.Group
	Permission latch.Permission
}

// UserFilter narrows a user listing.
type UserFilter struct {
	// Text matches name, display name or email, case-insensitively.
	Text string
	// IncludeService includes service users behind project and repository tokens.
	IncludeService bool
}

// Visibility restricts a listing to what one user may read: everything when
// All is set, else public entries plus those the user (UserID 0: anonymous)
// holds a permission on, directly, through a group, through the project or
// globally.
type Visibility struct {
	All    bool
	UserID int64
}

// ProjectFilter narrows a project listing.
type ProjectFilter struct {
	Name string // case-insensitive substring of the name; "" for all
	Visibility
}

// RepoFilter narrows a repository listing.
type RepoFilter struct {
	ProjectID int64  // 0: all projects
	Name      string // case-insensitive substring of the name; "" for all
	Visibility
}

// Store is everything latch persists. A Store obtained inside WithTx runs
// every call in that transaction.
type Store interface {
	// WithTx runs fn in one transaction, committing when fn returns nil.
	WithTx(ctx context.Context, fn func(Store) error) error
	Close() error

	Users
	Groups
	Projects
	Repositories
	Permissions
	latch.AccessSource
	Secrets
	Tokens
	RevokedTokens
	Audit
	Reminders
	Keys
	Outbox
}

// Users stores accounts and their password hashes.
type Users interface {
	// CreateUser stores u, filling u.ID. A name, slug or non-empty email
	// address (compared case-insensitively) that another user holds is a
	// latch.ErrConflict whose message names it.
	CreateUser(ctx context.Context, u *latch.User, passwordHash string) error
	UserByID(ctx context.Context, id int64) (*latch.User, error)
	UserByName(ctx context.Context, name string) (*latch.User, error)
	UserBySlug(ctx context.Context, slug string) (*latch.User, error)
	// UserByNameOrEmail finds the user whose name, or failing that whose
	// email, equals login (case-insensitively for email).
	UserByNameOrEmail(ctx context.Context, login string) (*latch.User, error)
	// ListUsers lists users ordered by name.
	ListUsers(ctx context.Context, f UserFilter, p Page) ([]latch.User, error)
	// UpdateUser saves u; a name, slug or email address another user holds
	// is a latch.ErrConflict, as for CreateUser.
	UpdateUser(ctx context.Context, u *latch.User) error
	DeleteUser(ctx context.Context, id int64) error
	PasswordHash(ctx context.Context, userID int64) (string, error)
	SetPasswordHash(ctx context.Context, userID int64, hash string) error
	CountUsers(ctx context.Context) (int, error)
}

// Groups stores groups and memberships.
type Groups interface {
	CreateGroup(ctx context.Context, g *latch.Group) error
	GroupByName(ctx context.Context, name string) (*latch.Group, error)
	ListGroups(ctx context.Context, filter string, p Page) ([]latch.Group, error)
	DeleteGroup(ctx context.Context, id int64) error
	AddGroupMember(ctx context.Context, groupID, userID int64) error
	RemoveGroupMember(ctx context.Context, groupID, userID int64) error
	GroupMembers(ctx context.Context, groupID int64, p Page) ([]latch.User, error)
	UserGroups(ctx context.Context, userID int64) ([]latch.Group, error)
}

// Projects stores projects.
type Projects interface {
	CreateProject(ctx context.Context, p *latch.Project) error
	ProjectByKey(ctx context.Context, key string) (*latch.Project, error)
	ProjectByID(ctx context.Context, id int64) (*latch.Project, error)
	// ListProjects lists projects ordered by key.
	ListProjects(ctx context.Context, f ProjectFilter, p Page) ([]latch.Project, error)
	UpdateProject(ctx context.Context, p *latch.Project) error
	DeleteProject(ctx context.Context, id int64) error
}

// Repositories stores repositories; the bare repository on disk is the
// caller's business.
type Repositories interface {
	CreateRepo(ctx context.Context, r *latch.Repository) error
	// RepoBySlug finds a repository by project key (case-insensitive) and slug.
	RepoBySlug(ctx context.Context, projectKey, slug string) (*latch.Repository, error)
	RepoByID(ctx context.Context, id int64) (*latch.Repository, error)
	// ListRepos lists repositories ordered by project key then slug, each
	// with its Project filled in.
	ListRepos(ctx context.Context, f RepoFilter, p Page) ([]latch.Repository, error)
	UpdateRepo(ctx context.Context, r *latch.Repository) error
	DeleteRepo(ctx context.Context, id int64) error
}

// Permissions stores global, project and repository grants. A resource of
// zero value means global; RepoID 0 means the project.
type Permissions interface {
	SetPermission(ctx context.Context, r latch.Resource, s Subject, p latch.Permission) error
	RevokePermission(ctx context.Context, r latch.Resource, s Subject) error
	UserGrants(ctx context.Context, r latch.Resource, filter string, p Page) ([]UserGrant, error)
	GroupGrants(ctx context.Context, r latch.Resource, filter string, p Page) ([]GroupGrant, error)
	// DirectPermission returns the permission granted on r to exactly s, or "".
	DirectPermission(ctx context.Context, r latch.Resource, s Subject) (latch.Permission, error)
	// HighestAccess returns the highest levels a user holds anywhere:
	// globally, on any project and on any repository (project grants
	// counting for their repositories); a global ADMIN holds admin on all.
	HighestAccess(ctx context.Context, userID int64) (latch.Access, error)
}

// Secrets stores server-wide values such as the token digest key.
type Secrets interface {
	// Setting returns a stored value and whether it was present.
	Setting(ctx context.Context, key string) (string, bool, error)
	PutSetting(ctx context.Context, key, value string) error
}

// Listing methods return at most Page.Limit+1 rows so that callers can tell
// whether another page follows without a count query.
