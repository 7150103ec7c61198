package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// fakeTokenStore is an in-memory TokenStore (and UserStore) that counts
// every call, so tests can tell cache hits from lookups and prove that
// nothing reached the store.
type fakeTokenStore struct {
	mu        sync.Mutex
	tokens    map[string]*store.AccessToken // by digest
	users     map[int64]*latch.User
	byDigest  int
	byUserID  int
	byLogin   int
	hashes    int
	groups    int
	access    int
	recorded  [][]store.TokenUse
	failUse   error
	addresses map[string]bool
}

func newFakeTokenStore() *fakeTokenStore {
	return &fakeTokenStore{tokens: map[string]*store.AccessToken{}, users: map[int64]*latch.User{}}
}

func (f *fakeTokenStore) TokenByDigest(_ context.Context, d []byte) (*store.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byDigest++
	t, ok := f.tokens[string(d)]
	if !ok {
		return nil, latch.Errorf(latch.ErrNotFound, "no such token")
	}
	c := *t
	return &c, nil
}

func (f *fakeTokenStore) UserByID(_ context.Context, id int64) (*latch.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byUserID++
	u, ok := f.users[id]
	if !ok {
		return nil, latch.Errorf(latch.ErrNotFound, "no such user")
	}
	c := *u
	return &c, nil
}

func (f *fakeTokenStore) UserGroups(context.Context, int64) ([]latch.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups++
	return nil, nil
}

// TokenAuthByDigest counts one lookup of each kind, as if the store read
// the token, its owner and the groups separately.
func (f *fakeTokenStore) TokenAuthByDigest(ctx context.Context, d []byte) (*store.TokenAuth, error) {
	t, err := f.TokenByDigest(ctx, d)
	if err != nil {
		return nil, err
	}
	u, err := f.UserByID(ctx, t.UserID)
	if err != nil {
		// The store joins tokens with their owners: no owner, no token.
		return nil, latch.Errorf(latch.ErrNotFound, "no such token")
	}
	if _, err := f.UserGroups(ctx, u.ID); err != nil {
		return nil, err
	}
	return &store.TokenAuth{Token: *t, Owner: *u}, nil
}

func (f *fakeTokenStore) RecordTokenUse(_ context.Context, uses []store.TokenUse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUse != nil {
		return f.failUse
	}
	f.recorded = append(f.recorded, append([]store.TokenUse(nil), uses...))
	return nil
}

func (f *fakeTokenStore) UserByNameOrEmail(context.Context, string) (*latch.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byLogin++
	return nil, latch.Errorf(latch.ErrNotFound, "no such user")
}

func (f *fakeTokenStore) PasswordHash(context.Context, int64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hashes++
	return "", latch.Errorf(latch.ErrNotFound, "no password")
}

func (f *fakeTokenStore) Access(context.Context, int64, latch.Resource) (latch.Access, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access++
	return latch.Access{}, nil
}

func (f *fakeTokenStore) calls() (digest, user, login, hash int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byDigest, f.byUserID, f.byLogin, f.hashes
}

// fixture is a Tokens over a fake store holding one user and helpers to
// plant tokens.
type fixture struct {
	st     *fakeTokenStore
	hasher *token.Hasher
	tokens *Tokens
	uses   *UseTracker
	now    time.Time
	alice  *latch.User
	svc    *latch.User
	closed bool // uses was closed by the test (Close is not idempotent)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		st:     newFakeTokenStore(),
		hasher: token.NewHasher([]byte("0123456789abcdef0123456789abcdef")),
		now:    time.UnixMilli(1_800_000_000_000),
		alice:  &latch.User{ID: 1, Name: "alice", Slug: "alice", Email: "Alice@Example.com", Active: true, Type: latch.UserNormal},
		svc:    &latch.User{ID: 2, Name: "access-token-user/1/abc", Slug: "access-token-user_1_abc", Active: true, Type: latch.UserService},
	}
	f.st.users[1], f.st.users[2] = f.alice, f.svc
	f.uses = NewUseTracker(f.st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() {
		if !f.closed {
			_ = f.uses.Close(context.Background())
		}
	})
	f.tokens = NewTokens(f.st, f.hasher, f.uses, nil, nil)
	f.tokens.SetClock(func() time.Time { return f.now })
	return f
}

