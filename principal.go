package latch

import (
	"context"
	"net/netip"
)

// CredentialKind names how a principal authenticated.
type CredentialKind string

// Credential kinds.
const (
	CredAnonymous     CredentialKind = ""
	CredPassword      CredentialKind = "password"
	CredPersonalToken CredentialKind = "personal-token"
	CredProjectToken  CredentialKind = "project-token"
	CredRepoToken     CredentialKind = "repository-token"
	CredAPIToken      CredentialKind = "api-token"
	CredOAuth         CredentialKind = "oauth"
	CredUserKey       CredentialKind = "ssh-key"
	CredAccessKey     CredentialKind = "access-key"
)

// IsToken reports whether the credential is a bearer secret that may not act
// on credentials or accounts.
func (k CredentialKind) IsToken() bool {
	switch k {
	case CredPersonalToken, CredProjectToken, CredRepoToken, CredAPIToken, CredOAuth:
		return true
	}
	return false
}

// Grant is one permission level on one project (RepoID 0) or repository.
type Grant struct {
	Resource Resource
	Level    Level
}

// Limits bound what a credential grants, on top of its owner's access.
type Limits struct {
	Project Level // ceiling on project actions
	Repo    Level // ceiling on repository content and settings
}

// Principal is who a request acts as, resolved from exactly one credential.
type Principal struct {
	// User is the acting user; nil for anonymous requests and access keys.
	User *User
	// Credential is how the principal authenticated.
	Credential CredentialKind
	// CredentialID is the credential's non-secret id (token id, key id).
	CredentialID string
	// Limits caps the access that the owner's permissions, or Grants, give;
	// nil means no cap.
	Limits *Limits
	// Grants, when non-nil, is the principal's whole access: it does not
	// derive from a user's permissions (project and repository tokens,
	// access keys).
	Grants []Grant
	// ExpiresAt is the credential's expiry in epoch milliseconds, 0 for none.
	ExpiresAt int64
	// AllowedCIDRs restricts where the credential may be used from.
	AllowedCIDRs []netip.Prefix
}

// Anonymous is the principal of a request without credentials.
var Anonymous = &Principal{}

// IsAnonymous reports whether p carries no credential.
func (p *Principal) IsAnonymous() bool { return p == nil || (p.User == nil && p.Grants == nil) }

// UserID returns the acting user's id, or 0.
func (p *Principal) UserID() int64 {
	if p == nil || p.User == nil {
		return 0
	}
	return p.User.ID
}

// Action is something a principal may do.
type Action int

// Actions, from reading a repository to administering the instance.
const (
	// ReadRepo: clone, fetch, view a repository.
	ReadRepo Action = iota + 1
	// WriteRepo: push.
	WriteRepo
	// AdminRepo: repository settings, permissions, deletion, repository tokens, access keys.
	AdminRepo
	// ReadProject: view a project.
	ReadProject
	// AdminProject: project settings, permissions, deletion, creating repositories, project tokens and keys.
	AdminProject
	// CreateProject: create a project (global PROJECT_CREATE).
	CreateProject
	// AdminInstance: manage users, groups and global permissions (global ADMIN).
	AdminInstance
	// SysAdminInstance: system settings, granting SYS_ADMIN.
	SysAdminInstance
	// Authenticated: anything that only needs a signed-in user (list users).
	Authenticated
	// ManageCredentials: create, change or delete tokens, keys, passwords and
	// accounts. Never allowed to a token, as in Data Center.
	ManageCredentials
	// WriteProject: what PROJECT_WRITE allows on a project (listing filters).
	WriteProject
)

// need is what an action requires, with the permission that names it.
type need struct {
	scope    Scope
	level    Level
	required Permission
}

// actionNeeds is indexed by Action; the zero entry is no action.
var actionNeeds = [...]need{
	ReadRepo:          {ScopeRepo, LevelRead, RepoRead},
	WriteRepo:         {ScopeRepo, LevelWrite, RepoWrite},
	AdminRepo:         {ScopeRepo, LevelAdmin, RepoAdmin},
	ReadProject:       {ScopeProject, LevelRead, ProjectRead},
	AdminProject:      {ScopeProject, LevelAdmin, ProjectAdmin},
	CreateProject:     {ScopeGlobal, LevelWrite, ProjectCreate},
	AdminInstance:     {ScopeGlobal, LevelAdmin, Admin},
	SysAdminInstance:  {ScopeGlobal, LevelSysAdmin, SysAdmin},
	Authenticated:     {ScopeGlobal, LevelNone, LicensedUser},
	ManageCredentials: {ScopeGlobal, LevelNone, LicensedUser},
	WriteProject:      {ScopeProject, LevelWrite, ProjectWrite},
}

