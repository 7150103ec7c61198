package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/batch"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// TokenStore is what token authentication reads and writes.
type TokenStore interface {
	TokenAuthByDigest(ctx context.Context, d []byte) (*store.TokenAuth, error)
	RevokedTokenByDigest(ctx context.Context, d []byte) (*store.RevokedToken, error)
	RecordTokenUse(ctx context.Context, uses []store.TokenUse) error
	RecordTokenAddress(ctx context.Context, id, address string, at int64) (bool, error)
}

// cachedToken is what a cache entry holds: the token and its owner as read
// from the store, the principal it acts as (built once), and whether the
// entry was found through the previous (rotated-out) digest.
type cachedToken struct {
	tok       store.AccessToken
	user      latch.User
	groups    []string
	principal latch.Principal
	prev      bool
}

type tokenAddr struct {
	id   string
	addr netip.Addr
}

// Cache sizing: entries are small, so 100,000 of them fit in a few
// megabytes; the TTL bounds staleness where invalidation cannot reach.
const (
	tokenCacheSize = 100_000
	tokenCacheTTL  = 5 * time.Minute
)

// Tokens authenticates latch access tokens: one keyed digest, then a cache
// hit keyed by digest or one indexed lookup. It never writes per request:
// last use is batched by its UseTracker.
type Tokens struct {
	st     TokenStore
	hasher *token.Hasher
	cache  *expirable.LRU[token.Digest, *cachedToken]
	// seen holds the (token, address) pairs this node knows are recorded;
	// it outlives purges of the token cache.
	seen *expirable.LRU[tokenAddr, struct{}]
	// gen counts invalidations, so that a read racing one is not cached.
	gen    atomic.Uint64
	uses   *UseTracker
	policy Policy
	audit  audit.Recorder
	now    func() time.Time
}

// NewTokens returns a token authenticator over st, hashing with hasher. uses,
// policy and rec may be nil.
func NewTokens(st TokenStore, hasher *token.Hasher, uses *UseTracker, policy Policy, rec audit.Recorder) *Tokens {
	if rec == nil {
		rec = audit.Nop{}
	}
	return &Tokens{
		st: st, hasher: hasher, uses: uses, policy: policy, audit: rec, now: time.Now,
		cache: expirable.NewLRU[token.Digest, *cachedToken](tokenCacheSize, nil, tokenCacheTTL),
		seen:  expirable.NewLRU[tokenAddr, struct{}](tokenCacheSize, nil, time.Hour),
	}
}

// SetClock replaces the clock, for tests.
func (t *Tokens) SetClock(now func() time.Time) { t.now = now }

// Hasher returns the digest function tokens are stored under.
func (t *Tokens) Hasher() *token.Hasher { return t.hasher }

// Refusal reasons, for the audit trail and logs; clients see only
// ErrBadCredentials.
var (
	ErrTokenExpired   = errors.New("token expired")
	ErrTokenRevoked   = errors.New("token revoked or unknown")
	ErrTokenWrongUser = errors.New("token presented with another user's name")
	ErrTokenBasic     = errors.New("project and repository tokens are accepted only as Bearer")
	ErrOwnerInactive  = errors.New("token owner deleted or inactive")
	ErrNotInUseGroups = errors.New("token owner is not in a group allowed to use tokens")
)

// Refused wraps the reason a token was refused; it answers like
// ErrBadCredentials.
type Refused struct {
	Reason  error
	TokenID string
	// Owner names the token's owner, when known, for the audit trail.
	OwnerID int64
	Owner   string
}

func (r *Refused) Error() string { return ErrBadCredentials.Message }

// Unwrap lets errors.Is match both the reason and ErrUnauthorized.
func (r *Refused) Unwrap() []error { return []error{r.Reason, ErrBadCredentials} }