// plant stores a token of kind for owner and returns its secret.
func (f *fixture) plant(t *testing.T, id string, kind latch.CredentialKind, owner int64, expiresAt int64, perms ...latch.Permission) string {
	t.Helper()
	tk := token.Personal
	if kind != latch.CredPersonalToken {
		tk = token.Repository
	}
	secret, err := token.Generate(tk)
	if err != nil {
		t.Fatal(err)
	}
	d := f.hasher.Digest(secret)
	at := &store.AccessToken{ID: id, Kind: kind, Name: id, UserID: owner, Permissions: perms, Digest: d[:], CreatedAt: f.now.UnixMilli(), ExpiresAt: expiresAt}
	if kind != latch.CredPersonalToken {
		at.ProjectID = 7
	}
	if kind == latch.CredRepoToken {
		at.RepoID = 70
	}
	f.st.mu.Lock()
	f.st.tokens[string(d[:])] = at
	f.st.mu.Unlock()
	return secret
}

func (f *fixture) resolve(secret string, c Credentials) (*latch.Principal, error) {
	kind, err := token.Parse(secret)
	if err != nil {
		return nil, err
	}
	c.Secret = secret
	return f.tokens.ResolveToken(context.Background(), secret, kind, Attempt{Credentials: c, Via: ViaREST, Addr: netip.MustParseAddr("192.0.2.7")})
}

func bearer() Credentials           { return Credentials{Scheme: SchemeBearer} }
func basic(user string) Credentials { return Credentials{Scheme: SchemeBasic, Username: user} }
func refusedFor(err, reason error) bool {
	return errors.Is(err, reason) && errors.Is(err, ErrBadCredentials)
}

func TestResolveTokenExpiryBoundary(t *testing.T) {
	f := newFixture(t)
	exp := f.now.Add(24 * time.Hour).UnixMilli()
	secret := f.plant(t, "000000000001", latch.CredPersonalToken, 1, exp, latch.ProjectRead, latch.RepoRead)

	f.now = time.UnixMilli(exp - 1)
	p, err := f.resolve(secret, bearer())
	if err != nil {
		t.Fatalf("one millisecond before expiryDate: %v", err)
	}
	if p.ExpiresAt != exp || p.CredentialID != "000000000001" || p.Credential != latch.CredPersonalToken {
		t.Errorf("principal %+v", p)
	}
	f.now = time.UnixMilli(exp)
	if _, err := f.resolve(secret, bearer()); !refusedFor(err, ErrTokenExpired) {
		t.Errorf("exactly at expiryDate: %v, want refusal for expiry", err)
	}
	f.now = time.UnixMilli(exp + 1)
	if _, err := f.resolve(secret, basic("alice")); !refusedFor(err, ErrTokenExpired) {
		t.Errorf("after expiryDate (Basic): %v, want refusal for expiry", err)
	}
	// A token without expiry never expires.
	forever := f.plant(t, "000000000002", latch.CredPersonalToken, 1, 0, latch.RepoRead)
	f.now = time.UnixMilli(1 << 50)
	if _, err := f.resolve(forever, bearer()); err != nil {
		t.Errorf("token without expiry, far future: %v", err)
	}
}

