package store

import (
	"context"

	"github.com/latchhq/latch"
)

// AccessToken is the stored form of an HTTP access token: everything but the
// secret, of which only the keyed digest is kept.
type AccessToken struct {
	ID     string // 12 decimal digits, non-secret
	Kind   latch.CredentialKind
	Name   string
	UserID int64 // the owner; for project and repository tokens, their service user
	// ProjectID and RepoID bind project and repository tokens.
	ProjectID   int64
	RepoID      int64
	Permissions []latch.Permission
	// AllowedCIDRs restricts where the token may be used from; empty allows all.
	AllowedCIDRs []string
	Digest       []byte
	// PrevDigest and PrevExpiresAt keep a rotated-out secret valid for a grace period.
	PrevDigest        []byte
	PrevExpiresAt     int64
	CreatedAt         int64 // epoch ms
	ExpiresAt         int64 // epoch ms, 0 for never
	LastAuthenticated int64 // epoch ms, 0 for never
	LastAddress       string
	CreatedBy         int64
}

// TokenOwner selects the tokens of one user, project or repository.
type TokenOwner struct {
	UserID    int64
	ProjectID int64
	RepoID    int64
}

// TokenUse is one batched "last used" record.
type TokenUse struct {
	ID      string
	At      int64
	Address string
}

// TokenAuth is what authenticating with a token reads: the token, its owner
// and the names of the owner's groups, sorted.
type TokenAuth struct {
	Token  AccessToken
	Owner  latch.User
	Groups []string
}

// Tokens stores HTTP access tokens.
type Tokens interface {
	CreateToken(ctx context.Context, t *AccessToken) error
	// TokenByDigest finds the token whose current, or still-valid previous,
	// digest equals d: one indexed equality lookup.
	TokenByDigest(ctx context.Context, d []byte) (*AccessToken, error)
	// TokenAuthByDigest finds the token as TokenByDigest does, with its
	// owner and the owner's groups, in one round trip to the database.
	TokenAuthByDigest(ctx context.Context, d []byte) (*TokenAuth, error)
	TokenByID(ctx context.Context, id string) (*AccessToken, error)
	// ListTokens lists the tokens of exactly one owner: a user's personal
	// tokens (ProjectID and RepoID zero), a project's tokens (RepoID zero) or
	// a repository's, newest first.
	ListTokens(ctx context.Context, o TokenOwner, p Page) ([]AccessToken, error)
	// CountTokens counts the tokens of exactly one owner, as ListTokens
	// lists them.
	CountTokens(ctx context.Context, o TokenOwner) (int, error)
	// LockOwner locks the owner (the user, project or repository row)
	// until the transaction ends, so that concurrent creations of tokens or
	// SSH keys for one owner take turns and a count then insert cannot
	// exceed a limit.
	LockOwner(ctx context.Context, o TokenOwner) error
	// UpdateToken saves Name, Permissions and AllowedCIDRs; never the
	// digests, which only RotateTokenDigest changes.
	UpdateToken(ctx context.Context, t *AccessToken) error
	// RotateTokenDigest replaces the digest of token id, if it is still old,
	// with next, keeping prev valid until prevExpiresAt (prev nil: none). It
	// reports false when the token was rotated or deleted meanwhile.
	RotateTokenDigest(ctx context.Context, id string, old, next, prev []byte, prevExpiresAt int64) (bool, error)
	DeleteToken(ctx context.Context, id string) error
	// RecordTokenUse stores a batch of last-used times, never moving one back.
	RecordTokenUse(ctx context.Context, uses []TokenUse) error
	// RecordTokenAddress remembers that token id was used from address and
	// reports whether that was the first time.
	RecordTokenAddress(ctx context.Context, id, address string, at int64) (bool, error)
}
