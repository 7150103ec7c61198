// Package cachestore puts a bounded in-memory cache in front of the store
// reads that every request makes: a principal's access on a resource and a
// repository by project key and slug. Any write that could change them, made
// through this store, drops the whole cache at once and calls the change
// hook, so that other nodes can drop theirs; a short TTL bounds what a missed
// notification could leave behind.
package cachestore

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/store"
)

const (
	entries = 100_000
	ttl     = time.Minute
)

type accessKey struct {
	user int64
	res  latch.Resource
}

type repoKey struct{ project, slug string }

// Store caches reads of an underlying store.Store.
type Store struct {
	store.Store
	access   *expirable.LRU[accessKey, latch.Access]
	repos    *expirable.LRU[repoKey, latch.Repository]
	onChange atomic.Pointer[func()]
	// gen counts purges, so that a read racing a write never caches what it
	// read before the write.
	gen atomic.Uint64
}

// New returns a caching Store over s.
func New(s store.Store) *Store {
	return &Store{
		Store:  s,
		access: expirable.NewLRU[accessKey, latch.Access](entries, nil, ttl),
		repos:  expirable.NewLRU[repoKey, latch.Repository](entries, nil, ttl),
	}
}

// OnChange sets a function called after every write that purged the cache,
// for notifying other nodes.
func (s *Store) OnChange(f func()) { s.onChange.Store(&f) }

// Purge drops every cached entry, e.g. when another node reports a change.
func (s *Store) Purge() {
	s.gen.Add(1)
	s.access.Purge()
	s.repos.Purge()
}

func (s *Store) changed() {
	s.Purge()
	if f := s.onChange.Load(); f != nil {
		(*f)()
	}
}

// Access returns a cached access decision input, reading it on a miss.
func (s *Store) Access(ctx context.Context, userID int64, r latch.Resource) (latch.Access, error) {
	k := accessKey{userID, r}
	if a, ok := s.access.Get(k); ok {
		return a, nil
	}
	gen := s.gen.Load()
	a, err := s.Store.Access(ctx, userID, r)
	if err == nil && s.gen.Load() == gen {
		s.access.Add(k, a)
		// A purge between the check and the Add removes it.
		if s.gen.Load() != gen {
			s.access.Remove(k)
		}
	}
	return a, err
}

// RepoBySlug returns a cached repository, reading it on a miss.
func (s *Store) RepoBySlug(ctx context.Context, projectKey, slug string) (*latch.Repository, error) {
	k := repoKey{strings.ToLower(projectKey), strings.ToLower(slug)}
	if r, ok := s.repos.Get(k); ok {
		return cloneRepo(r), nil
	}
	gen := s.gen.Load()
	r, err := s.Store.RepoBySlug(ctx, projectKey, slug)
	if err == nil && s.gen.Load() == gen {
		s.repos.Add(k, *cloneRepo(*r))
		if s.gen.Load() != gen {
			s.repos.Remove(k)
		}
	}
	return r, err
}

func cloneRepo(r latch.Repository) *latch.Repository {
	if r.Project != nil {
		p := *r.Project
		r.Project = &p
	}
	return &r
}

// WithTx runs fn in a transaction of the underlying store, uncached, and,
// when it committed a write that changes what is cached, purges: whatever
// fn wrote is visible at once.
func (s *Store) WithTx(ctx context.Context, fn func(store.Store) error) error {
	var dirty atomic.Bool
	err := s.Store.WithTx(ctx, func(tx store.Store) error {
		return fn(&txTracker{Store: tx, dirty: &dirty})
	})
	if dirty.Load() {
		// Purged even after a failure: a commit that failed late may still
		// have happened, and a purge is only ever too careful.
		s.changed()
	}
	return err
}

// txTracker notes, inside a transaction, the writes that change cached
// reads.
type txTracker struct {
	store.Store
	dirty *atomic.Bool
}

func (t *txTracker) mark() { t.dirty.Store(true) }

// WithTx nests, keeping the tracking.
func (t *txTracker) WithTx(ctx context.Context, fn func(store.Store) error) error {
	return t.Store.WithTx(ctx, func(tx store.Store) error { return fn(&txTracker{Store: tx, dirty: t.dirty}) })
}

func (t *txTracker) UpdateUser(ctx context.Context, u *latch.User) error {
	t.mark()
	return t.Store.UpdateUser(ctx, u)
}

func (t *txTracker) DeleteUser(ctx context.Context, id int64) error {
	t.mark()
	return t.Store.DeleteUser(ctx, id)
}

