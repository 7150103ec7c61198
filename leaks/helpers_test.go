package leaks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/leaks"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// countingStore counts the token lookups that reach the database.
type countingStore struct {
	store.Store
	lookups atomic.Int64
	fail    atomic.Bool // token lookups fail, as when the database is down
}

func (c *countingStore) TokenByDigest(ctx context.Context, d []byte) (*store.AccessToken, error) {
	c.lookups.Add(1)
	if c.fail.Load() {
		return nil, errors.New("database unavailable")
	}
	return c.Store.TokenByDigest(ctx, d)
}

func (c *countingStore) RevokedTokenByDigest(ctx context.Context, d []byte) (*store.RevokedToken, error) {
	c.lookups.Add(1)
	return c.Store.RevokedTokenByDigest(ctx, d)
}

// recorder is an audit.Recorder keeping events in memory.
type recorder struct {
	mu     sync.Mutex
	events []store.AuditEvent
}

func (r *recorder) Record(_ context.Context, e store.AuditEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) ofType(typ string) []store.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.AuditEvent
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

type mail struct{ to, subject, body string }

// mails returns every message queued in the outbox so far.
func (e *env) mails(t testing.TB) []mail {
	t.Helper()
	ms, err := e.st.ClaimMail(context.Background(), store.MailClaim{
		Now: time.Now().Add(time.Hour).UnixMilli(), LeaseUntil: time.Now().Add(2 * time.Hour).UnixMilli(), Token: "test", Limit: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		e.claimed = append(e.claimed, mail{strings.Join(m.To, ","), m.Subject, m.Body})
	}
	return e.claimed
}

// tokenHooks records the token changes the backend reports (what drops the
// authentication cache).
type tokenHooks struct {
	mu      sync.Mutex
	changed []string
}

func (h *tokenHooks) TokenChanged(_ context.Context, id string) {
	h.mu.Lock()
	h.changed = append(h.changed, id)
	h.mu.Unlock()
}

func (h *tokenHooks) Pending(string) (store.TokenUse, bool) { return store.TokenUse{}, false }

func (h *tokenHooks) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.changed...)
}

// env is a backend over a fresh SQLite database with an administrator and
// a user, and a leaks.Service over it.
type env struct {
	st      *countingStore
	b       *backend.Backend
	hasher  *token.Hasher
	admin   *latch.Principal
	alice   *latch.Principal
	audit   *recorder
	claimed []mail
	hooks   *tokenHooks
	policy  *settings.Service
	svc     *leaks.Service
	mux     *http.ServeMux
}

const baseURL = "https://latch.example.com"

func newEnv(t testing.TB, opts ...func(*leaks.Config)) *env {
	t.Helper()
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	e := &env{st: &countingStore{Store: raw}, hasher: token.NewHasher(bytes.Repeat([]byte("k"), 32)),
		audit: &recorder{}, hooks: &tokenHooks{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.b = backend.New(e.st, nil, log)
	e.b.SetHasher(e.hasher)
	e.b.SetTokenHooks(e.hooks)
	if _, err := e.b.Bootstrap(ctx, "admin", "admin-password-1", "admin@localhost"); err != nil {
		t.Fatal(err)
	}
	admin, err := raw.UserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.admin = &latch.Principal{User: admin, Credential: latch.CredPassword}
	alice, err := e.b.CreateUser(ctx, e.admin, backend.NewUser{Name: "alice", Password: "alice-password-1", DisplayName: "Alice", Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e.alice = &latch.Principal{User: alice, Credential: latch.CredPassword}
	e.policy = settings.NewService(raw, nil)
	cfg := leaks.Config{
		Backend: e.b, Policy: e.policy, Audit: e.audit, Log: log,
		Links: dcrest.Links{BaseURL: baseURL},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.svc = leaks.New(cfg)
	e.mux = http.NewServeMux()
	e.svc.Register(e.mux)
	return e
}

// createToken creates a personal token of p's user through the backend.
func (e *env) createToken(t testing.TB, p *latch.Principal, name string) *backend.TokenView {
	t.Helper()
	v, err := e.b.CreateToken(context.Background(), p, backend.TokenOwnerRef{UserSlug: p.User.Slug}, backend.TokenInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// plantToken stores a personal token of user directly, with the given
// expiry (epoch ms, 0 for never), and returns its secret.
func (e *env) plantToken(t testing.TB, user *latch.User, id string, expiresAt int64) string {
	t.Helper()
	secret, err := token.Generate(token.Personal)
	if err != nil {
		t.Fatal(err)
	}
	d := e.hasher.Digest(secret)
	err = e.st.CreateToken(context.Background(), &store.AccessToken{ID: id, Kind: latch.CredPersonalToken, Name: "planted " + id,
		UserID: user.ID, Permissions: []latch.Permission{latch.RepoRead}, Digest: d[:], CreatedAt: time.Now().UnixMilli(), ExpiresAt: expiresAt})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// post sends a JSON body to the service's mux as principal p (nil:
// anonymous) from address addr.
func (e *env) post(t testing.TB, p *latch.Principal, addr, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.RemoteAddr = addr + ":41000"
	if p != nil {
		r = r.WithContext(httpx.WithPrincipal(r.Context(), p))
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w
}

func jsonBody(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
	return v
}