// ActionFor returns the action that permission p allows on its project or
// repository, and false for global permissions.
func ActionFor(p Permission) (Action, bool) {
	for a, n := range actionNeeds {
		if a != 0 && n.required == p && n.scope != ScopeGlobal {
			return Action(a), true
		}
	}
	return 0, false
}

func needOf(a Action) (need, bool) {
	if a <= 0 || int(a) >= len(actionNeeds) {
		return need{}, false
	}
	return actionNeeds[a], true
}

// Required returns the permission an action needs, for messages.
func (a Action) Required() Permission {
	n, _ := needOf(a)
	return n.required
}

// Access is what a user holds on one resource, with every inheritance
// applied: the repository level already includes project and global grants.
type Access struct {
	Global  Level
	Project Level
	Repo    Level
}

// Decision is the answer to "may this principal do this action on this
// resource".
type Decision struct {
	// Allowed is the answer.
	Allowed bool
	// Visible reports whether the principal may know the resource exists
	// (it may read it); transports answer "not found" when it may not.
	Visible bool
	// Required is the permission that was needed.
	Required Permission
}

// Decide is the one authorization decision. It is pure: held is the access
// the principal's user holds now on r (ignored when the principal carries its
// own grants), and the credential's limits, bounds and kind are applied on
// top. Everything not explicitly allowed is denied.
func Decide(p *Principal, a Action, r Resource, held Access) Decision {
	need, ok := needOf(a)
	d := Decision{Required: need.required}
	if !ok || p == nil {
		return d
	}
	eff := effectiveAccess(p, r, held)
	d.Visible = visible(eff, r)
	switch a {
	case ManageCredentials:
		d.Allowed = p.User != nil && p.User.Active && p.Grants == nil && !p.Credential.IsToken() && p.Credential != CredAnonymous
		return d
	case Authenticated:
		d.Allowed = !p.IsAnonymous()
		return d
	}
	switch need.scope {
	case ScopeGlobal:
		d.Allowed = eff.Global >= need.level
	case ScopeProject:
		d.Allowed = r.ProjectID != 0 && eff.Project >= need.level
	case ScopeRepo:
		d.Allowed = r.RepoID != 0 && eff.Repo >= need.level
	}
	return d
}

func visible(eff Access, r Resource) bool {
	if r.RepoID != 0 {
		return eff.Repo >= LevelRead
	}
	if r.ProjectID != 0 {
		return eff.Project >= LevelRead
	}
	return true
}

func effectiveAccess(p *Principal, r Resource, held Access) Access {
	var eff Access
	switch {
	case p.Grants != nil:
		eff = grantAccess(p.Grants, r)
	case p.User == nil:
		// Anonymous: only what is public, which held already reflects.
		return Access{Project: min(held.Project, LevelRead), Repo: min(held.Repo, LevelRead)}
	case !p.User.Active:
		return Access{}
	default:
		eff = held
	}
	if p.Limits != nil {
		eff.Project = min(eff.Project, p.Limits.Project)
		eff.Repo = min(eff.Repo, p.Limits.Repo)
		// Tokens carry no global permissions beyond being a licensed user.
		eff.Global = min(eff.Global, LevelRead)
	}
	return eff
}

// grantAccess evaluates a self-contained principal's grants on r. A grant on a
// project applies to the project and to every repository in it.
func grantAccess(grants []Grant, r Resource) Access {
	var a Access
	for _, g := range grants {
		switch {
		case g.Resource.RepoID != 0:
			if r.RepoID == g.Resource.RepoID {
				a.Repo = max(a.Repo, g.Level)
			}
		case g.Resource.ProjectID != 0 && g.Resource.ProjectID == r.ProjectID:
			a.Project = max(a.Project, g.Level)
			if r.RepoID != 0 {
				a.Repo = max(a.Repo, g.Level)
			}
		}
	}
	return a
}

// AccessSource tells what a user holds on a resource now. User id 0 asks for
// what anonymous users hold (public projects and repositories).
type AccessSource interface {
	Access(ctx context.Context, userID int64, r Resource) (Access, error)
}

// Authorizer answers authorization questions by reading the principal's
// current access from an AccessSource and applying Decide.
type Authorizer struct {
	src AccessSource
}

// NewAuthorizer returns an Authorizer reading access from src.
func NewAuthorizer(src AccessSource) *Authorizer { return &Authorizer{src: src} }

// Authorize decides whether p may perform a on r.
func (z *Authorizer) Authorize(ctx context.Context, p *Principal, a Action, r Resource) (Decision, error) {
	if p == nil {
		p = Anonymous
	}
	var held Access
	if p.Grants == nil {
		var err error
		held, err = z.src.Access(ctx, p.UserID(), r)
		if err != nil {
			return Decision{}, err
		}
	}
	return Decide(p, a, r, held), nil
}
