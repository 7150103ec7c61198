package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// Token limits.
const (
	// MaxExpiryDays is the longest expiry a token or SSH key may be given.
	MaxExpiryDays = 3650
	// DefaultMaxTokensPerOwner is the default of the per-owner token limit.
	DefaultMaxTokensPerOwner = 100
	maxTokenName             = 255
	maxTokenCIDRs            = 50
)

// TokenOwnerRef names whose tokens an operation is about: a user (by slug),
// a project, or a repository.
type TokenOwnerRef struct {
	UserSlug   string
	ProjectKey string
	RepoSlug   string
}

func (o TokenOwnerRef) kind() latch.CredentialKind {
	switch {
	case o.RepoSlug != "":
		return latch.CredRepoToken
	case o.ProjectKey != "":
		return latch.CredProjectToken
	}
	return latch.CredPersonalToken
}

// TokenInput is the body of a token create or update request. Nil fields are
// absent from the request.
type TokenInput struct {
	Name         *string
	Permissions  *[]string
	ExpiryDays   *int
	AllowedCIDRs *[]string
}

// TokenView is a token with its owner, as listings show it.
type TokenView struct {
	store.AccessToken
	Owner latch.User
	// Secret is set only in the response to creation (and rotation).
	Secret string
}

// TokenHooks is told about token changes so that caches can drop them.
type TokenHooks interface {
	TokenChanged(ctx context.Context, id string)
	// Pending reports a not yet stored use of the token, if any.
	Pending(id string) (store.TokenUse, bool)
}

// SetTokenHooks installs the receiver of token changes.
func (b *Backend) SetTokenHooks(h TokenHooks) { b.tokenHooks = h }

// SetHasher installs the digest function tokens are stored under.
func (b *Backend) SetHasher(h *token.Hasher) { b.hasher = h }

func (b *Backend) tokenChanged(ctx context.Context, id string) {
	if b.tokenHooks != nil {
		b.tokenHooks.TokenChanged(ctx, id)
	}
}

// tokenScope is a resolved TokenOwnerRef.
type tokenScope struct {
	// onBehalf is set when p acts on another user's tokens as a member of
	// the on-behalf groups.
	onBehalf bool
	kind     latch.CredentialKind
	user     *latch.User // personal tokens: their owner
	project  *latch.Project
	repo     *latch.Repository
}

func (s tokenScope) owner() store.TokenOwner {
	switch s.kind {
	case latch.CredRepoToken:
		return store.TokenOwner{ProjectID: s.repo.ProjectID, RepoID: s.repo.ID}
	case latch.CredProjectToken:
		return store.TokenOwner{ProjectID: s.project.ID}
	}
	return store.TokenOwner{UserID: s.user.ID}
}

// resolveTokenScope finds the owner of the tokens and authorizes p to manage
// them: a personal token's owner (with an interactive credential) or an
// administrator; a project's or repository's administrators. write asks
// for creating, changing or deleting rather than reading.
func (b *Backend) resolveTokenScope(ctx context.Context, p *latch.Principal, o TokenOwnerRef, write bool) (tokenScope, error) {
	s := tokenScope{kind: o.kind()}
	if write {
		// Tokens cannot act on credentials, whatever their permissions.
		if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
			return s, err
		}
	}
	switch s.kind {
	case latch.CredRepoToken:
		repo, err := b.lookupRepo(ctx, o.ProjectKey, o.RepoSlug)
		if err != nil {
			return s, err
		}
		s.repo, s.project = repo, repo.Project
		return s, b.authorize(ctx, p, latch.AdminRepo, resourceOf(repo))
	case latch.CredProjectToken:
		proj, err := b.store.ProjectByKey(ctx, o.ProjectKey)
		if err != nil {
			return s, err
		}
		s.project = proj
		return s, b.authorize(ctx, p, latch.AdminProject, latch.Resource{ProjectID: proj.ID})
	}
	u, err := b.store.UserBySlug(ctx, o.UserSlug)
	if err != nil {
		return s, err
	}
	s.user = u
	if p.UserID() == u.ID && p.Grants == nil {
		return s, nil
	}
	// Members of the on-behalf groups manage other users' tokens through
	// the same endpoints; administrators list, update and revoke them.
	onBehalf, err := b.inPolicyGroups(ctx, p, b.settings().Tokens.OnBehalfGroups, false)
	if err != nil {
		return s, err
	}
	if onBehalf && p.Grants == nil && !p.Credential.IsToken() {
		s.onBehalf = true
	} else if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return s, err
	}
	// Nobody acts on the tokens of a user who outranks them: an on-behalf
	// member could otherwise mint a system administrator's token.
	return s, b.requireOutrank(ctx, p, u.ID)
}

