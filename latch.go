// Package latch is the domain core of the latch Git server: users, groups,
// projects, repositories, permissions, credentials and the principal that every
// credential resolves to, and the one authorization decision that every
// transport asks. It depends on nothing below it; storage, Git, HTTP and SSH
// live in their own packages and are wired together in cmd/latch.
package latch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// UserType distinguishes people from the service users behind project and
// repository access tokens.
type UserType string

// User types, as Bitbucket Data Center names them.
const (
	UserNormal  UserType = "NORMAL"
	UserService UserType = "SERVICE"
)

// User is an account that can own credentials and hold permissions.
type User struct {
	ID          int64
	Name        string // login name, unique
	Slug        string // URL form of Name, unique
	DisplayName string
	Email       string
	Active      bool
	Type        UserType
	CreatedAt   int64 // epoch milliseconds
}

// Group is a named set of users that can be granted permissions.
type Group struct {
	ID   int64
	Name string
}

// Project holds repositories and the permissions that apply to all of them.
type Project struct {
	ID          int64
	Key         string // upper-case key, e.g. "PRJ"
	Name        string
	Description string
	Public      bool
}

// Repository is a Git repository inside a project.
type Repository struct {
	ID            int64
	ProjectID     int64
	Slug          string
	Name          string
	Description   string
	Public        bool
	DefaultBranch string
	Project       *Project // filled by lookups that join the project
}

// Resource names what an action is performed on. The zero value is the
// instance itself (global actions).
type Resource struct {
	ProjectID int64
	RepoID    int64
}

// Domain errors. Transports map them to status codes and envelopes.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// Error is a domain error with a message fit for the client and a kind that
// selects the status code (one of the sentinel errors above).
type Error struct {
	Kind    error
	Message string
	// Exception names the Data Center exception class, where one applies.
	Exception string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the kind, so that errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of the given kind.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Invalidf returns an ErrInvalid *Error.
func Invalidf(format string, args ...any) *Error { return Errorf(ErrInvalid, format, args...) }

// Data Center exception names used in error envelopes.
const (
	ExNoSuchProject    = "com.atlassian.bitbucket.project.NoSuchProjectException"
	ExNoSuchRepository = "com.atlassian.bitbucket.repository.NoSuchRepositoryException"
	ExNoSuchUser       = "com.atlassian.bitbucket.user.NoSuchUserException"
	ExNoSuchGroup      = "com.atlassian.bitbucket.user.NoSuchGroupException"
	ExAuthorisation    = "com.atlassian.bitbucket.AuthorisationException"
	ExAuthentication   = "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"
	ExValidation       = "com.atlassian.bitbucket.validation.ArgumentValidationException"
	ExDuplicate        = "com.atlassian.bitbucket.DuplicateEntityException"
	ExRateLimited      = "com.atlassian.bitbucket.ratelimit.RateLimitedException"
)

// NoSuchProject returns the error for an unknown project key.
func NoSuchProject(key string) *Error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf("Project %s does not exist.", key), Exception: ExNoSuchProject}
}

// NoSuchRepository returns the error for an unknown repository.
func NoSuchRepository(key, slug string) *Error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf("Repository %s/%s does not exist.", key, slug), Exception: ExNoSuchRepository}
}

// NoSuchUser returns the error for an unknown user.
func NoSuchUser(name string) *Error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf("User %s does not exist.", name), Exception: ExNoSuchUser}
}

// NoSuchGroup returns the error for an unknown group.
func NoSuchGroup(name string) *Error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf("Group %s does not exist.", name), Exception: ExNoSuchGroup}
}

var projectKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,127}$`)

// ValidateProjectKey applies Data Center's rules: a letter first, then
// letters, digits and underscores, at most 128 characters.
func ValidateProjectKey(key string) error {
	if !projectKeyRE.MatchString(key) {
		return Invalidf("Project keys must start with a letter and may only consist of ASCII letters, numbers and underscores (A-Z, a-z, 0-9, _), at most 128 characters.")
	}
	return nil
}

// ValidateName checks a project or repository name: non-empty, at most 128
// characters, printable UTF-8.
func ValidateName(what, name string) error {
	if strings.TrimSpace(name) == "" {
		return Invalidf("The %s name is required.", what)
	}
	if !utf8.ValidString(name) {
		return Invalidf("The %s name must be valid UTF-8.", what)
	}
	if len([]rune(name)) > 128 {
		return Invalidf("The %s name must be at most 128 characters.", what)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return Invalidf("The %s name contains characters that are not allowed.", what)
		}
	}
	return nil
}

// ValidateText checks free text (a description, a display name): valid
// UTF-8 without NUL characters, which neither database stores alike
// (PostgreSQL refuses them, SQLite keeps them).
func ValidateText(what, text string) error {
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return Invalidf("The %s must be valid UTF-8 without NUL characters.", what)
	}
	return nil
}

// Slugify turns a repository name into its slug as Data Center does:
// lower-case, runs of characters other than letters, digits, '-', '_' and '.'
// become one '-', and leading or trailing '-' are dropped ("Demo Repo" ->
// "demo-repo").
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.'
		if !ok {
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = r == '-'
	}
	return strings.Trim(b.String(), "-")
}

// UserSlug turns a user name into its URL slug.
func UserSlug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.' || r == '@' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
