package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
	// verifyHook, when set, replaces VerifyPassword, so that tests can count
	// the argon2id checks.
	verifyHook func(encoded, password string) bool
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
	if a.limiter != nil {
		if err := a.limiter.CheckAddr(at.Addr); err != nil {
			return nil, err
		}
	}
	var p *latch.Principal
	var err error
	account := ""
	kind, perr := token.Parse(at.Secret)
	switch {
	case perr == nil:
		if a.tokens == nil {
			err = ErrBadCredentials
		} else {
			p, err = a.tokens.ResolveToken(ctx, at.Secret, kind, at)
		}
	case at.Scheme == SchemeBearer || !errors.Is(perr, token.ErrFormat):
		// A bearer secret or a token with a bad checksum or kind: refused
		// before any database query, and never tried as a password.
		err = ErrBadCredentials
	default:
		p, account, err = a.authenticatePassword(ctx, at)
	}
	if err != nil {
		a.failed(ctx, at, account, err)
		return nil, err
	}
	if a.limiter != nil && account != "" {
		a.limiter.Succeeded(account)
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

// failed counts and audits a failed attempt. account is the limiter's key
// of the account a password was tried against, "" for tokens: tokens cannot
// be guessed, and locking an account on token failures would let anyone
// lock out a user's integrations.
func (a *Authenticator) failed(ctx context.Context, at Attempt, account string, err error) {
	var limited *RateLimited
	if errors.As(err, &limited) {
		return // already audited when the lock began
	}
	counts := errors.Is(err, latch.ErrUnauthorized) || errors.Is(err, errSysAdminWrongPassword)
	// A password presented on REST while REST passwords are off counts
	// against the client address alone, so that a client cannot add audit
	// rows without bound, nor lock anyone's account.
	addrOnly := !counts && errors.Is(err, ErrBasicDisabled)
	if !counts && !addrOnly && !errors.Is(err, ErrPasswordForGitDisabled) {
		return // an internal error, not the client's failure
	}
	login := safeLogin(at.Username)
	e := store.AuditEvent{ActorName: login, Outcome: audit.Refused, Address: addrString(at.Addr)}
	var r *Refused
	if errors.As(err, &r) {
		e.Type, e.CredentialID, e.Target, e.Detail = audit.TokenRefused, r.TokenID, "token:"+r.TokenID, r.Reason.Error()
		if r.Owner != "" {
			e.ActorID, e.ActorName = r.OwnerID, r.Owner
		}
	} else {
		e.Type, e.Target, e.Detail = audit.LoginFailed, "user:"+login, "bad credentials"
		if !counts {
			e.Detail = err.Error()
		}
	}
	a.audit.Record(ctx, e)
	if a.limiter == nil || !counts && !addrOnly {
		return
	}
	if addrOnly {
		account = ""
	}
	if a.limiter.Failed(account, at.Addr) {
		e.Type, e.Detail = audit.RateLimited, "too many failed authentications"
		a.audit.Record(ctx, e)
	}
}

// safeLogin is the presented user name as the audit trail may record it:
// clients that put a token in the user name position have it redacted.
func safeLogin(name string) string {
	if _, err := token.ParseAnyKind(name); err == nil || errors.Is(err, token.ErrChecksum) || len(name) > 255 {
		return token.Redact(name)
	}
	return name
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// errSysAdminWrongPassword marks a wrong system administrator password while
// REST passwords are off: answered like ErrBasicDisabled, so that the answer
// does not reveal who is a system administrator, but counted as a failure.
var errSysAdminWrongPassword = errors.New("wrong password")

type basicDisabledFailure struct{}

func (basicDisabledFailure) Error() string { return ErrBasicDisabled.Message }

func (basicDisabledFailure) Is(target error) bool {
	return target == ErrBasicDisabled || target == errSysAdminWrongPassword
}

// accountKey names an account for the limiter: the user's name when the
// login (name or email) is known, else the login itself, compared without
// case, so that every alias of one account shares one counter.
func accountKey(u *latch.User, login string) string {
	if u != nil {
		login = u.Name
	}
	return strings.ToLower(login)
}

// authenticatePassword checks a user's password, applying the password
// policy and the account lock. It returns the account's limiter key.
func (a *Authenticator) authenticatePassword(ctx context.Context, at Attempt) (*latch.Principal, string, error) {
	login, password := at.Username, at.Secret
	pol := a.settings().Auth
	if at.Via == ViaGit && !pol.PasswordForGit {
		return nil, "", ErrPasswordForGitDisabled
	}
	u, err := a.users.UserByNameOrEmail(ctx, login)
	if err != nil && !errors.Is(err, latch.ErrNotFound) {
		return nil, "", fmt.Errorf("authenticate: %w", err)
	}
	if err != nil {
		u = nil
	}
	account := accountKey(u, login)
	if at.Via == ViaREST && !pol.PasswordForRest {
		return a.passwordRestOff(ctx, u, account, password)
	}
	if a.limiter != nil {
		if err := a.limiter.CheckAccount(account); err != nil {
			return nil, "", err
		}
	}
	if len(password) > MaxPasswordLen || u == nil {
		// Spend the same time as a real check so that user names cannot be
		// probed by timing.
		a.verify(a.dummyHash(), password)
		return nil, account, ErrBadCredentials
	}
	hash, err := a.users.PasswordHash(ctx, u.ID)
	if err != nil && !errors.Is(err, latch.ErrNotFound) {
		return nil, "", fmt.Errorf("authenticate: %w", err)
	}
	if hash == "" {
		// A user without a password takes as long as one with.
		a.verify(a.dummyHash(), password)
		return nil, account, ErrBadCredentials
	}
	if !a.verify(hash, password) || !u.Active || u.Type != latch.UserNormal {
		return nil, account, ErrBadCredentials
	}
	return &latch.Principal{User: u, Credential: latch.CredPassword}, account, nil
}

// passwordRestOff checks a password presented on REST while REST passwords
// are off: system administrators keep password access so that they cannot
// lock themselves out; for everyone else the answer is ErrBasicDisabled
// whatever the password. u is nil for an unknown login.
//
// The work is the same for every name, so that neither the answer nor its
// time tells which accounts exist or which are system administrators: a
// known user's access and password hash are read whether or not they are a
// system administrator, and exactly one argon2id check runs, against the
// stored hash for a system administrator whose account is not locked and
// against the dummy hash for everyone else. A locked system administrator
// is answered ErrBasicDisabled too, not a *RateLimited naming the account.
// Only a system administrator's wrong password counts against the account;
// the other refusals count against the client address alone (see failed),
// so that nobody can lock other users out.
func (a *Authenticator) passwordRestOff(ctx context.Context, u *latch.User, account, password string) (*latch.Principal, string, error) {
	sysAdmin, hash := false, ""
	if u != nil {
		acc, err := a.users.Access(ctx, u.ID, latch.Resource{})
		if err != nil {
			return nil, "", fmt.Errorf("authenticate: %w", err)
		}
		sysAdmin = latch.Decide(&latch.Principal{User: u, Credential: latch.CredPassword},
			latch.SysAdminInstance, latch.Resource{}, acc).Allowed
		hash, err = a.users.PasswordHash(ctx, u.ID)
		if err != nil && !errors.Is(err, latch.ErrNotFound) {
			return nil, "", fmt.Errorf("authenticate: %w", err)
		}
	}
	if sysAdmin && a.limiter != nil && a.limiter.CheckAccount(account) != nil {
		sysAdmin = false
	}
	if !sysAdmin || hash == "" || len(password) > MaxPasswordLen {
		a.verify(a.dummyHash(), password)
		return nil, "", ErrBasicDisabled
	}
	if !a.verify(hash, password) || !u.Active || u.Type != latch.UserNormal {
		return nil, account, basicDisabledFailure{}
	}
	return &latch.Principal{User: u, Credential: latch.CredPassword}, account, nil
}

// verify checks password against an encoded hash, through the test hook
// when one is set.
func (a *Authenticator) verify(encoded, password string) bool {
	if a.verifyHook != nil {
		return a.verifyHook(encoded, password)
	}
	return VerifyPassword(encoded, password)
}

func (a *Authenticator) dummyHash() string {
	a.dummyOnce.Do(func() { a.dummy, _ = HashPassword("latch-dummy-password") })
	return a.dummy
}