// ResolveToken implements TokenResolver.
func (t *Tokens) ResolveToken(ctx context.Context, secret string, kind token.Kind, at Attempt) (*latch.Principal, error) {
	d := t.hasher.Digest(secret)
	e, ok := t.cache.Get(d)
	if !ok {
		gen := t.gen.Load()
		var err error
		if e, err = t.load(ctx, d); err != nil {
			return nil, err
		}
		// A token revoked while it was being read must not be cached
		// after the flush that revocation caused.
		if t.gen.Load() == gen {
			t.cache.Add(d, e)
			// An invalidation between the check and the Add removes it.
			if t.gen.Load() != gen {
				t.cache.Remove(d)
			}
		}
	}
	now := t.now().UnixMilli()
	tok := &e.tok
	refuse := func(reason error) error {
		return &Refused{Reason: reason, TokenID: tok.ID, OwnerID: e.user.ID, Owner: e.user.Name}
	}
	switch {
	case tok.ExpiresAt != 0 && now >= tok.ExpiresAt:
		return nil, refuse(ErrTokenExpired)
	case e.prev && now >= tok.PrevExpiresAt:
		return nil, refuse(ErrTokenRevoked)
	case !e.user.Active:
		return nil, refuse(ErrOwnerInactive)
	case TokenKind(tok.Kind) != kind:
		return nil, refuse(ErrTokenRevoked)
	}
	if at.Scheme == SchemeBasic {
		if tok.Kind != latch.CredPersonalToken {
			return nil, refuse(ErrTokenBasic)
		}
		if at.Username != e.user.Name && !strings.EqualFold(at.Username, e.user.Email) {
			return nil, refuse(ErrTokenWrongUser)
		}
	}
	pol := settings.Default()
	if t.policy != nil {
		pol = t.policy.Current()
	}
	// useGroups names whose tokens work: people's. The service users behind
	// project and repository tokens belong to no group.
	if e.user.Type == latch.UserNormal && !settings.InGroups(pol.Tokens.UseGroups, e.groups) {
		return nil, refuse(ErrNotInUseGroups)
	}
	// Checked here, before the use is recorded: a refused use is no use.
	if !pol.Network.Allowed(at.Addr) || (len(e.principal.AllowedCIDRs) > 0 && !settings.InRanges(e.principal.AllowedCIDRs, at.Addr)) {
		return nil, refuse(ErrOutOfRange)
	}
	t.noteAddress(ctx, e, at.Addr, now)
	if t.uses != nil {
		t.uses.Used(tok.ID, now, at.Addr)
	}
	p := e.principal
	u := e.user
	p.User = &u
	return &p, nil
}

