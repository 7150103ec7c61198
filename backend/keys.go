package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/sshkey"
	"github.com/latchhq/latch/store"
)

// SSH keys: user keys act as their owner over SSH; access keys carry their
// own grants on projects and repositories (read or write), never a user's.
// The same key may be an access key on many projects and repositories but
// never also a user key. Adding a key queues a mail, in the same transaction,
// to whoever added it and, when an administrator added it for someone else,
// to the key's owner.

// Mailer is told that mail was queued in the outbox, so that its sender
// need not wait for its next poll.
type Mailer interface {
	Wake()
}

// KeyUses reports a key's last authentication not yet written to the store.
type KeyUses interface {
	PendingKeyUse(id int64) (int64, bool)
}

// keyExtras holds what the SSH key operations need besides the store.
type keyExtras struct {
	mailer  Mailer
	keyUses KeyUses
}

// SetMailer installs the receiver of "mail queued" notices.
func (b *Backend) SetMailer(m Mailer) { b.keys.mailer = m }

// SetKeyUses installs the source of pending key uses, shown in listings.
func (b *Backend) SetKeyUses(u KeyUses) { b.keys.keyUses = u }

// Conflict messages.
const (
	msgKeyExists         = "The SSH key already exists on the system."
	msgKeyIsAccessKey    = "This SSH key is already used as an access key on a project or repository; the same key cannot also be a personal key."
	msgKeyIsUserKey      = "This SSH key is already added to a user account; a personal key cannot also be an access key."
	exNoSuchKey          = "com.atlassian.bitbucket.ssh.NoSuchSshKeyException"
	exDuplicateKey       = "com.atlassian.bitbucket.ssh.DuplicateSshKeyException"
	exInvalidKey         = "com.atlassian.bitbucket.ssh.InvalidSshKeyException"
	maxKeysPerUser       = 200
	defaultKeyLabelLimit = sshkey.MaxLabelLen
)

// KeyInput is the body of a key request. Nil fields are absent.
type KeyInput struct {
	Text  *string
	Label *string
	// Permission is an access key's permission; "" takes REPO_READ or
	// PROJECT_READ.
	Permission string
	// ExpiryDays is how many days a new key works; nil or 0 for no expiry
	// (unless the SSH key policy requires one). A key's expiry never
	// changes: re-adding an access key elsewhere keeps it.
	ExpiryDays *int
	// From is the client address, for the mail; unset takes the request's
	// origin.
	From netip.Addr
}

// KeyView is a key as responses show it.
type KeyView struct {
	store.SSHKey
	Owner *latch.User // user keys
}

// AccessKeyView is an access key on one project or repository.
type AccessKeyView struct {
	Key        store.SSHKey
	Permission latch.Permission
	Project    *latch.Project    // set for project keys and, as the repository's project, for repository keys
	Repo       *latch.Repository // set for repository keys, with Project
}

// KeyResourceRef names the project (RepoSlug "") or repository of access keys.
type KeyResourceRef struct {
	ProjectKey string
	RepoSlug   string
}

func noSuchKey(id int64) error {
	return &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("No SSH key with id %d exists.", id), Exception: exNoSuchKey}
}

func keyConflict(msg string) error {
	return &latch.Error{Kind: latch.ErrConflict, Message: msg, Exception: exDuplicateKey}
}

// expiryFixed is the error for re-adding access key k with another expiry:
// the key is shared by every project and repository it was added to, and
// its expiry was set once, when it was first added.
func expiryFixed(k *store.SSHKey) error {
	has := "no expiry"
	if d := k.ExpiryDays(); d != 0 {
		has = fmt.Sprintf("expiryDays %d", d)
	}
	return &latch.Error{Kind: latch.ErrInvalid, Exception: exInvalidKey, Message: fmt.Sprintf(
		"This access key already exists with %s, set when it was first added; leave expiryDays out or give the same.", has)}
}

// parseKeyInput parses and validates the key text and label of in.
func parseKeyInput(in KeyInput) (*sshkey.Key, string, error) {
	if in.Text == nil || strings.TrimSpace(*in.Text) == "" {
		return nil, "", &latch.Error{Kind: latch.ErrInvalid, Message: "The SSH key text is required.", Exception: exInvalidKey}
	}
	k, err := sshkey.Parse(*in.Text)
	if err != nil {
		return nil, "", &latch.Error{Kind: latch.ErrInvalid, Message: err.Error(), Exception: exInvalidKey}
	}
	label := k.Comment
	if in.Label != nil && strings.TrimSpace(*in.Label) != "" {
		var err error
		if label, err = validLabel(*in.Label); err != nil {
			return nil, "", err
		}
	}
	return k, label, nil
}

