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
	writer   // the underlying store, its cache-changing writes purging
	access   *expirable.LRU[accessKey, latch.Access]
	repos    *expirable.LRU[repoKey, latch.Repository]
	onChange atomic.Pointer[func()]
	// gen counts purges, so that a read racing a write never caches what it
	// read before the write.
	gen atomic.Uint64
}

// New returns a caching Store over s.
func New(s store.Store) *Store {
	c := &Store{
		access: expirable.NewLRU[accessKey, latch.Access](entries, nil, ttl),
		repos:  expirable.NewLRU[repoKey, latch.Repository](entries, nil, ttl),
	}
	c.writer = writer{Store: s, wrote: c.changed}
	return c
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
	mark := func() { dirty.Store(true) }
	err := s.Store.WithTx(ctx, func(tx store.Store) error {
		return fn(writer{Store: tx, wrote: mark})
	})
	if dirty.Load() {
		// Purged even after a failure: a commit that failed late may still
		// have happened, and a purge is only ever too careful.
		s.changed()
	}
	return err
}

// writer is a store whose writes that change what Store caches call wrote
// after them: at the top level to purge, inside a transaction to note that
// the commit must purge.
type writer struct {
	store.Store
	wrote func()
}

// WithTx nests, keeping the notice.
func (w writer) WithTx(ctx context.Context, fn func(store.Store) error) error {
	return w.Store.WithTx(ctx, func(tx store.Store) error { return fn(writer{Store: tx, wrote: w.wrote}) })
}

// UpdateUser implements store.Users.
func (w writer) UpdateUser(ctx context.Context, u *latch.User) error {
	defer w.wrote()
	return w.Store.UpdateUser(ctx, u)
}

// DeleteUser implements store.Users.
func (w writer) DeleteUser(ctx context.Context, id int64) error {
	defer w.wrote()
	return w.Store.DeleteUser(ctx, id)
}

// DeleteGroup implements store.Groups.
func (w writer) DeleteGroup(ctx context.Context, id int64) error {
	defer w.wrote()
	return w.Store.DeleteGroup(ctx, id)
}

// AddGroupMember implements store.Groups.
func (w writer) AddGroupMember(ctx context.Context, groupID, userID int64) error {
	defer w.wrote()
	return w.Store.AddGroupMember(ctx, groupID, userID)
}

// RemoveGroupMember implements store.Groups.
func (w writer) RemoveGroupMember(ctx context.Context, groupID, userID int64) error {
	defer w.wrote()
	return w.Store.RemoveGroupMember(ctx, groupID, userID)
}

// CreateProject implements store.Projects.
func (w writer) CreateProject(ctx context.Context, p *latch.Project) error {
	defer w.wrote()
	return w.Store.CreateProject(ctx, p)
}

// UpdateProject implements store.Projects.
func (w writer) UpdateProject(ctx context.Context, p *latch.Project) error {
	defer w.wrote()
	return w.Store.UpdateProject(ctx, p)
}

// DeleteProject implements store.Projects.
func (w writer) DeleteProject(ctx context.Context, id int64) error {
	defer w.wrote()
	return w.Store.DeleteProject(ctx, id)
}

// CreateRepo implements store.Repositories.
func (w writer) CreateRepo(ctx context.Context, r *latch.Repository) error {
	defer w.wrote()
	return w.Store.CreateRepo(ctx, r)
}

// UpdateRepo implements store.Repositories.
func (w writer) UpdateRepo(ctx context.Context, r *latch.Repository) error {
	defer w.wrote()
	return w.Store.UpdateRepo(ctx, r)
}

// DeleteRepo implements store.Repositories.
func (w writer) DeleteRepo(ctx context.Context, id int64) error {
	defer w.wrote()
	return w.Store.DeleteRepo(ctx, id)
}

// SetPermission implements store.Permissions.
func (w writer) SetPermission(ctx context.Context, r latch.Resource, sub store.Subject, p latch.Permission) error {
	defer w.wrote()
	return w.Store.SetPermission(ctx, r, sub, p)
}

// RevokePermission implements store.Permissions.
func (w writer) RevokePermission(ctx context.Context, r latch.Resource, sub store.Subject) error {
	defer w.wrote()
	return w.Store.RevokePermission(ctx, r, sub)
}