func TestResolveTokenBasicUserRules(t *testing.T) {
	f := newFixture(t)
	personal := f.plant(t, "000000000001", latch.CredPersonalToken, 1, 0, latch.ProjectAdmin, latch.RepoAdmin)
	project := f.plant(t, "000000000002", latch.CredProjectToken, 2, 0, latch.ProjectRead, latch.RepoWrite)
	repo := f.plant(t, "000000000003", latch.CredRepoToken, 2, 0, latch.RepoWrite)

	for _, c := range []struct {
		what   string
		secret string
		creds  Credentials
		reason error // nil: accepted
	}{
		{"personal Bearer", personal, bearer(), nil},
		{"personal Basic name", personal, basic("alice"), nil},
		{"personal Basic e-mail, other case", personal, basic("alice@example.COM"), nil},
		{"personal Basic other user", personal, basic("bob"), ErrTokenWrongUser},
		{"personal Basic service user", personal, basic("access-token-user/1/abc"), ErrTokenWrongUser},
		{"project Bearer", project, bearer(), nil},
		{"project Basic service user", project, basic("access-token-user/1/abc"), ErrTokenBasic},
		{"project Basic x-token-auth", project, basic("x-token-auth"), ErrTokenBasic},
		{"repository Bearer", repo, bearer(), nil},
		{"repository Basic", repo, basic("alice"), ErrTokenBasic},
	} {
		p, err := f.resolve(c.secret, c.creds)
		switch {
		case c.reason == nil && err != nil:
			t.Errorf("%s: %v", c.what, err)
		case c.reason != nil && !refusedFor(err, c.reason):
			t.Errorf("%s: %v, want refusal %v", c.what, err, c.reason)
		case c.reason != nil:
			var r *Refused
			if !errors.As(err, &r) || r.TokenID == "" {
				t.Errorf("%s: refusal without token id: %#v", c.what, err)
			}
			if err.Error() != ErrBadCredentials.Message {
				t.Errorf("%s: error text %q reveals the reason", c.what, err.Error())
			}
		case c.reason == nil && p == nil:
			t.Errorf("%s: nil principal", c.what)
		}
	}

	// The principals carry the token's limits and bounds.
	p, _ := f.resolve(personal, bearer())
	if p.User.ID != 1 || p.Grants != nil || p.Limits == nil || p.Limits.Project != latch.LevelAdmin || p.Limits.Repo != latch.LevelAdmin {
		t.Errorf("personal principal %+v limits %+v", p, p.Limits)
	}
	p, _ = f.resolve(project, bearer())
	if p.User.Type != latch.UserService || len(p.Grants) != 1 || p.Grants[0].Resource != (latch.Resource{ProjectID: 7}) ||
		p.Limits.Project != latch.LevelRead || p.Limits.Repo != latch.LevelWrite || p.Credential != latch.CredProjectToken {
		t.Errorf("project principal %+v grants %+v limits %+v", p, p.Grants, p.Limits)
	}
	p, _ = f.resolve(repo, bearer())
	if len(p.Grants) != 1 || p.Grants[0].Resource != (latch.Resource{ProjectID: 7, RepoID: 70}) || p.Limits.Repo != latch.LevelWrite || p.Limits.Project != latch.LevelNone {
		t.Errorf("repository principal grants %+v limits %+v", p.Grants, p.Limits)
	}
}

func TestResolveTokenKindMismatchAndUnknown(t *testing.T) {
	f := newFixture(t)
	// A latr secret whose digest is stored as a personal token (cannot be
	// issued so, but the prefix must agree with the stored kind).
	secret, _ := token.Generate(token.Repository)
	d := f.hasher.Digest(secret)
	f.st.tokens[string(d[:])] = &store.AccessToken{ID: "000000000009", Kind: latch.CredPersonalToken, UserID: 1, Digest: d[:], Permissions: []latch.Permission{latch.RepoRead}}
	if _, err := f.resolve(secret, bearer()); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("kind mismatch: %v", err)
	}
	unknown, _ := token.Generate(token.Personal)
	if _, err := f.resolve(unknown, bearer()); !refusedFor(err, ErrTokenRevoked) {
		t.Errorf("unknown token: %v", err)
	}
}

func TestResolveTokenInactiveOwner(t *testing.T) {
	f := newFixture(t)
	secret := f.plant(t, "000000000001", latch.CredPersonalToken, 1, 0, latch.RepoRead)
	if _, err := f.resolve(secret, bearer()); err != nil {
		t.Fatal(err)
	}
	f.st.mu.Lock()
	f.st.users[1] = &latch.User{ID: 1, Name: "alice", Active: false, Type: latch.UserNormal}
	f.st.mu.Unlock()
	f.tokens.UserChanged(context.Background(), 1)
	if _, err := f.resolve(secret, bearer()); !refusedFor(err, ErrOwnerInactive) {
		t.Errorf("inactive owner: %v", err)
	}
	f.st.mu.Lock()
	delete(f.st.users, 1)
	f.st.mu.Unlock()
	f.tokens.UserChanged(context.Background(), 1)
	if _, err := f.resolve(secret, bearer()); !refusedFor(err, ErrTokenRevoked) {
		t.Errorf("deleted owner (whose tokens go with them): %v", err)
	}
}