// keyExpiry validates in.ExpiryDays against the SSH key policy and returns
// the expiry of a key added now: epoch ms, 0 for never.
func (b *Backend) keyExpiry(in KeyInput) (int64, error) {
	at, err := expiresAt(in.ExpiryDays, b.now())
	if err != nil {
		return 0, err
	}
	pol := b.settings().SSHKeys
	if err := checkExpiry("SSH keys", in.ExpiryDays, pol.RequireExpiry, pol.MaxExpiryDays); err != nil {
		return 0, err
	}
	return at, nil
}

func validLabel(s string) (string, error) {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > defaultKeyLabelLimit {
		return "", latch.Invalidf("The key label must be at most %d characters.", defaultKeyLabelLimit)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return "", latch.Invalidf("The key label contains characters that are not allowed.")
		}
	}
	return s, nil
}

func (b *Backend) keyView(k store.SSHKey, owner *latch.User) KeyView {
	if b.keys.keyUses != nil {
		if at, ok := b.keys.keyUses.PendingKeyUse(k.ID); ok && at > k.LastAuthenticated {
			k.LastAuthenticated = at
		}
	}
	return KeyView{SSHKey: k, Owner: owner}
}

// ---------------------------------------------------------------------------
// User keys

// keyUser resolves the user whose keys an operation is about (name "" is
// the caller) and authorizes p: the user themselves or an administrator
// (who may not act on a user of higher rank); write asks for an interactive
// credential.
func (b *Backend) keyUser(ctx context.Context, p *latch.Principal, name string, write bool) (*latch.User, error) {
	if write {
		if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
			return nil, err
		}
	} else if err := b.authorize(ctx, p, latch.Authenticated, latch.Resource{}); err != nil {
		return nil, err
	}
	var u *latch.User
	if name == "" {
		if p.User == nil || p.Grants != nil {
			return nil, latch.Invalidf("The user parameter is required.")
		}
		u = p.User
	} else {
		var err error
		if u, err = b.store.UserByName(ctx, name); errors.Is(err, latch.ErrNotFound) {
			u, err = b.store.UserBySlug(ctx, name)
		}
		if err != nil {
			return nil, err
		}
	}
	if u.ID == p.UserID() && p.Grants == nil {
		return u, nil
	}
	if err := b.authorize(ctx, p, latch.AdminInstance, latch.Resource{}); err != nil {
		return nil, err
	}
	if write {
		if err := b.requireOutrank(ctx, p, u.ID); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// AddUserKey adds a public key to a user's account (name "" is the caller).
func (b *Backend) AddUserKey(ctx context.Context, p *latch.Principal, name string, in KeyInput) (*KeyView, error) {
	u, err := b.keyUser(ctx, p, name, true)
	if err != nil {
		return nil, err
	}
	pk, label, err := parseKeyInput(in)
	if err != nil {
		return nil, err
	}
	expires, err := b.keyExpiry(in)
	if err != nil {
		return nil, err
	}
	k := &store.SSHKey{
		UserID: u.ID, Text: pk.Text, Label: label, Fingerprint: pk.Fingerprint, Algorithm: pk.Algorithm, Bits: pk.Bits,
		CreatedAt: b.nowMillis(), CreatedBy: p.UserID(), ExpiresAt: expires,
	}
	queued := false
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		// Concurrent additions for one user take turns, so that counting
		// then inserting cannot pass maxKeysPerUser.
		if err := tx.LockOwner(ctx, store.TokenOwner{UserID: u.ID}); err != nil {
			return err
		}
		old, err := tx.KeyByFingerprint(ctx, k.Fingerprint)
		switch {
		case err == nil && !old.IsAccessKey():
			return keyConflict(msgKeyExists)
		case err == nil:
			grants, err := tx.AccessKeyGrants(ctx, old.ID)
			if err != nil {
				return err
			}
			if len(grants) > 0 {
				return keyConflict(msgKeyIsAccessKey)
			}
			// An access key left without grants (its repositories were
			// deleted) is free to become a personal key.
			if err := tx.DeleteKey(ctx, old.ID); err != nil {
				return err
			}
		case !errors.Is(err, latch.ErrNotFound):
			return err
		}
		existing, err := tx.ListUserKeys(ctx, u.ID, "", store.Page{Limit: maxKeysPerUser})
		if err != nil {
			return err
		}
		if len(existing) >= maxKeysPerUser {
			return latch.Invalidf("The user already has the maximum number of SSH keys (%d).", maxKeysPerUser)
		}
		if err := tx.CreateKey(ctx, k); err != nil {
			if errors.Is(err, latch.ErrConflict) {
				return keyConflict(msgKeyExists)
			}
			return err
		}
		n, err := b.queueKeyMail(ctx, tx, p, keyMail{key: k, owner: u, from: in.From})
		queued = n > 0
		return err
	})
	if err != nil {
		return nil, err
	}
	b.mailQueued(queued)
	b.record(ctx, p, audit.SSHKeyAdded, "user:"+u.Name, fmt.Sprintf("key %d %s", k.ID, k.Fingerprint))
	v := b.keyView(*k, u)
	return &v, nil
}

