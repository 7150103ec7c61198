package cachestore_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/cachestore"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/store"
)

// counting counts the reads that reach the underlying store.
type counting struct {
	store.Store
	access, repos atomic.Int64
}

func (c *counting) Access(ctx context.Context, userID int64, r latch.Resource) (latch.Access, error) {
	c.access.Add(1)
	return c.Store.Access(ctx, userID, r)
}

func (c *counting) RepoBySlug(ctx context.Context, key, slug string) (*latch.Repository, error) {
	c.repos.Add(1)
	return c.Store.RepoBySlug(ctx, key, slug)
}

func setup(t *testing.T) (*cachestore.Store, *counting, *latch.User, *latch.Repository) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &counting{Store: db}
	s := cachestore.New(c)
	u := &latch.User{Name: "u", Slug: "u", Email: "u@example.com", Active: true, Type: latch.UserNormal}
	if err := s.CreateUser(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	p := &latch.Project{Key: "P", Name: "P"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := &latch.Repository{ProjectID: p.ID, Slug: "r", Name: "r"}
	if err := s.CreateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	return s, c, u, r
}

func TestReadsAreCachedAndWritesPurge(t *testing.T) {
	ctx := context.Background()
	s, c, u, r := setup(t)
	res := latch.Resource{ProjectID: r.ProjectID, RepoID: r.ID}
	notified := 0
	s.OnChange(func() { notified++ })

	for range 10 {
		a, err := s.Access(ctx, u.ID, res)
		if err != nil || a.Repo != latch.LevelNone {
			t.Fatalf("Access = %+v, %v", a, err)
		}
		if _, err := s.RepoBySlug(ctx, "p", "R"); err != nil {
			t.Fatal(err)
		}
	}
	if c.access.Load() != 1 || c.repos.Load() != 1 {
		t.Fatalf("store reads: access %d, repos %d; want 1 each", c.access.Load(), c.repos.Load())
	}

	// A grant is seen at once.
	if err := s.SetPermission(ctx, res, store.Subject{UserID: u.ID}, latch.RepoWrite); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Access(ctx, u.ID, res); a.Repo != latch.LevelWrite {
		t.Fatalf("after grant Access.Repo = %v", a.Repo)
	}
	if notified != 1 {
		t.Fatalf("OnChange called %d times, want 1", notified)
	}
	// Writes inside a transaction purge after it.
	err := s.WithTx(ctx, func(tx store.Store) error {
		return tx.RevokePermission(ctx, res, store.Subject{UserID: u.ID})
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Access(ctx, u.ID, res); a.Repo != latch.LevelNone {
		t.Fatalf("after revoke in a transaction Access.Repo = %v", a.Repo)
	}
	// A renamed repository is not found under its old slug.
	r.Name, r.Slug = "renamed", "renamed"
	if err := s.UpdateRepo(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RepoBySlug(ctx, "P", "r"); err == nil {
		t.Fatal("old slug still resolves after rename")
	}
	// A purge from elsewhere (another node) drops everything.
	before := c.access.Load()
	s.Purge()
	if _, err := s.Access(ctx, u.ID, res); err != nil {
		t.Fatal(err)
	}
	if c.access.Load() != before+1 {
		t.Fatal("Purge did not drop the cached access")
	}
}

func TestCachedRepositoriesAreCopies(t *testing.T) {
	ctx := context.Background()
	s, _, _, _ := setup(t)
	a, err := s.RepoBySlug(ctx, "P", "r")
	if err != nil {
		t.Fatal(err)
	}
	a.Name, a.Project.Key = "mutated", "X"
	b, err := s.RepoBySlug(ctx, "P", "r")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "r" || b.Project.Key != "P" {
		t.Fatalf("a caller's change reached the cache: %+v %+v", b, b.Project)
	}
}

func TestTransactionsWithoutCachedWritesKeepTheCache(t *testing.T) {
	ctx := context.Background()
	s, c, u, r := setup(t)
	res := latch.Resource{ProjectID: r.ProjectID, RepoID: r.ID}
	if _, err := s.Access(ctx, u.ID, res); err != nil {
		t.Fatal(err)
	}
	notified := 0
	s.OnChange(func() { notified++ })
	err := s.WithTx(ctx, func(tx store.Store) error {
		return tx.PutSetting(ctx, "k", "v")
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Access(ctx, u.ID, res); err != nil {
		t.Fatal(err)
	}
	if c.access.Load() != 1 || notified != 0 {
		t.Fatalf("a settings-only transaction purged: %d reads, %d notices", c.access.Load(), notified)
	}
	// A nested transaction that grants still purges.
	err = s.WithTx(ctx, func(tx store.Store) error {
		return tx.WithTx(ctx, func(inner store.Store) error {
			return inner.SetPermission(ctx, res, store.Subject{UserID: u.ID}, latch.RepoRead)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Access(ctx, u.ID, res); a.Repo != latch.LevelRead || notified != 1 {
		t.Fatalf("nested grant: repo level %v, %d notices", a.Repo, notified)
	}
}
