package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/store"
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

// ErrBasicDisabled answers password authentication on REST when
// administrators turned it off.
var ErrBasicDisabled = &latch.Error{Kind: latch.ErrForbidden, Message: "Basic Authentication has been disabled on this instance."}

// ErrPasswordForGitDisabled answers password authentication on Git when
// administrators turned it off.
var ErrPasswordForGitDisabled = &latch.Error{
	Kind:      latch.ErrUnauthorized,
	Message:   "Password authentication is disabled for Git on this instance: use a personal access token as the password.",
	Exception: latch.ExAuthentication,
}

// ErrOutOfRange is the reason a credential used from outside its allowed
// networks is refused.
var ErrOutOfRange = errors.New("credential used from outside its allowed address ranges")

// UserStore is what the authenticator reads about users.
type UserStore interface {
	UserByNameOrEmail(ctx context.Context, login string) (*latch.User, error)
	PasswordHash(ctx context.Context, userID int64) (string, error)
	latch.AccessSource
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

// Policy gives the settings in force.
type Policy interface {
	Current() *settings.Settings
}

// Authenticator resolves credentials to principals, applying the password
// and network policies and the brute-force limits, and records refusals in
// the audit trail.
type Authenticator struct {
	users   UserStore
	tokens  TokenResolver
	policy  Policy
	limiter *Limiter
	audit   audit.Recorder

	dummyOnce sync.Once
	dummy     string
}

// NewAuthenticator returns an Authenticator over users. Tokens are refused
// until SetTokenResolver is called. A nil policy means the default settings,
// a nil limiter no limits, a nil recorder no audit.
func NewAuthenticator(users UserStore, policy Policy, limiter *Limiter, rec audit.Recorder) *Authenticator {
	if rec == nil {
		rec = audit.Nop{}
	}
	return &Authenticator{users: users, policy: policy, limiter: limiter, audit: rec}
}

// SetTokenResolver installs the resolver for latch tokens.
func (a *Authenticator) SetTokenResolver(r TokenResolver) { a.tokens = r }

func (a *Authenticator) settings() *settings.Settings {
	if a.policy == nil {
		return settings.Default()
	}
	return a.policy.Current()
}

// Authenticate resolves at to a principal. No credentials yield
// latch.Anonymous; bad credentials ErrBadCredentials (or an error wrapping
// it); a locked account or address a *RateLimited.
func (a *Authenticator) Authenticate(ctx context.Context, at Attempt) (*latch.Principal, error) {
	if at.Scheme == SchemeNone {
		return latch.Anonymous, nil
	}
	login := ""
	if at.Scheme == SchemeBasic {
		login = at.Username
	}
	if a.limiter != nil {
		if err := a.limiter.Check(login, at.Addr); err != nil {
			return nil, err
		}
	}
	var p *latch.Principal
	var err error
	if at.Scheme == SchemeBearer || looksLikeToken(at.Secret) {
		p, err = a.authenticateToken(ctx, at)
	} else {
		p, err = a.authenticatePassword(ctx, at)
	}
	if err != nil {
		a.failed(ctx, at, login, err)
		return nil, err
	}
	if a.limiter != nil {
		a.limiter.Succeeded(login)
	}
	return p, nil
}

// CheckNetwork applies the instance's and the credential's address ranges
// to a principal authenticated elsewhere (SSH keys); tokens are checked as
// they are resolved. Passwords are not bound to networks.
func (a *Authenticator) CheckNetwork(p *latch.Principal, addr netip.Addr) error {
	if p.Credential == latch.CredPassword {
		return nil
	}
	if !a.settings().Network.Allowed(addr) ||
		(len(p.AllowedCIDRs) > 0 && !settings.InRanges(p.AllowedCIDRs, addr)) {
		return &Refused{Reason: ErrOutOfRange, TokenID: p.CredentialID}
	}
	return nil
}

// failed counts and audits a failed attempt.
func (a *Authenticator) failed(ctx context.Context, at Attempt, login string, err error) {
	if errors.Is(err, ErrBasicDisabled) || errors.Is(err, ErrPasswordForGitDisabled) {
		a.audit.Record(ctx, store.AuditEvent{Type: audit.LoginFailed, ActorName: login, Target: "user:" + login,
			Outcome: audit.Refused, Detail: err.Error(), Address: addrString(at.Addr)})
		return
	}
	if !errors.Is(err, latch.ErrUnauthorized) {
		return // an internal error, not the client's failure
	}
	var r *Refused
	if errors.As(err, &r) {
		a.audit.Record(ctx, store.AuditEvent{Type: audit.TokenRefused, ActorName: login, CredentialID: r.TokenID,
			Target: "token:" + r.TokenID, Outcome: audit.Refused, Detail: r.Reason.Error(), Address: addrString(at.Addr)})
	} else {
		a.audit.Record(ctx, store.AuditEvent{Type: audit.LoginFailed, ActorName: login, Target: "user:" + login,
			Outcome: audit.Refused, Detail: "bad credentials", Address: addrString(at.Addr)})
	}
	if a.limiter != nil && a.limiter.Failed(login, at.Addr) {
		a.audit.Record(ctx, store.AuditEvent{Type: audit.RateLimited, ActorName: login, Target: "user:" + login,
			Outcome: audit.Refused, Detail: "too many failed authentications", Address: addrString(at.Addr)})
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
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

func (a *Authenticator) authenticatePassword(ctx context.Context, at Attempt) (*latch.Principal, error) {
	login, password := at.Username, at.Secret
	if len(password) > MaxPasswordLen {
		return nil, ErrBadCredentials
	}
	pol := a.settings().Auth
	u, err := a.users.UserByNameOrEmail(ctx, login)
	if errors.Is(err, latch.ErrNotFound) {
		if at.Via == ViaREST && !pol.PasswordForRest {
			return nil, ErrBasicDisabled
		}
		if at.Via == ViaGit && !pol.PasswordForGit {
			return nil, ErrPasswordForGitDisabled
		}
		// Spend the same time as a real check so that user names cannot be
		// probed by timing.
		VerifyPassword(a.dummyHash(), password)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate %q: %w", login, err)
	}
	switch {
	case at.Via == ViaGit && !pol.PasswordForGit:
		return nil, ErrPasswordForGitDisabled
	case at.Via == ViaREST && !pol.PasswordForRest:
		// System administrators keep password access to REST so that they
		// cannot lock themselves out; for everyone else the password is
		// not even checked.
		acc, err := a.users.Access(ctx, u.ID, latch.Resource{})
		if err != nil {
			return nil, fmt.Errorf("authenticate %q: %w", login, err)
		}
		if acc.Global < latch.LevelSysAdmin {
			return nil, ErrBasicDisabled
		}
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
