package auth

// Benchmarks of the token authentication path on a cache hit, plain and with
// every administrator check on (DESIGN.md budget: under 2 µs on a cache hit).
//
//	go test ./auth -run '^$' -bench 'Policy' -benchmem -cpu 1,2

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// polStore is a TokenStore, UserStore and settings.Store holding one user
// and its tokens. It is read only on cache misses.
type polStore struct {
	mu       sync.Mutex
	tokens   map[string]*store.AccessToken
	user     latch.User
	groups   []latch.Group
	settings map[string]string
	lookups  int
}

func (s *polStore) TokenByDigest(_ context.Context, d []byte) (*store.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	t, ok := s.tokens[string(d)]
	if !ok {
		return nil, latch.Errorf(latch.ErrNotFound, "no such token")
	}
	c := *t
	return &c, nil
}

func (s *polStore) TokenAuthByDigest(ctx context.Context, d []byte) (*store.TokenAuth, error) {
	t, err := s.TokenByDigest(ctx, d)
	if err != nil {
		return nil, err
	}
	a := &store.TokenAuth{Token: *t, Owner: s.user}
	for _, g := range s.groups {
		a.Groups = append(a.Groups, g.Name)
	}
	return a, nil
}

func (s *polStore) RecordTokenUse(context.Context, []store.TokenUse) error { return nil }
func (s *polStore) UserByNameOrEmail(context.Context, string) (*latch.User, error) {
	return nil, latch.Errorf(latch.ErrNotFound, "no such user")
}
func (s *polStore) PasswordHash(context.Context, int64) (string, error) {
	return "", latch.Errorf(latch.ErrNotFound, "no password")
}
func (s *polStore) Access(context.Context, int64, latch.Resource) (latch.Access, error) {
	return latch.Access{}, nil
}
func (s *polStore) Setting(_ context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.settings[key]
	return v, ok, nil
}
func (s *polStore) PutSetting(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settings[key] = value
	return nil
}

// polPath is one configuration of the authentication path.
type polPath struct {
	st     *polStore
	authn  *Authenticator
	policy *settings.Service // nil on the plain path
	secret string
	peer   netip.Addr
	header http.Header
}

func newPolStore() *polStore {
	return &polStore{
		tokens:   map[string]*store.AccessToken{},
		user:     latch.User{ID: 1, Name: "alice", Slug: "alice", Email: "alice@example.com", Active: true, Type: latch.UserNormal},
		groups:   []latch.Group{{ID: 1, Name: "staff"}, {ID: 2, Name: "devs"}, {ID: 3, Name: "oncall"}},
		settings: map[string]string{},
	}
}

func (p *polPath) plant(b testing.TB, hasher *token.Hasher, cidrs []string) {
	secret, err := token.Generate(token.Personal)
	if err != nil {
		b.Fatal(err)
	}
	d := hasher.Digest(secret)
	p.st.tokens[string(d[:])] = &store.AccessToken{
		ID: "000000000001", Kind: latch.CredPersonalToken, Name: "ci", UserID: 1,
		Permissions: []latch.Permission{latch.RepoWrite}, AllowedCIDRs: cidrs, Digest: d[:],
		CreatedAt: time.Now().UnixMilli(), ExpiresAt: time.Now().Add(24 * time.Hour).UnixMilli(),
	}
	p.secret = secret
}

// polPlainPath: no settings, no limiter, no audit, no use tracking.
func polPlainPath(b testing.TB) *polPath {
	p := &polPath{st: newPolStore(), peer: netip.MustParseAddr("127.0.0.1"), header: http.Header{}}
	hasher := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	p.plant(b, hasher, nil)
	p.authn = NewAuthenticator(p.st, nil, nil, nil)
	p.authn.SetTokenResolver(NewTokens(p.st, hasher, nil, nil, nil))
	return p
}

// polFullPath: instance ranges, per-token ranges, useGroups, a chain of
// trusted proxies, the limiter, an audit recorder and use tracking.
func polFullPath(b testing.TB) *polPath {
	p := &polPath{st: newPolStore(), peer: netip.MustParseAddr("127.0.0.1"),
		header: http.Header{"X-Forwarded-For": {"192.0.2.55, 203.0.113.7, 10.1.2.3"}}}
	hasher := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	p.plant(b, hasher, []string{"198.51.100.0/24", "203.0.113.0/24"})
	p.policy = settings.NewService(p.st, func(context.Context, string) (bool, error) { return true, nil })
	if err := p.policy.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	if _, _, err := p.policy.Update(context.Background(), []byte(`{
		"tokens": {"useGroups": ["admins", "devs"], "createGroups": ["devs"]},
		"network": {"allowedCidrs": ["192.168.0.0/16", "172.16.0.0/12", "2001:db8::/32", "203.0.113.0/24"],
		            "trustedProxies": ["127.0.0.1/32", "10.0.0.0/8"]}}`)); err != nil {
		b.Fatal(err)
	}
	uses := NewUseTracker(p.st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { _ = uses.Close(context.Background()) })
	tokens := NewTokens(p.st, hasher, uses, p.policy, audit.Nop{})
	p.authn = NewAuthenticator(p.st, p.policy, NewLimiter(), audit.Nop{})
	p.authn.SetTokenResolver(tokens)
	p.policy.OnChange(tokens.Invalidate)
	return p
}

