package backend_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/sqlstore"
)

// newTestBackend returns a backend over a fresh SQLite store and repository
// directory, with the first system administrator bootstrapped (name,
// password "pw", email name@example.com) and that administrator's principal.
func newTestBackend(t *testing.T, admin string) (*backend.Backend, *sqlstore.Store, *gitrepo.Manager, *latch.Principal) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	repos, err := gitrepo.NewManager(filepath.Join(dir, "repositories"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := backend.New(st, repos, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := b.Bootstrap(ctx, admin, "pw", admin+"@example.com"); err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByName(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	return b, st, repos, &latch.Principal{User: u, Credential: latch.CredPassword}
}