// load reads a token, its owner and the owner's groups (one query).
func (t *Tokens) load(ctx context.Context, d token.Digest) (*cachedToken, error) {
	a, err := t.st.TokenAuthByDigest(ctx, d[:])
	if errors.Is(err, latch.ErrNotFound) {
		// Name a revoked token and its owner in the audit trail.
		if r, rerr := t.st.RevokedTokenByDigest(ctx, d[:]); rerr == nil {
			return nil, &Refused{Reason: ErrTokenRevoked, TokenID: r.ID, Owner: r.Owner}
		}
		return nil, &Refused{Reason: ErrTokenRevoked}
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	e := &cachedToken{tok: a.Token, user: a.Owner, groups: a.Groups, prev: string(a.Token.Digest) != string(d[:])}
	e.principal = *PrincipalOf(&a.Token, &a.Owner)
	return e, nil
}

// noteAddress audits the first use of a token from an address, once: the
// pair is recorded in the store, and remembered here so that later uses
// cost nothing.
func (t *Tokens) noteAddress(ctx context.Context, e *cachedToken, addr netip.Addr, now int64) {
	if !addr.IsValid() {
		return
	}
	k := tokenAddr{e.tok.ID, addr}
	if t.seen.Contains(k) {
		return
	}
	first, err := t.st.RecordTokenAddress(ctx, e.tok.ID, addr.String(), now)
	if err != nil {
		return // audited next time
	}
	t.seen.Add(k, struct{}{})
	if first {
		t.audit.Record(ctx, store.AuditEvent{Type: audit.TokenNewAddress, ActorID: e.user.ID, ActorName: e.user.Name,
			CredentialKind: string(e.tok.Kind), CredentialID: e.tok.ID, Target: "token:" + e.tok.ID,
			Address: addr.String(), Detail: "first use from this address"})
	}
}

// TokenKind returns the secret's prefix for a kind of token credential, ""
// for other credentials.
func TokenKind(k latch.CredentialKind) token.Kind {
	switch k {
	case latch.CredPersonalToken:
		return token.Personal
	case latch.CredProjectToken, latch.CredRepoToken:
		return token.Repository
	case latch.CredAPIToken:
		return token.API
	case latch.CredOAuth:
		return token.OAuthAccess
	}
	return ""
}

// PrincipalOf builds the principal a stored token acts as.
func PrincipalOf(tok *store.AccessToken, owner *latch.User) *latch.Principal {
	u := *owner
	p := &latch.Principal{User: &u, Credential: tok.Kind, CredentialID: tok.ID, ExpiresAt: tok.ExpiresAt}
	lim := &latch.Limits{}
	for _, perm := range tok.Permissions {
		switch perm.Scope() {
		case latch.ScopeProject:
			lim.Project = max(lim.Project, perm.Level())
		case latch.ScopeRepo:
			lim.Repo = max(lim.Repo, perm.Level())
		}
	}
	p.Limits = lim
	switch tok.Kind {
	case latch.CredProjectToken:
		p.Grants = []latch.Grant{{Resource: latch.Resource{ProjectID: tok.ProjectID}, Level: latch.LevelAdmin}}
	case latch.CredRepoToken:
		p.Grants = []latch.Grant{{Resource: latch.Resource{ProjectID: tok.ProjectID, RepoID: tok.RepoID}, Level: latch.LevelAdmin}}
	}
	for _, c := range tok.AllowedCIDRs {
		if pfx, err := netip.ParsePrefix(c); err == nil {
			p.AllowedCIDRs = append(p.AllowedCIDRs, pfx)
		}
	}
	return p
}

// Invalidate drops every cached token; it is called whenever a token, a
// user or a setting changes, so that the next request reads the store.
// Changes are rare next to reads, so a full flush keeps this simple and
// always correct.
func (t *Tokens) Invalidate() {
	t.gen.Add(1)
	t.cache.Purge()
}

// UseTracker batches the last use of each token (see package batch): a
// token is written at most once per interval, never on the request path.
type UseTracker struct {
	b *batch.Batcher[string, store.TokenUse]
}

// NewUseTracker returns a tracker that writes every interval.
func NewUseTracker(st TokenStore, interval time.Duration, log *slog.Logger) *UseTracker {
	return &UseTracker{b: batch.New(batch.Config[string, store.TokenUse]{
		Write:    st.RecordTokenUse,
		Key:      func(u store.TokenUse) string { return u.ID },
		Newer:    func(a, b store.TokenUse) bool { return a.At > b.At },
		Interval: interval, Log: log, What: "token use",
	})}
}

// Used notes that token id was used at (epoch ms) from addr.
func (u *UseTracker) Used(id string, at int64, addr netip.Addr) {
	a := ""
	if addr.IsValid() {
		a = addr.String()
	}
	u.b.Add(store.TokenUse{ID: id, At: at, Address: a})
}

// Pending returns the not yet written use of token id, if any.
func (u *UseTracker) Pending(id string) (store.TokenUse, bool) { return u.b.Pending(id) }

// Flush writes the pending uses now.
func (u *UseTracker) Flush(ctx context.Context) error {
	if err := u.b.Flush(ctx); err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	return nil
}

// Close stops the background writes and writes what is pending.
func (u *UseTracker) Close(ctx context.Context) error { return u.b.Close(ctx) }

// TokenChanged drops cached tokens after a token was updated or revoked.
func (t *Tokens) TokenChanged(context.Context, string) { t.Invalidate() }

// UserChanged drops cached tokens after a user or their permissions changed.
func (t *Tokens) UserChanged(context.Context, int64) { t.Invalidate() }

// Pending reports a use of token id that is not stored yet.
func (t *Tokens) Pending(id string) (store.TokenUse, bool) {
	if t.uses == nil {
		return store.TokenUse{}, false
	}
	return t.uses.Pending(id)
}
