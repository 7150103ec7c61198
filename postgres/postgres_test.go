package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/internal/pgtest"
	"github.com/latchhq/latch/postgres"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConcurrentMigrations starts several nodes on one empty database at
// once: the advisory lock lets one migrate and the others wait.
func TestConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	const nodes = 6
	stores := make([]store.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx, url)
			stores[i], errs[i] = s, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	if err := stores[0].CreateUser(ctx, &latch.User{Name: "alice", Active: true}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[nodes-1].UserByName(ctx, "alice"); err != nil {
		t.Fatalf("another node does not see the user: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := postgres.Open(ctx, "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2"); err == nil {
		t.Error("Open of an unreachable server succeeded")
	} else if contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
	if _, err := postgres.Open(ctx, "::not a url"); err == nil {
		t.Error("Open of a bad URL succeeded")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
