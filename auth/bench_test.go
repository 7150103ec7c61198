package auth

// Token authentication benchmarks (issue 3, DESIGN.md performance budgets):
// a cache hit and a cache miss against SQLite, beside the PBKDF2-SHA256
// check (10,000 iterations, 50-byte key) that Gitea pays for every token,
// and the Authorization header parser. Run them together:
//
//	go test ./auth -run '^$' -bench 'AuthenticateToken|PBKDF2Gitea|ParseAuthorization|TokenDigest' -benchtime 2000x

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/sqlstore"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// benchTokens is how many tokens the SQLite store holds for the miss
// benchmark, so that the lookup goes through a real index.
const benchTokens = 10_000

// benchStore opens a SQLite database in a temporary directory holding one
// user and n personal tokens, and returns it with the tokens' secrets.
func benchStore(b *testing.B, hasher *token.Hasher, n int) (*sqlstore.Store, []string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "latch.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	u := &latch.User{Name: "bench", Slug: "bench", Email: "bench@example.com", Active: true, Type: latch.UserNormal, CreatedAt: 1}
	if err := st.CreateUser(ctx, u, ""); err != nil {
		b.Fatal(err)
	}
	secrets := make([]string, n)
	err = st.WithTx(ctx, func(tx store.Store) error {
		for i := range n {
			s, err := token.Generate(token.Personal)
			if err != nil {
				return err
			}
			d := hasher.Digest(s)
			secrets[i] = s
			if err := tx.CreateToken(ctx, &store.AccessToken{
				ID: fmt.Sprintf("%012d", i+1), Kind: latch.CredPersonalToken, Name: "t", UserID: u.ID,
				Permissions: []latch.Permission{latch.ProjectRead, latch.RepoWrite}, Digest: d[:], CreatedAt: 1,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return st, secrets
}

// fixedPolicy serves one settings document, as settings.Service.Current
// does (an atomic pointer load) in latch serve.
type fixedPolicy struct{ s *settings.Settings }

func (p fixedPolicy) Current() *settings.Settings { return p.s }

// benchAuthenticator wires token authentication as latch serve does: the
// Authenticator with the settings policy and the brute-force limiter in
// front of Tokens with a batching UseTracker.
func benchAuthenticator(b *testing.B, st *sqlstore.Store, hasher *token.Hasher) (*Authenticator, *Tokens) {
	b.Helper()
	uses := NewUseTracker(st, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { _ = uses.Close(context.Background()) })
	policy := fixedPolicy{settings.Default()}
	tokens := NewTokens(st, hasher, uses, policy, nil)
	a := NewAuthenticator(st, policy, NewLimiter(), nil)
	a.SetTokenResolver(tokens)
	return a, tokens
}

var benchAddr = netip.MustParseAddr("192.0.2.10")

// BenchmarkAuthenticateTokenCacheHit: a Bearer token already in the cache:
// checksum, one HMAC-SHA256, one cache lookup, a pending-use update.
func BenchmarkAuthenticateTokenCacheHit(b *testing.B) {
	hasher := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	st, secrets := benchStore(b, hasher, 1)
	a, _ := benchAuthenticator(b, st, hasher)
	ctx := context.Background()
	at := Attempt{Credentials: Credentials{Scheme: SchemeBearer, Secret: secrets[0]}, Via: ViaREST, Addr: benchAddr}
	if _, err := a.Authenticate(ctx, at); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateTokenCacheMissSQLite: the cache is emptied before
// every authentication, so each one reads the token by digest (one indexed
// equality query among 10,000 tokens, joined with its owner and the owner's
// groups) from SQLite. Every token is used once before timing, so that the
// one-time write recording its first use from the address is not measured.
func BenchmarkAuthenticateTokenCacheMissSQLite(b *testing.B) {
	hasher := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	st, secrets := benchStore(b, hasher, benchTokens)
	a, tokens := benchAuthenticator(b, st, hasher)
	ctx := context.Background()
	for _, s := range secrets {
		at := Attempt{Credentials: Credentials{Scheme: SchemeBearer, Secret: s}, Via: ViaREST, Addr: benchAddr}
		if _, err := a.Authenticate(ctx, at); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tokens.Invalidate()
		at := Attempt{Credentials: Credentials{Scheme: SchemeBearer, Secret: secrets[i%len(secrets)]}, Via: ViaREST, Addr: benchAddr}
		if _, err := a.Authenticate(ctx, at); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPBKDF2Gitea is what Gitea pays to check one access token:
// PBKDF2-HMAC-SHA256, 10,000 iterations, 50-byte output, over the token
// with its per-token salt (modules/auth/password/hash... HashToken).
func BenchmarkPBKDF2Gitea(b *testing.B) {
	tok := "0123456789abcdef0123456789abcdef01234567" // a 40-hex Gitea token
	salt := []byte("QZ5Yqv2mGi")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pbkdf2.Key(sha256.New, tok, salt, 10_000, 50); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenDigest is the HMAC-SHA256 every token authentication does.
func BenchmarkTokenDigest(b *testing.B) {
	hasher := token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	s, _ := token.Generate(token.Personal)
	b.ReportAllocs()
	for b.Loop() {
		_ = hasher.Digest(s)
	}
}

func BenchmarkParseAuthorization(b *testing.B) {
	s, _ := token.Generate(token.Personal)
	for _, c := range []struct{ name, h string }{
		{"Bearer", "Bearer " + s},
		{"Basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+s))},
		{"Malformed", "Bearer a b"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ParseAuthorization(c.h)
			}
		})
	}
}