// CreateToken creates an access token and returns it with its secret, which
// is never available again.
func (b *Backend) CreateToken(ctx context.Context, p *latch.Principal, o TokenOwnerRef, in TokenInput) (*TokenView, error) {
	s, err := b.resolveTokenScope(ctx, p, o, true)
	if err != nil {
		return nil, err
	}
	if s.kind == latch.CredPersonalToken && p.UserID() != s.user.ID && !s.onBehalf {
		// Administrators manage others' tokens but do not mint them.
		return nil, &Denied{Decision: latch.Decision{Visible: true},
			Reason: "Only the user, or a member of a group allowed to act on behalf of others, may create a user's tokens."}
	}
	if ok, err := b.inPolicyGroups(ctx, p, b.settings().Tokens.CreateGroups, true); err != nil {
		return nil, err
	} else if !ok {
		return nil, &Denied{Decision: latch.Decision{Visible: true}, Reason: "You are not in a group allowed to create access tokens."}
	}
	if err := b.checkExpiryPolicy(in.ExpiryDays); err != nil {
		return nil, err
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return nil, latch.Invalidf("A token name is required.")
	}
	if len(*in.Name) > maxTokenName {
		return nil, latch.Invalidf("The token name must be at most %d characters.", maxTokenName)
	}
	if err := latch.ValidateText("token name", *in.Name); err != nil {
		return nil, err
	}
	now := b.now()
	t := &store.AccessToken{Kind: s.kind, Name: *in.Name, CreatedAt: now.UnixMilli(), CreatedBy: p.UserID()}
	if in.Permissions == nil {
		if t.Permissions, err = b.defaultTokenPermissions(ctx, s); err != nil {
			return nil, err
		}
	} else if t.Permissions, err = validateTokenPermissions(s.kind, *in.Permissions); err != nil {
		return nil, err
	}
	if t.ExpiresAt, err = expiresAt(in.ExpiryDays, now); err != nil {
		return nil, err
	}
	if in.AllowedCIDRs != nil {
		if t.AllowedCIDRs, err = validateCIDRs(*in.AllowedCIDRs); err != nil {
			return nil, err
		}
	}
	secret, err := token.Generate(auth.TokenKind(s.kind))
	if err != nil {
		return nil, fmt.Errorf("generate token: %w", err)
	}
	d := b.hasher.Digest(secret)
	t.Digest = d[:]
	owner := s.owner()
	view := &TokenView{Secret: secret}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		if err := tx.LockOwner(ctx, owner); err != nil {
			return err
		}
		n, err := tx.CountTokens(ctx, owner)
		if err != nil {
			return err
		}
		if n >= b.maxTokensPerOwner() {
			return latch.Invalidf("The %s already has the maximum number of tokens (%d).", ownerWord(s.kind), b.maxTokensPerOwner())
		}
		switch s.kind {
		case latch.CredPersonalToken:
			t.UserID = s.user.ID
			view.Owner = *s.user
		default:
			svc, err := b.createServiceUser(ctx, tx, s)
			if err != nil {
				return err
			}
			t.UserID, t.ProjectID = svc.ID, s.project.ID
			if s.repo != nil {
				t.RepoID = s.repo.ID
			}
			view.Owner = *svc
		}
		for range 5 {
			if t.ID, err = newTokenID(); err != nil {
				return err
			}
			err = tx.CreateToken(ctx, t)
			if !errors.Is(err, latch.ErrConflict) {
				return err
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	view.AccessToken = *t
	detail := "name " + t.Name + ", permissions " + joinPermissions(t.Permissions)
	if s.onBehalf {
		detail += ", on behalf of " + s.user.Name
	}
	b.record(ctx, p, audit.TokenCreated, "token:"+t.ID, detail)
	return view, nil
}

func joinPermissions(ps []latch.Permission) string { return strings.Join(PermissionNames(ps), "+") }

func (b *Backend) maxTokensPerOwner() int {
	if n := b.settings().Tokens.MaxPerUser; n > 0 {
		return n
	}
	return DefaultMaxTokensPerOwner
}

func ownerWord(k latch.CredentialKind) string {
	switch k {
	case latch.CredRepoToken:
		return "repository"
	case latch.CredProjectToken:
		return "project"
	}
	return "user"
}

// createServiceUser makes the SERVICE user that a project or repository
// token acts as, named as Data Center names them.
func (b *Backend) createServiceUser(ctx context.Context, tx store.Store, s tokenScope) (*latch.User, error) {
	suffix, err := newTokenID()
	if err != nil {
		return nil, err
	}
	scope := fmt.Sprintf("%d", s.project.ID)
	if s.repo != nil {
		scope += fmt.Sprintf("/%d", s.repo.ID)
	}
	name := "access-token-user/" + scope + "/" + suffix[:6]
	display := "Access Token User - " + s.project.Key
	if s.repo != nil {
		display += "/" + s.repo.Slug
	}
	u := &latch.User{Name: name, Slug: latch.UserSlug(name), DisplayName: display, Active: true, Type: latch.UserService, CreatedAt: b.nowMillis()}
	if err := tx.CreateUser(ctx, u, ""); err != nil {
		return nil, fmt.Errorf("create service user: %w", err)
	}
	return u, nil
}

// defaultTokenPermissions is what a token holds when the request names
// none. For a personal token, as in Data Center, the owner's current levels:
// the highest project and repository levels they hold anywhere, fixed at
// creation (read at least). For project and repository tokens, read access.
func (b *Backend) defaultTokenPermissions(ctx context.Context, s tokenScope) ([]latch.Permission, error) {
	switch s.kind {
	case latch.CredRepoToken:
		return []latch.Permission{latch.RepoRead}, nil
	case latch.CredProjectToken:
		return []latch.Permission{latch.ProjectRead, latch.RepoRead}, nil
	}
	a, err := b.store.HighestAccess(ctx, s.user.ID)
	if err != nil {
		return nil, fmt.Errorf("read owner's access: %w", err)
	}
	proj := max(a.Project, latch.LevelRead)
	repo := max(a.Repo, proj)
	return []latch.Permission{latch.PermissionFor(latch.ScopeProject, proj), latch.PermissionFor(latch.ScopeRepo, repo)}, nil
}

// validateTokenPermissions applies Data Center's rules: at most one project
// and one repository level, the repository level at least the project level;
// repository tokens take a repository level only.
func validateTokenPermissions(k latch.CredentialKind, names []string) ([]latch.Permission, error) {
	if len(names) == 0 {
		return nil, latch.Invalidf("At least one permission is required.")
	}
	var proj, repo latch.Permission
	for _, n := range names {
		var scope latch.Scope
		switch {
		case strings.HasPrefix(n, "PROJECT_"):
			scope = latch.ScopeProject
		case strings.HasPrefix(n, "REPO_"):
			scope = latch.ScopeRepo
		default:
			return nil, latch.Invalidf("Invalid permission %q: tokens take PROJECT_READ, PROJECT_WRITE, PROJECT_ADMIN, REPO_READ, REPO_WRITE or REPO_ADMIN.", n)
		}
		p, err := latch.ParsePermission(n, scope)
		if err != nil {
			return nil, err
		}
		dst := &repo
		if scope == latch.ScopeProject {
			dst = &proj
		}
		if *dst != "" && *dst != p {
			return nil, latch.Invalidf("A token holds at most one project permission and one repository permission.")
		}
		*dst = p
	}
	if k == latch.CredRepoToken {
		if proj != "" {
			return nil, latch.Invalidf("Repository tokens take repository permissions only (REPO_READ, REPO_WRITE or REPO_ADMIN).")
		}
		return []latch.Permission{repo}, nil
	}
	// A level named alone implies its partner, as Data Center's forms do:
	// a repository level comes with PROJECT_READ, a project level with the
	// same repository level (the repository level must be at least the
	// project level).
	switch {
	case proj == "":
		proj = latch.ProjectRead
	case repo == "":
		repo = latch.PermissionFor(latch.ScopeRepo, proj.Level())
	}
	if repo.Level() < proj.Level() {
		return nil, latch.Invalidf("A token's repository permission must be at least its project permission: %s cannot go with %s.", proj, repo)
	}
	return []latch.Permission{proj, repo}, nil
}

func validateCIDRs(in []string) ([]string, error) {
	if len(in) > maxTokenCIDRs {
		return nil, latch.Invalidf("At most %d address ranges are allowed.", maxTokenCIDRs)
	}
	out := make([]string, 0, len(in))
	for _, c := range in {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			addr, aerr := netip.ParseAddr(strings.TrimSpace(c))
			if aerr != nil {
				return nil, latch.Invalidf("allowedCidrs: %q is not an address range such as 203.0.113.0/24.", c)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, pfx.Masked().String())
	}
	return out, nil
}

func newTokenID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000_000_000))
	if err != nil {
		return "", fmt.Errorf("generate token id: %w", err)
	}
	return fmt.Sprintf("%012d", n.Int64()), nil
}

