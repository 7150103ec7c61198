package backend

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/token"
)

func TestValidateTokenPermissions(t *testing.T) {
	valid := [][]string{
		{"PROJECT_READ", "REPO_READ"},
		{"PROJECT_READ", "REPO_WRITE"},
		{"PROJECT_WRITE", "REPO_WRITE"},
		{"PROJECT_READ", "REPO_ADMIN"},
		{"PROJECT_WRITE", "REPO_ADMIN"},
		{"PROJECT_ADMIN", "REPO_ADMIN"},
	}
	invalid := [][]string{
		{"PROJECT_WRITE", "REPO_READ"},
		{"PROJECT_ADMIN", "REPO_READ"},
		{"PROJECT_ADMIN", "REPO_WRITE"},
		{},
		{"REPO_FLY"},
		{"ADMIN"},
		{"SYS_ADMIN", "REPO_ADMIN"},
		{"LICENSED_USER", "REPO_READ"},
		{"PROJECT_CREATE", "REPO_ADMIN"},
		{"REPO_READ", "REPO_WRITE"},
		{"PROJECT_READ", "PROJECT_WRITE", "REPO_ADMIN"},
		{"project_read", "repo_read"},
		{""},
	}
	for _, kind := range []latch.CredentialKind{latch.CredPersonalToken, latch.CredProjectToken} {
		for _, v := range valid {
			got, err := validateTokenPermissions(kind, v)
			if err != nil {
				t.Errorf("%s %v: %v", kind, v, err)
				continue
			}
			if names := PermissionNames(got); !slices.Equal(names, slices.Sorted(slices.Values(v))) {
				t.Errorf("%s %v: stored as %v", kind, v, names)
			}
			// Order does not matter.
			if _, err := validateTokenPermissions(kind, []string{v[1], v[0]}); err != nil {
				t.Errorf("%s %v reversed: %v", kind, v, err)
			}
		}
		for _, v := range append(invalid, []string{"PROJECT_ADMIN", "REPO_WRITE", "REPO_ADMIN"}) {
			if _, err := validateTokenPermissions(kind, v); !errors.Is(err, latch.ErrInvalid) {
				t.Errorf("%s %v: %v, want ErrInvalid", kind, v, err)
			}
		}
	}
	for _, p := range []string{"REPO_READ", "REPO_WRITE", "REPO_ADMIN"} {
		if _, err := validateTokenPermissions(latch.CredRepoToken, []string{p}); err != nil {
			t.Errorf("repository token %s: %v", p, err)
		}
	}
	for _, v := range append(valid, []string{"PROJECT_READ"}, []string{"PROJECT_ADMIN"}) {
		if _, err := validateTokenPermissions(latch.CredRepoToken, v); !errors.Is(err, latch.ErrInvalid) {
			t.Errorf("repository token %v: %v, want ErrInvalid", v, err)
		}
	}
}

type tokenTestPolicy struct{ s *settings.Settings }

func (p tokenTestPolicy) Current() *settings.Settings { return p.s }

// tokenBackend is a Backend over a SQLite store in a temporary directory with
// one user, alice, and a fixed clock.
func tokenBackend(t *testing.T, now time.Time) (*Backend, *latch.Principal, *token.Hasher) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := New(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.now = func() time.Time { return now }
	h := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	b.SetHasher(h)
	u := &latch.User{Name: "alice", Slug: "alice", Email: "alice@example.com", Active: true, Type: latch.UserNormal, CreatedAt: 1}
	if err := st.CreateUser(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	return b, &latch.Principal{User: u, Credential: latch.CredPassword}, h
}

func tokPtr[T any](v T) *T { return &v }

// TestCreateTokenExpiry: expiryDate is exactly createdDate + N days, and the
// token authenticates until one millisecond before it.
func TestCreateTokenExpiry(t *testing.T) {
	now := time.UnixMilli(1_800_000_123_456)
	b, p, h := tokenBackend(t, now)
	ctx := context.Background()
	for _, n := range []int{1, 30, 3650} {
		v, err := b.CreateToken(ctx, p, TokenOwnerRef{UserSlug: "alice"}, TokenInput{Name: tokPtr("t"), Permissions: &[]string{"REPO_READ"}, ExpiryDays: &n})
		if err != nil {
			t.Fatalf("expiryDays %d: %v", n, err)
		}
		if v.CreatedAt != now.UnixMilli() || v.ExpiresAt != now.UnixMilli()+int64(n)*86_400_000 {
			t.Errorf("expiryDays %d: created %d expires %d", n, v.CreatedAt, v.ExpiresAt)
		}
		if k, err := token.Parse(v.Secret); err != nil || k != token.Personal {
			t.Errorf("secret: %v %v", k, err)
		}
		tokens := auth.NewTokens(b.Store(), h, nil, nil, nil)
		for _, c := range []struct {
			at int64
			ok bool
		}{{v.ExpiresAt - 1, true}, {v.ExpiresAt, false}} {
			tokens.SetClock(func() time.Time { return time.UnixMilli(c.at) })
			_, err := tokens.ResolveToken(ctx, v.Secret, token.Personal, auth.Attempt{Credentials: auth.Credentials{Scheme: auth.SchemeBearer, Secret: v.Secret}})
			if (err == nil) != c.ok {
				t.Errorf("expiryDays %d at %d (expiry %d): err %v", n, c.at, v.ExpiresAt, err)
			}
		}
	}
	for _, n := range []int{-1, 3651, 1_000_000} {
		if _, err := b.CreateToken(ctx, p, TokenOwnerRef{UserSlug: "alice"}, TokenInput{Name: tokPtr("t"), Permissions: &[]string{"REPO_READ"}, ExpiryDays: &n}); !errors.Is(err, latch.ErrInvalid) {
			t.Errorf("expiryDays %d: %v, want ErrInvalid", n, err)
		}
	}
	// The expiry never changes on update, whatever else is asked.
	v, _ := b.CreateToken(ctx, p, TokenOwnerRef{UserSlug: "alice"}, TokenInput{Name: tokPtr("u"), Permissions: &[]string{"REPO_READ"}})
	if _, err := b.UpdateToken(ctx, p, TokenOwnerRef{UserSlug: "alice"}, v.ID, TokenInput{ExpiryDays: tokPtr(5)}); err == nil || err.Error() != "The expiry of a token cannot be changed" {
		t.Errorf("expiry update: %v", err)
	}
}

// TestCreateTokenLimitConcurrent: the per-user maximum holds when creations
// race.
func TestCreateTokenLimitConcurrent(t *testing.T) {
	b, p, _ := tokenBackend(t, time.UnixMilli(1_800_000_000_000))
	pol := settings.Default()
	pol.Tokens.MaxPerUser = 5
	b.SetPolicy(tokenTestPolicy{pol})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.CreateToken(ctx, p, TokenOwnerRef{UserSlug: "alice"}, TokenInput{Name: tokPtr("t"), Permissions: &[]string{"REPO_READ"}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, latch.ErrInvalid):
				full++
			default:
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 5 || full != 15 {
		t.Errorf("20 concurrent creates with a limit of 5: %d created, %d refused", ok, full)
	}
}