func (t *txTracker) DeleteGroup(ctx context.Context, id int64) error {
	t.mark()
	return t.Store.DeleteGroup(ctx, id)
}

func (t *txTracker) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	t.mark()
	return t.Store.AddGroupMember(ctx, groupID, userID)
}

func (t *txTracker) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	t.mark()
	return t.Store.RemoveGroupMember(ctx, groupID, userID)
}

func (t *txTracker) CreateProject(ctx context.Context, p *latch.Project) error {
	t.mark()
	return t.Store.CreateProject(ctx, p)
}

func (t *txTracker) UpdateProject(ctx context.Context, p *latch.Project) error {
	t.mark()
	return t.Store.UpdateProject(ctx, p)
}

func (t *txTracker) DeleteProject(ctx context.Context, id int64) error {
	t.mark()
	return t.Store.DeleteProject(ctx, id)
}

func (t *txTracker) CreateRepo(ctx context.Context, r *latch.Repository) error {
	t.mark()
	return t.Store.CreateRepo(ctx, r)
}

func (t *txTracker) UpdateRepo(ctx context.Context, r *latch.Repository) error {
	t.mark()
	return t.Store.UpdateRepo(ctx, r)
}

func (t *txTracker) DeleteRepo(ctx context.Context, id int64) error {
	t.mark()
	return t.Store.DeleteRepo(ctx, id)
}

func (t *txTracker) SetPermission(ctx context.Context, r latch.Resource, sub store.Subject, p latch.Permission) error {
	t.mark()
	return t.Store.SetPermission(ctx, r, sub, p)
}

func (t *txTracker) RevokePermission(ctx context.Context, r latch.Resource, sub store.Subject) error {
	t.mark()
	return t.Store.RevokePermission(ctx, r, sub)
}

// The writes below change what Access or RepoBySlug answer.

// UpdateUser implements store.Users and purges.
func (s *Store) UpdateUser(ctx context.Context, u *latch.User) error {
	defer s.changed()
	return s.Store.UpdateUser(ctx, u)
}

// DeleteUser implements store.Users and purges.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	defer s.changed()
	return s.Store.DeleteUser(ctx, id)
}

// DeleteGroup implements store.Groups and purges.
func (s *Store) DeleteGroup(ctx context.Context, id int64) error {
	defer s.changed()
	return s.Store.DeleteGroup(ctx, id)
}

// AddGroupMember implements store.Groups and purges.
func (s *Store) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	defer s.changed()
	return s.Store.AddGroupMember(ctx, groupID, userID)
}

// RemoveGroupMember implements store.Groups and purges.
func (s *Store) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	defer s.changed()
	return s.Store.RemoveGroupMember(ctx, groupID, userID)
}

// CreateProject implements store.Projects and purges.
func (s *Store) CreateProject(ctx context.Context, p *latch.Project) error {
	defer s.changed()
	return s.Store.CreateProject(ctx, p)
}

// UpdateProject implements store.Projects and purges.
func (s *Store) UpdateProject(ctx context.Context, p *latch.Project) error {
	defer s.changed()
	return s.Store.UpdateProject(ctx, p)
}

// DeleteProject implements store.Projects and purges.
func (s *Store) DeleteProject(ctx context.Context, id int64) error {
	defer s.changed()
	return s.Store.DeleteProject(ctx, id)
}

// CreateRepo implements store.Repositories and purges.
func (s *Store) CreateRepo(ctx context.Context, r *latch.Repository) error {
	defer s.changed()
	return s.Store.CreateRepo(ctx, r)
}

// UpdateRepo implements store.Repositories and purges.
func (s *Store) UpdateRepo(ctx context.Context, r *latch.Repository) error {
	defer s.changed()
	return s.Store.UpdateRepo(ctx, r)
}

// DeleteRepo implements store.Repositories and purges.
func (s *Store) DeleteRepo(ctx context.Context, id int64) error {
	defer s.changed()
	return s.Store.DeleteRepo(ctx, id)
}

// SetPermission implements store.Permissions and purges.
func (s *Store) SetPermission(ctx context.Context, r latch.Resource, sub store.Subject, p latch.Permission) error {
	defer s.changed()
	return s.Store.SetPermission(ctx, r, sub, p)
}

// RevokePermission implements store.Permissions and purges.
func (s *Store) RevokePermission(ctx context.Context, r latch.Resource, sub store.Subject) error {
	defer s.changed()
	return s.Store.RevokePermission(ctx, r, sub)
}