// ListTokens lists the tokens of a user, project or repository.
func (b *Backend) ListTokens(ctx context.Context, p *latch.Principal, o TokenOwnerRef, pg store.Page) (Page[TokenView], error) {
	s, err := b.resolveTokenScope(ctx, p, o, false)
	if err != nil {
		return Page[TokenView]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.ListTokens(ctx, s.owner(), pg)
	if err != nil {
		return Page[TokenView]{}, fmt.Errorf("list tokens: %w", err)
	}
	page := pageOf(rows, pg)
	out := Page[TokenView]{Start: page.Start, Limit: page.Limit, IsLastPage: page.IsLastPage, Values: make([]TokenView, 0, len(page.Values))}
	for _, t := range page.Values {
		v, err := b.viewToken(ctx, t, s)
		if err != nil {
			return Page[TokenView]{}, err
		}
		out.Values = append(out.Values, *v)
	}
	return out, nil
}

func (b *Backend) viewToken(ctx context.Context, t store.AccessToken, s tokenScope) (*TokenView, error) {
	v := &TokenView{AccessToken: t}
	if b.tokenHooks != nil {
		if use, ok := b.tokenHooks.Pending(t.ID); ok && use.At > v.LastAuthenticated {
			v.LastAuthenticated, v.LastAddress = use.At, use.Address
		}
	}
	if s.user != nil && s.user.ID == t.UserID {
		v.Owner = *s.user
		return v, nil
	}
	u, err := b.store.UserByID(ctx, t.UserID)
	if err != nil {
		return nil, fmt.Errorf("token owner: %w", err)
	}
	v.Owner = *u
	return v, nil
}

// findToken resolves and authorizes access to one token of an owner.
func (b *Backend) findToken(ctx context.Context, p *latch.Principal, o TokenOwnerRef, id string, write bool) (*store.AccessToken, tokenScope, error) {
	s, err := b.resolveTokenScope(ctx, p, o, write)
	if err != nil {
		return nil, s, err
	}
	t, err := b.store.TokenByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) {
		return nil, s, noSuchToken(id)
	}
	if err != nil {
		return nil, s, fmt.Errorf("read token %s: %w", id, err)
	}
	own := s.owner()
	match := t.Kind == s.kind && t.ProjectID == own.ProjectID && t.RepoID == own.RepoID
	if s.kind == latch.CredPersonalToken {
		match = match && t.UserID == own.UserID
	}
	if !match {
		return nil, s, noSuchToken(id)
	}
	return t, s, nil
}