func TestResolveTokenCache(t *testing.T) {
	f := newFixture(t)
	secret := f.plant(t, "000000000001", latch.CredPersonalToken, 1, 0, latch.ProjectWrite, latch.RepoWrite)
	for range 100 {
		if _, err := f.resolve(secret, bearer()); err != nil {
			t.Fatal(err)
		}
	}
	if d, u, _, _ := f.st.calls(); d != 1 || u != 1 {
		t.Errorf("100 uses: %d digest lookups and %d user lookups, want 1 and 1 (cache hits)", d, u)
	}

	// An update (permissions lowered) is seen once TokenChanged is called.
	dg := f.hasher.Digest(secret)
	f.st.mu.Lock()
	f.st.tokens[string(dg[:])].Permissions = []latch.Permission{latch.RepoRead}
	f.st.mu.Unlock()
	f.tokens.TokenChanged(context.Background(), "000000000001")
	p, err := f.resolve(secret, bearer())
	if err != nil {
		t.Fatal(err)
	}
	if p.Limits.Repo != latch.LevelRead || p.Limits.Project != latch.LevelNone {
		t.Errorf("after TokenChanged the limits are %+v, want the updated REPO_READ", p.Limits)
	}
	if d, _, _, _ := f.st.calls(); d != 2 {
		t.Errorf("TokenChanged did not cause a fresh lookup: %d lookups", d)
	}

	// Revocation: gone from the store, refused on the next request.
	f.st.mu.Lock()
	delete(f.st.tokens, string(dg[:]))
	f.st.mu.Unlock()
	f.tokens.TokenChanged(context.Background(), "000000000001")
	if _, err := f.resolve(secret, bearer()); !refusedFor(err, ErrTokenRevoked) {
		t.Errorf("after revocation: %v", err)
	}
	// Unknown tokens are not cached as hits: every try reads the store.
	d0, _, _, _ := f.st.calls()
	for range 3 {
		_, _ = f.resolve(secret, bearer())
	}
	if d, _, _, _ := f.st.calls(); d != d0+3 {
		t.Errorf("revoked token: %d lookups for 3 tries", d-d0)
	}
}

// TestChecksumRefusedBeforeStore: a token-shaped secret with a wrong
// checksum is refused by the Authenticator without any store call, and
// never tried as a password.
func TestChecksumRefusedBeforeStore(t *testing.T) {
	f := newFixture(t)
	secret := f.plant(t, "000000000001", latch.CredPersonalToken, 1, 0, latch.RepoRead)
	a := NewAuthenticator(f.st, nil, nil, nil)
	a.SetTokenResolver(f.tokens)
	bad := []byte(secret)
	if bad[len(bad)-1] == '0' {
		bad[len(bad)-1] = '1'
	} else {
		bad[len(bad)-1] = '0'
	}
	badRandom := []byte(secret)
	if badRandom[10] == 'a' {
		badRandom[10] = 'b'
	} else {
		badRandom[10] = 'a'
	}
	for _, s := range []string{string(bad), string(badRandom), "latr_" + secret[5:], "latz_" + secret[5:]} {
		if s == secret {
			continue
		}
		for _, c := range []Credentials{{Scheme: SchemeBearer, Secret: s}, {Scheme: SchemeBasic, Username: "alice", Secret: s}} {
			p, err := a.Authenticate(context.Background(), Attempt{Credentials: c, Via: ViaGit})
			if !errors.Is(err, ErrBadCredentials) || p != nil {
				t.Errorf("%q: %v %v, want ErrBadCredentials", s, p, err)
			}
		}
	}
	if d, u, l, h := f.st.calls(); d != 0 || u != 0 || l != 0 || h != 0 {
		t.Errorf("checksum-invalid tokens reached the store: %d digest, %d user, %d login, %d password-hash lookups", d, u, l, h)
	}
	// The real one goes through.
	if _, err := a.Authenticate(context.Background(), Attempt{Credentials: Credentials{Scheme: SchemeBearer, Secret: secret}}); err != nil {
		t.Errorf("valid token: %v", err)
	}
}

