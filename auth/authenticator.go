package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/token"
)

// Via names the transport a credential is presented on; policies such as
// "no passwords for Git" depend on it.
type Via int

// Transports.
const (
	ViaREST Via = iota
	ViaGit
	ViaSSH
)

// ErrBadCredentials is the one answer to every failed authentication, so that
// a client cannot tell an unknown user from a wrong secret.
var ErrBadCredentials = &latch.Error{
	Kind:      latch.ErrUnauthorized,
	Message:   "Authentication failed. Please check your credentials and try again.",
	Exception: latch.ExAuthentication,
}

// UserStore is what the authenticator reads about users.
type UserStore interface {
	UserByNameOrEmail(ctx context.Context, login string) (*latch.User, error)
	PasswordHash(ctx context.Context, userID int64) (string, error)
}

// Attempt is one presentation of credentials: what was presented, on which
// transport, from which client address.
type Attempt struct {
	Credentials
	Via  Via
	Addr netip.Addr
}

// TokenResolver resolves a latch token (already checksum-validated) to a
// principal. In at, Username is the user name presented with the token in
// Basic authentication, "" for Bearer.
type TokenResolver interface {
	ResolveToken(ctx context.Context, secret string, kind token.Kind, at Attempt) (*latch.Principal, error)
}

// Authenticator resolves credentials to principals.
type Authenticator struct {
	users  UserStore
	tokens TokenResolver

	dummyOnce sync.Once
	dummy     string
}

// NewAuthenticator returns an Authenticator over users. Tokens are refused
// until SetTokenResolver is called.
func NewAuthenticator(users UserStore) *Authenticator { return &Authenticator{users: users} }

// SetTokenResolver installs the resolver for latch tokens.
func (a *Authenticator) SetTokenResolver(r TokenResolver) { a.tokens = r }

// Authenticate resolves c to a principal. No credentials yield
// latch.Anonymous; bad credentials yield ErrBadCredentials.
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (*latch.Principal, error) {
	switch at.Scheme {
	case SchemeNone:
		return latch.Anonymous, nil
	case SchemeBearer, SchemeBasic:
		if at.Scheme == SchemeBearer || looksLikeToken(at.Secret) {
			return a.authenticateToken(ctx, at)
		}
		return a.authenticatePassword(ctx, at.Username, at.Secret)
	}
	return nil, ErrBadCredentials
}

// looksLikeToken reports whether a secret has the shape of a latch token,
// checksum aside: such a secret is never tried as a password.
func looksLikeToken(s string) bool {
	_, err := token.ParseAnyKind(s)
	return err == nil || errors.Is(err, token.ErrChecksum)
}

func (a *Authenticator) authenticateToken(ctx context.Context, at Attempt) (*latch.Principal, error) {
	kind, err := token.Parse(at.Secret)
	if err != nil || a.tokens == nil {
		// Refused before any database query.
		return nil, ErrBadCredentials
	}
	return a.tokens.ResolveToken(ctx, at.Secret, kind, at)
}

func (a *Authenticator) authenticatePassword(ctx context.Context, login, password string) (*latch.Principal, error) {
	if len(password) > MaxPasswordLen {
		return nil, ErrBadCredentials
	}
	u, err := a.users.UserByNameOrEmail(ctx, login)
	if errors.Is(err, latch.ErrNotFound) {
		// Spend the same time as a real check so that user names cannot be
		// probed by timing.
		VerifyPassword(a.dummyHash(), password)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate %q: %w", login, err)
	}
	hash, err := a.users.PasswordHash(ctx, u.ID)
	if err != nil && !errors.Is(err, latch.ErrNotFound) {
		return nil, fmt.Errorf("authenticate %q: %w", login, err)
	}
	if !VerifyPassword(hash, password) || !u.Active || u.Type != latch.UserNormal {
		return nil, ErrBadCredentials
	}
	return &latch.Principal{User: u, Credential: latch.CredPassword}, nil
}

func (a *Authenticator) dummyHash() string {
	a.dummyOnce.Do(func() { a.dummy, _ = HashPassword("latch-dummy-password") })
	return a.dummy
}