func noSuchToken(id string) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("No access token with id %s exists.", id),
		Exception: "com.atlassian.bitbucket.auth.NoSuchAccessTokenException"}
}

// Token returns one token.
func (b *Backend) Token(ctx context.Context, p *latch.Principal, o TokenOwnerRef, id string) (*TokenView, error) {
	t, s, err := b.findToken(ctx, p, o, id, false)
	if err != nil {
		return nil, err
	}
	return b.viewToken(ctx, *t, s)
}

// UpdateToken changes a token's name, permissions or address ranges; its
// expiry can never change.
func (b *Backend) UpdateToken(ctx context.Context, p *latch.Principal, o TokenOwnerRef, id string, in TokenInput) (*TokenView, error) {
	if in.ExpiryDays != nil {
		return nil, latch.Invalidf("The expiry of a token cannot be changed")
	}
	t, s, err := b.findToken(ctx, p, o, id, true)
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		if strings.TrimSpace(*in.Name) == "" || len(*in.Name) > maxTokenName {
			return nil, latch.Invalidf("The token name must be 1 to %d characters.", maxTokenName)
		}
		if err := latch.ValidateText("token name", *in.Name); err != nil {
			return nil, err
		}
		t.Name = *in.Name
	}
	if in.Permissions != nil {
		if t.Permissions, err = validateTokenPermissions(t.Kind, *in.Permissions); err != nil {
			return nil, err
		}
	}
	if in.AllowedCIDRs != nil {
		if t.AllowedCIDRs, err = validateCIDRs(*in.AllowedCIDRs); err != nil {
			return nil, err
		}
	}
	if err := b.store.UpdateToken(ctx, t); err != nil {
		return nil, fmt.Errorf("update token: %w", err)
	}
	b.tokenChanged(ctx, t.ID)
	b.record(ctx, p, audit.TokenUpdated, "token:"+t.ID, "name "+t.Name+", permissions "+joinPermissions(t.Permissions))
	return b.viewToken(ctx, *t, s)
}

// DeleteToken revokes a token at once.
func (b *Backend) DeleteToken(ctx context.Context, p *latch.Principal, o TokenOwnerRef, id string) error {
	t, _, err := b.findToken(ctx, p, o, id, true)
	if err != nil {
		return err
	}
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		// Recorded first, while the owner (a service user for project and
		// repository tokens) still exists to be named.
		if err := b.recordRevoked(ctx, tx, t); err != nil {
			return err
		}
		if err := tx.DeleteToken(ctx, t.ID); err != nil {
			return err
		}
		if t.Kind != latch.CredPersonalToken {
			return tx.DeleteUser(ctx, t.UserID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	b.tokenChanged(ctx, t.ID)
	b.record(ctx, p, audit.TokenRevoked, "token:"+t.ID, "name "+t.Name)
	return nil
}

// PermissionNames renders permissions as strings, for transports.
func PermissionNames(ps []latch.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	slices.Sort(out)
	return out
}