// attempt builds the attempt a request makes: the client address as the
// server's origin middleware finds it, then the credentials.
func (p *polPath) attempt(c Credentials) Attempt {
	addr := p.peer
	if p.policy != nil {
		addr = p.policy.Current().Network.ClientAddr(p.peer, p.header.Values)
	}
	return Attempt{Credentials: c, Via: ViaREST, Addr: addr}
}

func (p *polPath) authenticate(c Credentials) (*latch.Principal, error) {
	return p.authn.Authenticate(context.Background(), p.attempt(c))
}

// polCheckFullPath proves that the full path really applies its checks, so
// that the benchmark measures them rather than a shortcut.
func polCheckFullPath(b *testing.B, p *polPath) {
	b.Helper()
	bearer := Credentials{Scheme: SchemeBearer, Secret: p.secret}
	pr, err := p.authenticate(bearer)
	if err != nil || pr.UserID() != 1 {
		b.Fatalf("full path refuses a good request: %v", err)
	}
	if got := p.attempt(bearer).Addr; got != netip.MustParseAddr("203.0.113.7") {
		b.Fatalf("client address through the proxies = %v, want 203.0.113.7", got)
	}
	saved := p.header
	defer func() { p.header = saved }()
	for _, xff := range []string{"198.51.100.9", "192.168.1.1", ""} {
		// 198.51.100.9: token allows, instance does not; 192.168.1.1:
		// instance allows, token does not; "": the proxy's own address.
		p.header = http.Header{"X-Forwarded-For": {xff}}
		if _, err := p.authenticate(bearer); !errors.Is(err, ErrOutOfRange) {
			b.Fatalf("X-Forwarded-For %q: %v, want ErrOutOfRange", xff, err)
		}
	}
	p.header = saved
	if _, _, err := p.policy.Update(context.Background(), []byte(`{"tokens":{"useGroups":["admins"]}}`)); err != nil {
		b.Fatal(err)
	}
	if _, err := p.authenticate(bearer); !errors.Is(err, ErrNotInUseGroups) {
		b.Fatalf("owner outside useGroups: %v, want ErrNotInUseGroups", err)
	}
	if _, _, err := p.policy.Update(context.Background(), []byte(`{"tokens":{"useGroups":["admins","devs"]}}`)); err != nil {
		b.Fatal(err)
	}
	if _, err := p.authenticate(bearer); err != nil {
		b.Fatalf("after restoring useGroups: %v", err)
	}
}

func polRunAuth(b *testing.B, p *polPath, c Credentials, parallel bool) {
	if _, err := p.authenticate(c); err != nil { // warm the cache
		b.Fatal(err)
	}
	p.st.mu.Lock()
	before := p.st.lookups
	p.st.mu.Unlock()
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.authenticate(c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if _, err := p.authenticate(c); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	if p.st.lookups != before {
		b.Fatalf("%d store lookups during the benchmark: not a cache hit", p.st.lookups-before)
	}
}

func BenchmarkPolicyAuthenticateToken(b *testing.B) {
	b.Run("plain/bearer", func(b *testing.B) {
		p := polPlainPath(b)
		polRunAuth(b, p, Credentials{Scheme: SchemeBearer, Secret: p.secret}, false)
	})
	b.Run("all-checks/bearer", func(b *testing.B) {
		p := polFullPath(b)
		polCheckFullPath(b, p)
		polRunAuth(b, p, Credentials{Scheme: SchemeBearer, Secret: p.secret}, false)
	})
	b.Run("plain/basic", func(b *testing.B) {
		p := polPlainPath(b)
		polRunAuth(b, p, Credentials{Scheme: SchemeBasic, Username: "alice", Secret: p.secret}, false)
	})
	b.Run("all-checks/basic", func(b *testing.B) {
		p := polFullPath(b)
		polRunAuth(b, p, Credentials{Scheme: SchemeBasic, Username: "alice", Secret: p.secret}, false)
	})
	b.Run("plain/bearer/parallel", func(b *testing.B) {
		p := polPlainPath(b)
		polRunAuth(b, p, Credentials{Scheme: SchemeBearer, Secret: p.secret}, true)
	})
	b.Run("all-checks/bearer/parallel", func(b *testing.B) {
		p := polFullPath(b)
		polRunAuth(b, p, Credentials{Scheme: SchemeBearer, Secret: p.secret}, true)
	})
	b.Run("all-checks/basic/parallel", func(b *testing.B) {
		p := polFullPath(b)
		polRunAuth(b, p, Credentials{Scheme: SchemeBasic, Username: "alice", Secret: p.secret}, true)
	})
}

// BenchmarkPolicyClientAddr is the per-request cost of finding the client address
// through a chain of trusted proxies.
func BenchmarkPolicyClientAddr(b *testing.B) {
	p := polFullPath(b)
	n := &p.policy.Current().Network
	b.ReportAllocs()
	for b.Loop() {
		_ = n.ClientAddr(p.peer, p.header.Values)
	}
}

func (s *polStore) RevokedTokenByDigest(context.Context, []byte) (*store.RevokedToken, error) {
	return nil, latch.Errorf(latch.ErrNotFound, "no such revoked token")
}

func (s *polStore) RecordTokenAddress(context.Context, string, string, int64) (bool, error) {
	return false, nil
}
