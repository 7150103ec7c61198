// Package backend holds latch's domain operations: creating users, projects
// and repositories, granting permissions, and resolving repositories for Git.
// Every operation takes the acting principal and asks the one
// latch.Authorizer before doing anything; transports stay thin and only
// translate requests and errors.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// RepoStorage keeps the bare repositories on disk, by repository id.
type RepoStorage interface {
	Init(ctx context.Context, id int64) error
	Remove(id int64) error
	Path(id int64) string
}

// Backend performs domain operations on behalf of principals.
type Backend struct {
	store  store.Store
	repos  RepoStorage
	authz  *latch.Authorizer
	log    *slog.Logger
	now    func() time.Time
	events Events

	hasher     *token.Hasher
	tokenHooks TokenHooks
	policy     Policy
	audit      audit.Recorder
	keys       keyExtras
}

// Events receives notice of changes that caches elsewhere depend on. A nil
// Events ignores them.
type Events interface {
	// UserChanged is called after a user's account or permissions change.
	UserChanged(ctx context.Context, userID int64)
}

// New returns a Backend over s and repos.
func New(s store.Store, repos RepoStorage, log *slog.Logger) *Backend {
	return &Backend{store: s, repos: repos, authz: latch.NewAuthorizer(s), log: log, now: time.Now}
}

// Store returns the backend's store.
func (b *Backend) Store() store.Store { return b.store }

// Authorizer returns the one authorization decision the backend uses, for
// transports that must ask it directly (Git, SSH).
func (b *Backend) Authorizer() *latch.Authorizer { return b.authz }

// SetEvents installs the receiver of change notices.
func (b *Backend) SetEvents(e Events) { b.events = e }

// Denied is returned when a principal may not perform an action. Transports
// answer 401 (Data Center REST), 403 or, when the resource is not Visible,
// 404 (Git).
type Denied struct {
	latch.Decision
	// Reason, when set, explains the refusal better than the missing
	// permission does.
	Reason string
}

func (d *Denied) Error() string {
	if d.Reason != "" {
		return d.Reason
	}
	return "You are not permitted to access this resource"
}

// Unwrap makes errors.Is(err, latch.ErrForbidden) true.
func (d *Denied) Unwrap() error { return latch.ErrForbidden }

// authorize returns nil when p may do a on r, else a *Denied.
func (b *Backend) authorize(ctx context.Context, p *latch.Principal, a latch.Action, r latch.Resource) error {
	d, err := b.authz.Authorize(ctx, p, a, r)
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if !d.Allowed {
		den := &Denied{Decision: d}
		if a == latch.ManageCredentials && p != nil && (p.Credential.IsToken() || p.Grants != nil) {
			den.Reason = "Access tokens and keys cannot be used to manage tokens, keys, passwords or accounts."
		}
		return den
	}
	return nil
}

// Authorize exposes the decision to transports, as an error.
func (b *Backend) Authorize(ctx context.Context, p *latch.Principal, a latch.Action, r latch.Resource) error {
	return b.authorize(ctx, p, a, r)
}

func (b *Backend) userChanged(ctx context.Context, id int64) {
	if b.events != nil {
		b.events.UserChanged(ctx, id)
	}
}

// IsDenied reports whether err is a *Denied and returns it.
func IsDenied(err error) (*Denied, bool) {
	var d *Denied
	ok := errors.As(err, &d)
	return d, ok
}

// clampPage applies Data Center's paging defaults: limit 25, at most 1000.
func clampPage(p store.Page) store.Page {
	if p.Start < 0 {
		p.Start = 0
	}
	if p.Limit <= 0 {
		p.Limit = 25
	}
	if p.Limit > 1000 {
		p.Limit = 1000
	}
	return p
}

// Page is one page of a listing.
type Page[T any] struct {
	Values     []T
	Start      int
	Limit      int
	IsLastPage bool
}

// NextPageStart is the start of the next page; meaningful when !IsLastPage.
func (p Page[T]) NextPageStart() int { return p.Start + len(p.Values) }

// pageOf trims rows fetched with Limit+1 into a Page.
func pageOf[T any](rows []T, p store.Page) Page[T] {
	last := len(rows) <= p.Limit
	if !last {
		rows = rows[:p.Limit]
	}
	if rows == nil {
		rows = []T{}
	}
	return Page[T]{Values: rows, Start: p.Start, Limit: p.Limit, IsLastPage: last}
}