func TestUseTrackerBatches(t *testing.T) {
	f := newFixture(t)
	a := f.plant(t, "000000000001", latch.CredPersonalToken, 1, 0, latch.RepoRead)
	b := f.plant(t, "000000000002", latch.CredPersonalToken, 1, 0, latch.RepoRead)
	c := f.plant(t, "000000000003", latch.CredProjectToken, 2, 0, latch.RepoRead)
	start := f.now
	for i := range 1000 {
		f.now = start.Add(time.Duration(i) * time.Millisecond)
		for _, s := range []string{a, b, c} {
			if _, err := f.resolve(s, bearer()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(f.st.recorded) != 0 {
		t.Fatalf("uses written on the request path: %v", f.st.recorded)
	}
	if u, ok := f.tokens.Pending("000000000002"); !ok || u.At != f.now.UnixMilli() || u.Address != "192.0.2.7" {
		t.Errorf("pending use of b: %+v %v", u, ok)
	}
	if err := f.uses.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.st.recorded) != 1 {
		t.Fatalf("one flush wrote %d batches", len(f.st.recorded))
	}
	batch := f.st.recorded[0]
	if len(batch) != 3 {
		t.Fatalf("3000 uses of 3 tokens flushed as %d rows, want 3: %+v", len(batch), batch)
	}
	for _, u := range batch {
		if u.At != f.now.UnixMilli() {
			t.Errorf("token %s recorded at %d, want the latest use %d", u.ID, u.At, f.now.UnixMilli())
		}
	}
	if _, ok := f.tokens.Pending("000000000001"); ok {
		t.Errorf("still pending after a flush")
	}
	// Nothing pending: no write at all.
	if err := f.uses.Flush(context.Background()); err != nil || len(f.st.recorded) != 1 {
		t.Errorf("empty flush wrote: %v %d", err, len(f.st.recorded))
	}
	// An older use never replaces a newer pending one.
	f.uses.Used("000000000001", 500, netip.Addr{})
	f.uses.Used("000000000001", 400, netip.Addr{})
	if u, _ := f.uses.Pending("000000000001"); u.At != 500 {
		t.Errorf("pending at %d, want 500", u.At)
	}
	// A failed write keeps the uses for the next flush.
	f.st.mu.Lock()
	f.st.failUse = errors.New("disk full")
	f.st.mu.Unlock()
	if err := f.uses.Flush(context.Background()); err == nil {
		t.Errorf("failed flush reported no error")
	}
	if _, ok := f.uses.Pending("000000000001"); !ok {
		t.Errorf("a failed flush dropped the pending use")
	}
	f.st.mu.Lock()
	f.st.failUse = nil
	f.st.mu.Unlock()
	// Close flushes what is pending.
	f.uses.Used("000000000003", 900, netip.MustParseAddr("2001:db8::1"))
	f.closed = true
	if err := f.uses.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	last := f.st.recorded[len(f.st.recorded)-1]
	if len(last) != 2 {
		t.Errorf("Close flushed %+v, want the 2 pending uses", last)
	}
	for _, u := range last {
		if u.ID == "000000000003" && u.Address != "2001:db8::1" {
			t.Errorf("address %q", u.Address)
		}
	}
}

// TestUseTrackerInterval: the background loop writes each token at most
// once per interval, however often it is used.
func TestUseTrackerInterval(t *testing.T) {
	st := newFakeTokenStore()
	u := NewUseTracker(st, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	deadline := time.Now().Add(180 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		u.Used("000000000001", time.Now().UnixMilli(), netip.Addr{})
		n++
		time.Sleep(time.Millisecond)
	}
	if err := u.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	rows := 0
	for _, b := range st.recorded {
		if len(b) != 1 {
			t.Errorf("batch %+v, want one row for one token", b)
		}
		rows += len(b)
	}
	// 180 ms at 50 ms: 3 ticks and the final flush at most.
	if rows < 1 || rows > 5 {
		t.Errorf("%d uses over 180 ms wrote %d rows, want at most one per 50 ms interval", n, rows)
	}
}

// TestResolveTokenSQLite runs the same rules against the real SQLite store:
// one indexed lookup by digest, expiry at the millisecond, last use written
// by the tracker and never moved back.
func TestResolveTokenSQLite(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := &latch.User{Name: "alice", Slug: "alice", Email: "alice@example.com", Active: true, Type: latch.UserNormal, CreatedAt: 1}
	if err := st.CreateUser(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	hasher := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	secret, _ := token.Generate(token.Personal)
	d := hasher.Digest(secret)
	now := time.UnixMilli(1_800_000_000_000)
	exp := now.Add(time.Hour).UnixMilli()
	if err := st.CreateToken(ctx, &store.AccessToken{ID: "123456789012", Kind: latch.CredPersonalToken, Name: "t", UserID: u.ID,
		Permissions: []latch.Permission{latch.ProjectRead, latch.RepoWrite}, Digest: d[:], CreatedAt: now.UnixMilli(), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	uses := NewUseTracker(st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tokens := NewTokens(st, hasher, uses, nil, nil)
	clock := now
	tokens.SetClock(func() time.Time { return clock })
	at := Attempt{Credentials: Credentials{Scheme: SchemeBasic, Username: "alice", Secret: secret}, Addr: netip.MustParseAddr("198.51.100.1")}
	p, err := tokens.ResolveToken(ctx, secret, token.Personal, at)
	if err != nil {
		t.Fatal(err)
	}
	if p.User.ID != u.ID || p.Limits.Repo != latch.LevelWrite || p.Limits.Project != latch.LevelRead {
		t.Errorf("principal %+v limits %+v", p, p.Limits)
	}
	clock = time.UnixMilli(exp - 1)
	if _, err := tokens.ResolveToken(ctx, secret, token.Personal, at); err != nil {
		t.Errorf("1 ms before expiry: %v", err)
	}
	clock = time.UnixMilli(exp)
	if _, err := tokens.ResolveToken(ctx, secret, token.Personal, at); !refusedFor(err, ErrTokenExpired) {
		t.Errorf("at expiry: %v", err)
	}
	if err := uses.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := st.TokenByID(ctx, "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	if got.LastAuthenticated != exp-1 || got.LastAddress != "198.51.100.1" {
		t.Errorf("stored last use %d from %q, want %d from 198.51.100.1", got.LastAuthenticated, got.LastAddress, exp-1)
	}
	// An older batch never moves it back.
	if err := st.RecordTokenUse(ctx, []store.TokenUse{{ID: "123456789012", At: 5}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.TokenByID(ctx, "123456789012"); got.LastAuthenticated != exp-1 {
		t.Errorf("last use moved back to %d", got.LastAuthenticated)
	}
	// A token whose digest is unknown: refused, not an error.
	other, _ := token.Generate(token.Personal)
	if _, err := tokens.ResolveToken(ctx, other, token.Personal, at); !refusedFor(err, ErrTokenRevoked) {
		t.Errorf("unknown token: %v", err)
	}
}

// TestRefusedByNetworkNotRecorded: a token presented from outside its
// allowed ranges is refused, and that refusal is no use: nothing pending
// for lastAuthenticated.
func TestRefusedByNetworkNotRecorded(t *testing.T) {
	f := newFixture(t)
	secret := f.plant(t, "000000000001", latch.CredPersonalToken, 1, 0, latch.RepoRead)
	dg := f.hasher.Digest(secret)
	f.st.tokens[string(dg[:])].AllowedCIDRs = []string{"203.0.113.0/24"}
	a := NewAuthenticator(f.st, nil, nil, nil)
	a.SetTokenResolver(f.tokens)
	_, err := a.Authenticate(context.Background(), Attempt{Credentials: Credentials{Scheme: SchemeBearer, Secret: secret}, Via: ViaREST, Addr: netip.MustParseAddr("192.0.2.7")})
	if !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("outside the allowed ranges: %v", err)
	}
	if u, ok := f.tokens.Pending("000000000001"); ok {
		t.Errorf("a use refused for its address is recorded as a use: %+v", u)
	}
	// From inside: accepted and recorded.
	f.now = f.now.Add(time.Millisecond)
	if _, err := a.Authenticate(context.Background(), Attempt{Credentials: Credentials{Scheme: SchemeBearer, Secret: secret}, Via: ViaREST, Addr: netip.MustParseAddr("203.0.113.9")}); err != nil {
		t.Fatal(err)
	}
	if u, ok := f.tokens.Pending("000000000001"); !ok || u.Address != "203.0.113.9" {
		t.Errorf("use from inside: %+v %v", u, ok)
	}
}

func (f *fakeTokenStore) RevokedTokenByDigest(context.Context, []byte) (*store.RevokedToken, error) {
	return nil, latch.Errorf(latch.ErrNotFound, "no such revoked token")
}

func (f *fakeTokenStore) RecordTokenAddress(_ context.Context, id, address string, _ int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addresses == nil {
		f.addresses = map[string]bool{}
	}
	k := id + "\x00" + address
	first := !f.addresses[k]
	f.addresses[k] = true
	return first, nil
}
