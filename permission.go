package latch

import "fmt"

// Permission is a Bitbucket Data Center permission name.
type Permission string

// Permission names.
const (
	LicensedUser  Permission = "LICENSED_USER"
	ProjectCreate Permission = "PROJECT_CREATE"
	Admin         Permission = "ADMIN"
	SysAdmin      Permission = "SYS_ADMIN"
	ProjectRead   Permission = "PROJECT_READ"
	ProjectWrite  Permission = "PROJECT_WRITE"
	ProjectAdmin  Permission = "PROJECT_ADMIN"
	RepoRead      Permission = "REPO_READ"
	RepoWrite     Permission = "REPO_WRITE"
	RepoAdmin     Permission = "REPO_ADMIN"
)

// Level orders permissions within one scope: none < read < write < admin.
// Global levels use the same scale: LICENSED_USER is Read, PROJECT_CREATE is
// Write, ADMIN is Admin and SYS_ADMIN is SysAdminLevel.
type Level int

// Levels.
const (
	LevelNone Level = iota
	LevelRead
	LevelWrite
	LevelAdmin
	LevelSysAdmin
)

// Scope is what a permission applies to.
type Scope int

// Scopes.
const (
	ScopeGlobal Scope = iota
	ScopeProject
	ScopeRepo
)

var permissionTable = map[Permission]struct {
	scope Scope
	level Level
}{
	LicensedUser:  {ScopeGlobal, LevelRead},
	ProjectCreate: {ScopeGlobal, LevelWrite},
	Admin:         {ScopeGlobal, LevelAdmin},
	SysAdmin:      {ScopeGlobal, LevelSysAdmin},
	ProjectRead:   {ScopeProject, LevelRead},
	ProjectWrite:  {ScopeProject, LevelWrite},
	ProjectAdmin:  {ScopeProject, LevelAdmin},
	RepoRead:      {ScopeRepo, LevelRead},
	RepoWrite:     {ScopeRepo, LevelWrite},
	RepoAdmin:     {ScopeRepo, LevelAdmin},
}

// ParsePermission parses a permission name and checks that it belongs to scope.
func ParsePermission(s string, scope Scope) (Permission, error) {
	p := Permission(s)
	e, ok := permissionTable[p]
	if !ok || e.scope != scope {
		return "", Invalidf("Invalid permission %q.", s)
	}
	return p, nil
}

// Scope returns the scope the permission applies to.
func (p Permission) Scope() Scope { return permissionTable[p].scope }

// Level returns the permission's level within its scope.
func (p Permission) Level() Level { return permissionTable[p].level }

// PermissionFor returns the permission name of level l in scope s, or "" for
// LevelNone.
func PermissionFor(s Scope, l Level) Permission {
	for p, e := range permissionTable {
		if e.scope == s && e.level == l {
			return p
		}
	}
	return ""
}

func (l Level) String() string {
	switch l {
	case LevelNone:
		return "NONE"
	case LevelRead:
		return "READ"
	case LevelWrite:
		return "WRITE"
	case LevelAdmin:
		return "ADMIN"
	case LevelSysAdmin:
		return "SYS_ADMIN"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}
