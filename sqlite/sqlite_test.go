package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/store/storetest"
)

func open(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen checks that opening an existing database keeps its data and
// does not re-run migrations.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with spaces?#%", "latch.db")
	if _, err := sqlite.Open(ctx, path); err == nil {
		t.Fatal("Open created a database in a missing directory")
	}
	path = filepath.Join(t.TempDir(), "odd ?#% name.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &latch.User{Name: "alice", Active: true}, "h"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.UserByName(ctx, "alice"); err != nil {
		t.Fatalf("user after reopen: %v", err)
	}
	var mode string
	if err := s.DB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.DB().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(matches) == 0 {
		t.Error("no database file at the odd path")
	}
}

// TestConcurrentWriters checks that concurrent writers, in and out of
// transactions, wait for each other instead of failing with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A second handle on the same file, as a second process would have.
	s2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	p := &latch.Project{Key: "PRJ", Name: "Project"}
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}

	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		st := store.Store(s)
		if w%2 == 1 {
			st = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("u%d-%d", w, i)
				err := st.WithTx(ctx, func(tx store.Store) error {
					// Read, then write: the pattern that deadlocks deferred transactions.
					if _, err := tx.UserByName(ctx, name); !errors.Is(err, latch.ErrNotFound) {
						return fmt.Errorf("lookup %s: %v", name, err)
					}
					u := &latch.User{Name: name, Active: true}
					if err := tx.CreateUser(ctx, u, ""); err != nil {
						return err
					}
					return tx.SetPermission(ctx, latch.Resource{ProjectID: p.ID}, store.Subject{UserID: u.ID}, latch.ProjectRead)
				})
				if err != nil {
					errs <- err
				}
				// And a write outside any transaction.
				if err := st.PutSetting(ctx, fmt.Sprintf("k%d", w), name); err != nil {
					errs <- err
				}
				if _, err := st.Access(ctx, 1, latch.Resource{ProjectID: p.ID}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n, err := s.CountUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != workers*each {
		t.Errorf("CountUsers = %d, want %d", n, workers*each)
	}
}