// ListUserKeys lists a user's keys (name "" is the caller).
func (b *Backend) ListUserKeys(ctx context.Context, p *latch.Principal, name, label string, pg store.Page) (Page[KeyView], error) {
	u, err := b.keyUser(ctx, p, name, false)
	if err != nil {
		return Page[KeyView]{}, err
	}
	pg = clampPage(pg)
	rows, err := b.store.ListUserKeys(ctx, u.ID, label, pg)
	if err != nil {
		return Page[KeyView]{}, fmt.Errorf("list SSH keys: %w", err)
	}
	page := pageOf(rows, pg)
	out := Page[KeyView]{Start: page.Start, Limit: page.Limit, IsLastPage: page.IsLastPage, Values: make([]KeyView, 0, len(page.Values))}
	for _, k := range page.Values {
		out.Values = append(out.Values, b.keyView(k, u))
	}
	return out, nil
}

// userKey finds user key id and authorizes p on it.
func (b *Backend) userKey(ctx context.Context, p *latch.Principal, id int64, write bool) (*store.SSHKey, *latch.User, error) {
	if err := b.authorize(ctx, p, latch.Authenticated, latch.Resource{}); err != nil {
		return nil, nil, err
	}
	k, err := b.store.KeyByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && k.IsAccessKey()) {
		return nil, nil, noSuchKey(id)
	}
	if err != nil {
		return nil, nil, err
	}
	owner, err := b.store.UserByID(ctx, k.UserID)
	if err != nil {
		return nil, nil, err
	}
	// Whoever may not read the key is told it does not exist, whatever
	// the method, so that changing it reveals no more than reading it.
	if _, err := b.keyUser(ctx, p, owner.Name, false); err != nil {
		if _, denied := IsDenied(err); denied {
			return nil, nil, noSuchKey(id)
		}
		return nil, nil, err
	}
	if write {
		if _, err := b.keyUser(ctx, p, owner.Name, true); err != nil {
			return nil, nil, err
		}
	}
	return k, owner, nil
}

// UserKey returns one user key.
func (b *Backend) UserKey(ctx context.Context, p *latch.Principal, id int64) (*KeyView, error) {
	k, owner, err := b.userKey(ctx, p, id, false)
	if err != nil {
		return nil, err
	}
	v := b.keyView(*k, owner)
	return &v, nil
}

// UpdateUserKeyLabel changes a user key's label, the only mutable part.
func (b *Backend) UpdateUserKeyLabel(ctx context.Context, p *latch.Principal, id int64, label string) (*KeyView, error) {
	k, owner, err := b.userKey(ctx, p, id, true)
	if err != nil {
		return nil, err
	}
	if k.Label, err = validLabel(label); err != nil {
		return nil, err
	}
	if err := b.store.UpdateKeyLabel(ctx, k.ID, k.Label); err != nil {
		return nil, fmt.Errorf("update SSH key: %w", err)
	}
	v := b.keyView(*k, owner)
	return &v, nil
}

// DeleteUserKey deletes one user key; the next connection with it fails.
func (b *Backend) DeleteUserKey(ctx context.Context, p *latch.Principal, id int64) error {
	k, owner, err := b.userKey(ctx, p, id, true)
	if err != nil {
		return err
	}
	if err := b.store.DeleteKey(ctx, k.ID); err != nil {
		return fmt.Errorf("delete SSH key: %w", err)
	}
	b.record(ctx, p, audit.SSHKeyRemoved, "user:"+owner.Name, fmt.Sprintf("key %d %s", k.ID, k.Fingerprint))
	return nil
}

// DeleteUserKeys deletes every key of a user (name "" is the caller).
func (b *Backend) DeleteUserKeys(ctx context.Context, p *latch.Principal, name string) error {
	u, err := b.keyUser(ctx, p, name, true)
	if err != nil {
		return err
	}
	n, err := b.store.DeleteUserKeys(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("delete SSH keys: %w", err)
	}
	if n > 0 {
		b.record(ctx, p, audit.SSHKeyRemoved, "user:"+u.Name, fmt.Sprintf("all %d keys", n))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Access keys

// keyResource is a resolved KeyResourceRef.
type keyResource struct {
	project *latch.Project
	repo    *latch.Repository // nil for a project
}

func (r keyResource) resource() latch.Resource {
	if r.repo != nil {
		return resourceOf(r.repo)
	}
	return latch.Resource{ProjectID: r.project.ID}
}

func (r keyResource) scope() latch.Scope {
	if r.repo != nil {
		return latch.ScopeRepo
	}
	return latch.ScopeProject
}

func (r keyResource) String() string {
	if r.repo != nil {
		return "repository " + r.project.Key + "/" + r.repo.Slug
	}
	return "project " + r.project.Key
}

func (r keyResource) target() string {
	if r.repo != nil {
		return "repo:" + r.project.Key + "/" + r.repo.Slug
	}
	return "project:" + r.project.Key
}

// resolveKeyResource finds the project or repository and authorizes p to
// administer its access keys: PROJECT_ADMIN or REPO_ADMIN, and for changes
// an interactive credential.
func (b *Backend) resolveKeyResource(ctx context.Context, p *latch.Principal, ref KeyResourceRef, write bool) (keyResource, error) {
	var kr keyResource
	if write {
		if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
			return kr, err
		}
	}
	if ref.RepoSlug != "" {
		repo, err := b.lookupRepo(ctx, ref.ProjectKey, ref.RepoSlug)
		if err != nil {
			return kr, err
		}
		if repo.Project == nil {
			if repo.Project, err = b.store.ProjectByID(ctx, repo.ProjectID); err != nil {
				return kr, err
			}
		}
		kr.repo, kr.project = repo, repo.Project
		return kr, b.authorize(ctx, p, latch.AdminRepo, resourceOf(repo))
	}
	proj, err := b.store.ProjectByKey(ctx, ref.ProjectKey)
	if err != nil {
		return kr, err
	}
	kr.project = proj
	return kr, b.authorize(ctx, p, latch.AdminProject, latch.Resource{ProjectID: proj.ID})
}

// accessKeyPermission parses an access key permission for the resource's
// scope: REPO_READ or REPO_WRITE, PROJECT_READ or PROJECT_WRITE.
func accessKeyPermission(s string, scope latch.Scope) (latch.Permission, error) {
	if s == "" {
		if scope == latch.ScopeRepo {
			return latch.RepoRead, nil
		}
		return latch.ProjectRead, nil
	}
	perm, err := latch.ParsePermission(s, scope)
	if err != nil || perm.Level() > latch.LevelWrite {
		if scope == latch.ScopeRepo {
			return "", latch.Invalidf("Invalid permission %q for a repository access key: use REPO_READ or REPO_WRITE.", s)
		}
		return "", latch.Invalidf("Invalid permission %q for a project access key: use PROJECT_READ or PROJECT_WRITE.", s)
	}
	return perm, nil
}

func (r keyResource) view(k store.SSHKey, perm latch.Permission) AccessKeyView {
	return AccessKeyView{Key: k, Permission: perm, Project: r.project, Repo: r.repo}
}

// AddAccessKey adds an access key to a project or repository with a
// permission. A key already used as an access key elsewhere is reused (its
// label updated when one is given); on the same resource its permission is
// updated. A user's key is refused.
func (b *Backend) AddAccessKey(ctx context.Context, p *latch.Principal, ref KeyResourceRef, in KeyInput) (*AccessKeyView, error) {
	kr, err := b.resolveKeyResource(ctx, p, ref, true)
	if err != nil {
		return nil, err
	}
	perm, err := accessKeyPermission(in.Permission, kr.scope())
	if err != nil {
		return nil, err
	}
	pk, label, err := parseKeyInput(in)
	if err != nil {
		return nil, err
	}
	var k *store.SSHKey
	queued := false
	err = b.store.WithTx(ctx, func(tx store.Store) error {
		old, err := tx.KeyByFingerprint(ctx, pk.Fingerprint)
		switch {
		case err == nil && !old.IsAccessKey():
			return keyConflict(msgKeyIsUserKey)
		case err == nil:
			k = old
			if in.ExpiryDays != nil && *in.ExpiryDays != k.ExpiryDays() {
				return expiryFixed(k)
			}
			if in.Label != nil && strings.TrimSpace(*in.Label) != "" && label != k.Label {
				if err := tx.UpdateKeyLabel(ctx, k.ID, label); err != nil {
					return err
				}
				k.Label = label
			}
		case errors.Is(err, latch.ErrNotFound):
			expires, err := b.keyExpiry(in)
			if err != nil {
				return err
			}
			k = &store.SSHKey{
				Text: pk.Text, Label: label, Fingerprint: pk.Fingerprint, Algorithm: pk.Algorithm, Bits: pk.Bits,
				CreatedAt: b.nowMillis(), CreatedBy: p.UserID(), ExpiresAt: expires,
			}
			if err := tx.CreateKey(ctx, k); err != nil {
				if errors.Is(err, latch.ErrConflict) {
					return keyConflict(msgKeyExists)
				}
				return err
			}
		default:
			return err
		}
		res := kr.resource()
		created, err := tx.SetAccessKeyGrant(ctx, store.AccessKeyGrant{KeyID: k.ID, ProjectID: res.ProjectID, RepoID: res.RepoID, Permission: perm})
		if err != nil {
			return err
		}
		if created {
			n, err := b.queueKeyMail(ctx, tx, p, keyMail{key: k, where: &kr, perm: perm, from: in.From})
			queued = n > 0
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	b.mailQueued(queued)
	b.record(ctx, p, audit.AccessKeyAdded, kr.target(), fmt.Sprintf("key %d %s %s", k.ID, k.Fingerprint, perm))
	v := kr.view(b.keyView(*k, nil).SSHKey, perm)
	return &v, nil
}

// AccessKeyFilter narrows an access key listing, as Data Center's query
// parameters do.
type AccessKeyFilter struct {
	// Label keeps keys whose label starts with it (filter).
	Label string
	// Effective also lists, for a repository, the keys of its project
	// (effective=true).
	Effective bool
	// Permission keeps keys with exactly this permission (permission);
	// MinPermission those with at least it (minimumPermission).
	Permission, MinPermission string
}

// ListAccessKeys lists the access keys of a project or repository.
func (b *Backend) ListAccessKeys(ctx context.Context, p *latch.Principal, ref KeyResourceRef, f AccessKeyFilter, pg store.Page) (Page[AccessKeyView], error) {
	kr, err := b.resolveKeyResource(ctx, p, ref, false)
	if err != nil {
		return Page[AccessKeyView]{}, err
	}
	pg = clampPage(pg)
	if !f.Effective && f.Permission == "" && f.MinPermission == "" {
		rows, err := b.store.ListAccessKeys(ctx, kr.resource(), f.Label, pg)
		if err != nil {
			return Page[AccessKeyView]{}, fmt.Errorf("list access keys: %w", err)
		}
		page := pageOf(rows, pg)
		out := Page[AccessKeyView]{Start: page.Start, Limit: page.Limit, IsLastPage: page.IsLastPage, Values: make([]AccessKeyView, 0, len(page.Values))}
		for _, a := range page.Values {
			out.Values = append(out.Values, kr.view(b.keyView(a.Key, nil).SSHKey, a.Grant.Permission))
		}
		return out, nil
	}
	// Filters that span two tables or compare levels are applied here: the
	// keys of one resource are few.
	var exact, least latch.Level
	for _, c := range []struct {
		s   string
		dst *latch.Level
	}{{f.Permission, &exact}, {f.MinPermission, &least}} {
		if c.s == "" {
			continue
		}
		perm := latch.Permission(c.s)
		if perm.Level() == latch.LevelNone || perm.Level() > latch.LevelWrite || (perm.Scope() != latch.ScopeRepo && perm.Scope() != latch.ScopeProject) {
			return Page[AccessKeyView]{}, latch.Invalidf("Invalid permission %q: use REPO_READ, REPO_WRITE, PROJECT_READ or PROJECT_WRITE.", c.s)
		}
		*c.dst = perm.Level()
	}
	var views []AccessKeyView
	add := func(kr keyResource) error {
		rows, err := b.store.ListAccessKeys(ctx, kr.resource(), f.Label, store.Page{})
		if err != nil {
			return fmt.Errorf("list access keys: %w", err)
		}
		for _, a := range rows {
			l := a.Grant.Permission.Level()
			if (exact != latch.LevelNone && l != exact) || l < least {
				continue
			}
			views = append(views, kr.view(b.keyView(a.Key, nil).SSHKey, a.Grant.Permission))
		}
		return nil
	}
	if err := add(kr); err != nil {
		return Page[AccessKeyView]{}, err
	}
	if f.Effective && kr.repo != nil {
		if err := add(keyResource{project: kr.project}); err != nil {
			return Page[AccessKeyView]{}, err
		}
	}
	start := min(pg.Start, len(views))
	end := min(start+pg.Limit+1, len(views))
	return pageOf(slices.Clone(views[start:end]), pg), nil
}

// accessKeyOn finds access key id's grant on the resource, or 404.
func (b *Backend) accessKeyOn(ctx context.Context, kr keyResource, id int64) (*store.SSHKey, *store.AccessKeyGrant, error) {
	k, err := b.store.KeyByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && !k.IsAccessKey()) {
		return nil, nil, noSuchKey(id)
	}
	if err != nil {
		return nil, nil, err
	}
	grants, err := b.store.AccessKeyGrants(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	res := kr.resource()
	for _, g := range grants {
		if g.ProjectID == res.ProjectID && g.RepoID == res.RepoID {
			return k, &g, nil
		}
	}
	return nil, nil, &latch.Error{Kind: latch.ErrNotFound, Message: fmt.Sprintf("SSH key %d is not an access key of %s.", id, kr), Exception: exNoSuchKey}
}

// AccessKey returns one access key of a project or repository.
func (b *Backend) AccessKey(ctx context.Context, p *latch.Principal, ref KeyResourceRef, id int64) (*AccessKeyView, error) {
	kr, err := b.resolveKeyResource(ctx, p, ref, false)
	if err != nil {
		return nil, err
	}
	k, g, err := b.accessKeyOn(ctx, kr, id)
	if err != nil {
		return nil, err
	}
	v := kr.view(b.keyView(*k, nil).SSHKey, g.Permission)
	return &v, nil
}

// SetAccessKeyPermission changes an access key's permission on a project
// or repository.
func (b *Backend) SetAccessKeyPermission(ctx context.Context, p *latch.Principal, ref KeyResourceRef, id int64, permission string) (*AccessKeyView, error) {
	kr, err := b.resolveKeyResource(ctx, p, ref, true)
	if err != nil {
		return nil, err
	}
	perm, err := accessKeyPermission(permission, kr.scope())
	if err != nil {
		return nil, err
	}
	if permission == "" {
		return nil, latch.Invalidf("A permission is required.")
	}
	k, g, err := b.accessKeyOn(ctx, kr, id)
	if err != nil {
		return nil, err
	}
	g.Permission = perm
	if _, err := b.store.SetAccessKeyGrant(ctx, *g); err != nil {
		return nil, fmt.Errorf("set access key permission: %w", err)
	}
	b.record(ctx, p, audit.AccessKeyChanged, kr.target(), fmt.Sprintf("key %d %s", k.ID, perm))
	v := kr.view(b.keyView(*k, nil).SSHKey, perm)
	return &v, nil
}

// RemoveAccessKey removes an access key from one project or repository
// only; removing a key that is not there succeeds, as in Data Center.
func (b *Backend) RemoveAccessKey(ctx context.Context, p *latch.Principal, ref KeyResourceRef, id int64) error {
	kr, err := b.resolveKeyResource(ctx, p, ref, true)
	if err != nil {
		return err
	}
	return b.removeAccessKeyGrants(ctx, p, id, []keyResource{kr})
}

// removeAccessKeyGrants removes key id's grants on the resources and the
// key itself once it has none left.
func (b *Backend) removeAccessKeyGrants(ctx context.Context, p *latch.Principal, id int64, krs []keyResource) error {
	var removed []keyResource
	err := b.store.WithTx(ctx, func(tx store.Store) error {
		removed = removed[:0]
		k, err := tx.KeyByID(ctx, id)
		if errors.Is(err, latch.ErrNotFound) || (err == nil && !k.IsAccessKey()) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, kr := range krs {
			ok, err := tx.RemoveAccessKeyGrant(ctx, id, kr.resource())
			if err != nil {
				return err
			}
			if ok {
				removed = append(removed, kr)
			}
		}
		left, err := tx.AccessKeyGrants(ctx, id)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return tx.DeleteKey(ctx, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove access key: %w", err)
	}
	for _, kr := range removed {
		b.record(ctx, p, audit.AccessKeyRemoved, kr.target(), fmt.Sprintf("key %d", id))
	}
	return nil
}

// KeyResources names projects (by key) and repositories (by project key
// and slug), as DELETE /rest/keys/1.0/ssh/{keyId} takes them.
type KeyResources struct {
	Projects []string
	Repos    []KeyResourceRef
}

// RevokeAccessKey removes access key id from the listed projects and
// repositories, each of which p must administer; nothing changes unless p
// may act on all of them.
func (b *Backend) RevokeAccessKey(ctx context.Context, p *latch.Principal, id int64, where KeyResources) error {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return err
	}
	var krs []keyResource
	for _, key := range where.Projects {
		kr, err := b.resolveKeyResource(ctx, p, KeyResourceRef{ProjectKey: key}, true)
		if err != nil {
			return err
		}
		krs = append(krs, kr)
	}
	for _, ref := range where.Repos {
		if ref.RepoSlug == "" {
			return latch.Invalidf("Each repository needs its slug and its project's key.")
		}
		kr, err := b.resolveKeyResource(ctx, p, ref, true)
		if err != nil {
			return err
		}
		krs = append(krs, kr)
	}
	return b.removeAccessKeyGrants(ctx, p, id, krs)
}

// UpdateAccessKeyLabel changes an access key's label everywhere it is used;
// p must administer at least one of its projects or repositories.
func (b *Backend) UpdateAccessKeyLabel(ctx context.Context, p *latch.Principal, id int64, label string) (*KeyView, error) {
	if err := b.authorize(ctx, p, latch.ManageCredentials, latch.Resource{}); err != nil {
		return nil, err
	}
	views, k, err := b.accessKeyUsages(ctx, p, id, nil)
	if err != nil {
		return nil, err
	}
	if len(views) == 0 {
		return nil, noSuchKey(id)
	}
	if k.Label, err = validLabel(label); err != nil {
		return nil, err
	}
	if err := b.store.UpdateKeyLabel(ctx, id, k.Label); err != nil {
		return nil, fmt.Errorf("update access key: %w", err)
	}
	b.record(ctx, p, audit.AccessKeyChanged, fmt.Sprintf("key:%d", id), "label")
	v := b.keyView(*k, nil)
	return &v, nil
}

// accessKeyUsages lists where access key id is used among what p
// administers (everything for a system administrator); only projects when
// projects is true, only repositories when false, both when nil.
func (b *Backend) accessKeyUsages(ctx context.Context, p *latch.Principal, id int64, projects *bool) ([]AccessKeyView, *store.SSHKey, error) {
	if err := b.authorize(ctx, p, latch.Authenticated, latch.Resource{}); err != nil {
		return nil, nil, err
	}
	k, err := b.store.KeyByID(ctx, id)
	if errors.Is(err, latch.ErrNotFound) || (err == nil && !k.IsAccessKey()) {
		return nil, nil, noSuchKey(id)
	}
	if err != nil {
		return nil, nil, err
	}
	grants, err := b.store.AccessKeyGrants(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	kv := b.keyView(*k, nil).SSHKey
	var out []AccessKeyView
	for _, g := range grants {
		isProject := g.RepoID == 0
		if projects != nil && *projects != isProject {
			continue
		}
		action := latch.AdminRepo
		if isProject {
			action = latch.AdminProject
		}
		d, err := b.authz.Authorize(ctx, p, action, g.Resource())
		if err != nil {
			return nil, nil, err
		}
		if !d.Allowed {
			continue
		}
		v := AccessKeyView{Key: kv, Permission: g.Permission}
		if isProject {
			if v.Project, err = b.store.ProjectByID(ctx, g.ProjectID); err != nil {
				return nil, nil, err
			}
		} else {
			if v.Repo, err = b.store.RepoByID(ctx, g.RepoID); err != nil {
				return nil, nil, err
			}
			if v.Repo.Project == nil {
				if v.Repo.Project, err = b.store.ProjectByID(ctx, v.Repo.ProjectID); err != nil {
					return nil, nil, err
				}
			}
			v.Project = v.Repo.Project
		}
		out = append(out, v)
	}
	return out, k, nil
}

// AccessKeyRepos lists the repositories access key id is used on, among
// those p administers.
func (b *Backend) AccessKeyRepos(ctx context.Context, p *latch.Principal, id int64, pg store.Page) (Page[AccessKeyView], error) {
	f := false
	return b.accessKeyUsagePage(ctx, p, id, &f, pg)
}

// AccessKeyProjects lists the projects access key id is used on, among
// those p administers.
func (b *Backend) AccessKeyProjects(ctx context.Context, p *latch.Principal, id int64, pg store.Page) (Page[AccessKeyView], error) {
	t := true
	return b.accessKeyUsagePage(ctx, p, id, &t, pg)
}

func (b *Backend) accessKeyUsagePage(ctx context.Context, p *latch.Principal, id int64, projects *bool, pg store.Page) (Page[AccessKeyView], error) {
	views, _, err := b.accessKeyUsages(ctx, p, id, projects)
	if err != nil {
		return Page[AccessKeyView]{}, err
	}
	pg = clampPage(pg)
	start := min(pg.Start, len(views))
	end := min(start+pg.Limit+1, len(views))
	return pageOf(slices.Clone(views[start:end]), pg), nil
}

// ---------------------------------------------------------------------------
// Authentication

// KeyPrincipal resolves the principal SSH key id (with fingerprint, as
// recorded on the verified connection) acts as, read now from the store, so
// that removing a key, a grant or a permission takes effect for the next
// connection. A user key acts as its owner; an access key carries only its
// grants (a project grant applies to every repository of the project).
func (b *Backend) KeyPrincipal(ctx context.Context, id int64, fingerprint string) (*latch.Principal, *store.SSHKey, error) {
	k, err := b.store.KeyByID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if k.Fingerprint != fingerprint {
		return nil, nil, noSuchKey(id)
	}
	if k.Expired(b.nowMillis()) {
		return nil, nil, latch.Errorf(latch.ErrUnauthorized, "This SSH key expired on %s: add a new key.",
			time.UnixMilli(k.ExpiresAt).UTC().Format(time.DateOnly))
	}
	p := &latch.Principal{CredentialID: fmt.Sprint(k.ID)}
	if !k.IsAccessKey() {
		u, err := b.store.UserByID(ctx, k.UserID)
		if err != nil {
			return nil, nil, err
		}
		if !u.Active {
			return nil, nil, latch.Errorf(latch.ErrUnauthorized, "The account of this key is deactivated.")
		}
		p.User, p.Credential = u, latch.CredUserKey
		return p, k, nil
	}
	grants, err := b.store.AccessKeyGrants(ctx, k.ID)
	if err != nil {
		return nil, nil, err
	}
	p.Credential = latch.CredAccessKey
	p.Grants = make([]latch.Grant, 0, len(grants)) // non-nil: never anonymous
	for _, g := range grants {
		p.Grants = append(p.Grants, latch.Grant{Resource: g.Resource(), Level: g.Permission.Level()})
	}
	return p, k, nil
}

// ---------------------------------------------------------------------------
// Mail

// keyMail describes an added key for the mail about it.
type keyMail struct {
	key   *store.SSHKey
	owner *latch.User  // user keys
	where *keyResource // access keys
	perm  latch.Permission
	from  netip.Addr
}

// queueKeyMail writes the mail about an added key into the outbox, inside
// tx: to whoever added it and, when an administrator added a key to someone
// else's account, to its owner. It returns how many messages it queued.
func (b *Backend) queueKeyMail(ctx context.Context, tx store.Store, p *latch.Principal, m keyMail) (int, error) {
	from := m.from
	if !from.IsValid() {
		from = audit.OriginFrom(ctx).Addr
	}
	addr := "unknown"
	if from.IsValid() {
		addr = from.String()
	}
	now := b.now()
	actor := p.User
	actorName := "an unknown user"
	if actor != nil {
		actorName = describeUser(actor)
	}
	var place string
	if m.where != nil {
		place = fmt.Sprintf("%s, with permission %s", m.where, m.perm)
	} else {
		place = "the account of " + describeUser(m.owner)
	}
	details := fmt.Sprintf(`  Label:        %s
  Fingerprint:  %s
  Type:         %s, %d bits
  Added to:     %s
  Added by:     %s
  When:         %s
  From address: %s
`, orNone(m.key.Label), m.key.Fingerprint, m.key.Algorithm, m.key.Bits, place, actorName,
		now.UTC().Format(time.RFC1123), addr)
	footer := "\nIf you did not expect this, remove the key at once and review the credentials of the account.\n\n-- latch\n"

	var msgs []store.Mail
	if actor != nil && actor.Email != "" {
		subject := "SSH key added to your account"
		intro := "You added an SSH key to your account."
		switch {
		case m.where != nil:
			subject = "Access key added to " + m.where.String()
			intro = "You added an SSH access key to " + m.where.String() + "."
		case m.owner != nil && m.owner.ID != actor.ID:
			subject = "SSH key added to the account of " + m.owner.Name
			intro = "You added an SSH key to the account of " + describeUser(m.owner) + "."
		}
		msgs = append(msgs, store.Mail{To: []string{actor.Email}, Subject: "[latch] " + subject,
			Body: greeting(actor) + intro + "\n\n" + details + footer})
	}
	if m.owner != nil && (actor == nil || m.owner.ID != actor.ID) && m.owner.Email != "" {
		msgs = append(msgs, store.Mail{To: []string{m.owner.Email}, Subject: "[latch] SSH key added to your account",
			Body: greeting(m.owner) + actorName + " added an SSH key to your account.\n\n" + details + footer})
	}
	for i := range msgs {
		msgs[i].CreatedAt = now.UnixMilli()
		if err := tx.EnqueueMail(ctx, &msgs[i]); err != nil {
			return i, fmt.Errorf("queue mail: %w", err)
		}
	}
	return len(msgs), nil
}

func (b *Backend) mailQueued(queued bool) {
	if queued && b.keys.mailer != nil {
		b.keys.mailer.Wake()
	}
}

func greeting(u *latch.User) string {
	name := u.DisplayName
	if name == "" {
		name = u.Name
	}
	return "Hello " + name + ",\n\n"
}

func describeUser(u *latch.User) string {
	if u.DisplayName != "" && u.DisplayName != u.Name {
		return u.Name + " (" + u.DisplayName + ")"
	}
	return u.Name
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
