// Package tokenbench holds the token-authentication benchmark that the
// sqlite and postgres packages run against their databases: a cache miss
// (one keyed digest, then one query for the token by digest joined with its
// owner and the owner's groups)
// with 1,000 and 1,000,000 tokens in the table, to show that the cost does
// not grow with the number of tokens.
//
// The 1,000,000-token case needs a minute or so of setup and is skipped
// unless LATCH_BENCH_LARGE=1:
//
//	LATCH_BENCH_LARGE=1 go test ./sqlite ./postgres -run '^$' -bench TokenAuthMiss -benchtime 20000x
//
// On a busy machine, the Interleaved benchmark compares the sizes more
// fairly: it alternates between them in rounds and logs the minimum and
// median per size.
package tokenbench

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/sqlstore"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// LargeEnv names the environment variable that enables the 1,000,000-token
// case.
const LargeEnv = "LATCH_BENCH_LARGE"

// Sizes are the table sizes benchmarked.
var Sizes = []int{1_000, 1_000_000}

// known is how many tokens have secrets the benchmark knows (and looks up);
// the rest of the table is filler with random digests.
const known = 1_000

// Fill inserts count filler tokens of user userID with random digests and
// ids "f" + 11 digits, in as few statements as the database allows.
type Fill func(ctx context.Context, db *sql.DB, userID int64, count int) error

// Open returns a new, empty, migrated store for one table size.
type Open func(b *testing.B, size int) *sqlstore.Store

// Env is a store holding a number of tokens, some with known secrets.
type Env struct {
	Store   *sqlstore.Store
	Hasher  *token.Hasher
	Secrets []string // known secrets, in random order
	Digests [][]byte // their digests
	Setup   time.Duration
	Plan    string // the database's plan of the lookup by digest
}

// Cache keeps one Env per size for the life of the test binary, so that
// benchmarks run with -count or several -bench patterns set up once.
type Cache struct {
	mu   sync.Mutex
	envs map[int]*Env
}

// Get returns the Env of size, setting it up on first use.
func (c *Cache) Get(b *testing.B, size int, open Open, fill Fill) *Env {
	b.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.envs[size]; ok {
		return e
	}
	e := setup(b, size, open, fill)
	if c.envs == nil {
		c.envs = map[int]*Env{}
	}
	c.envs[size] = e
	return e
}

// Close closes every cached store.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.envs {
		e.Store.Close()
	}
	c.envs = nil
}

func setup(b *testing.B, size int, open Open, fill Fill) *Env {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	st := open(b, size)
	u := &latch.User{Name: "bench", Slug: "bench", Email: "bench@example.com", Active: true, Type: latch.UserNormal, CreatedAt: 1}
	if err := st.CreateUser(ctx, u, ""); err != nil {
		b.Fatal(err)
	}
	if size > known {
		if err := fill(ctx, st.DB(), u.ID, size-known); err != nil {
			b.Fatalf("fill %d tokens: %v", size-known, err)
		}
	}
	e := &Env{Store: st, Hasher: token.NewHasher([]byte("0123456789abcdef0123456789abcdef"))}
	n := min(size, known)
	err := st.WithTx(ctx, func(tx store.Store) error {
		for i := range n {
			s, err := token.Generate(token.Personal)
			if err != nil {
				return err
			}
			d := e.Hasher.Digest(s)
			e.Secrets = append(e.Secrets, s)
			e.Digests = append(e.Digests, d[:])
			if err := tx.CreateToken(ctx, &store.AccessToken{
				ID: fmt.Sprintf("k%011d", i), Kind: latch.CredPersonalToken, Name: "t", UserID: u.ID,
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
	analyze := "ANALYZE"
	if st.Dialect() == sqlstore.Postgres {
		analyze = "ANALYZE access_tokens"
	}
	if _, err := st.DB().ExecContext(ctx, analyze); err != nil {
		b.Fatal(err)
	}
	var count int
	if err := st.DB().QueryRowContext(ctx, "SELECT count(*) FROM access_tokens").Scan(&count); err != nil {
		b.Fatal(err)
	}
	if count != size {
		b.Fatalf("the table holds %d tokens, want %d", count, size)
	}
	rand.Shuffle(n, func(i, j int) {
		e.Secrets[i], e.Secrets[j] = e.Secrets[j], e.Secrets[i]
		e.Digests[i], e.Digests[j] = e.Digests[j], e.Digests[i]
	})
	e.Setup = time.Since(start)
	e.Plan = plan(b, st, e.Digests[0])
	return e
}

// plan returns the query plan of TokenByDigest's query, to show that it is
// an index lookup.
func plan(b *testing.B, st *sqlstore.Store, digest []byte) string {
	b.Helper()
	q := "EXPLAIN SELECT id FROM access_tokens WHERE digest = $1 OR prev_digest = $1"
	col := 0
	if st.Dialect() == sqlstore.SQLite {
		q, col = "EXPLAIN QUERY PLAN SELECT id FROM access_tokens WHERE digest = $1 OR prev_digest = $1", 3
	}
	rows, err := st.DB().QueryContext(context.Background(), q, digest)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		out += fmt.Sprintf("\n\t%v", vals[col])
	}
	return out
}

// Run runs the benchmarks for every size as sub-benchmarks of b:
//
//   - tokens=N/ResolveToken: auth.Tokens with its cache emptied before every
//     call: digest, token by digest, owner, owner's groups.
//   - tokens=N/TokenByDigest: the indexed lookup alone.
func Run(b *testing.B, c *Cache, open Open, fill Fill) {
	for _, size := range Sizes {
		b.Run(fmt.Sprintf("tokens=%d", size), func(b *testing.B) {
			if size > 100_000 && os.Getenv(LargeEnv) != "1" {
				b.Skipf("set %s=1 to run the %d-token case (about a minute of setup)", LargeEnv, size)
			}
			e := c.Get(b, size, open, fill)
			b.Logf("setup of %d tokens: %v; lookup plan:%s", size, e.Setup.Round(time.Millisecond), e.Plan)
			b.Run("ResolveToken", func(b *testing.B) { resolve(b, e) })
			b.Run("TokenByDigest", func(b *testing.B) { lookup(b, e) })
		})
	}
}

func resolve(b *testing.B, e *Env) {
	ctx := context.Background()
	tokens := auth.NewTokens(e.Store, e.Hasher, nil, nil, nil)
	at := auth.Attempt{Credentials: auth.Credentials{Scheme: auth.SchemeBearer}, Via: auth.ViaREST}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tokens.Invalidate()
		if _, err := tokens.ResolveToken(ctx, e.Secrets[i%len(e.Secrets)], token.Personal, at); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func lookup(b *testing.B, e *Env) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.Store.TokenByDigest(ctx, e.Digests[i%len(e.Digests)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// Interleave measures both sizes in alternating rounds of 3,000 calls each,
// so that a change of machine load hits both alike, and logs the minimum and
// median time per call of each. It needs LATCH_BENCH_LARGE=1.
func Interleave(b *testing.B, c *Cache, open Open, fill Fill) {
	if os.Getenv(LargeEnv) != "1" {
		b.Skipf("set %s=1 to run the %d-token case (about a minute of setup)", LargeEnv, Sizes[len(Sizes)-1])
	}
	envs := make([]*Env, len(Sizes))
	for i, size := range Sizes {
		envs[i] = c.Get(b, size, open, fill)
	}
	ctx := context.Background()
	at := auth.Attempt{Credentials: auth.Credentials{Scheme: auth.SchemeBearer}, Via: auth.ViaREST}
	const rounds, per = 12, 3000
	type key struct {
		size int
		what string
	}
	res := map[key][]time.Duration{}
	for b.Loop() {
		for r := range rounds {
			for i, e := range envs {
				tokens := auth.NewTokens(e.Store, e.Hasher, nil, nil, nil)
				start := time.Now()
				for j := range per {
					tokens.Invalidate()
					if _, err := tokens.ResolveToken(ctx, e.Secrets[(r*per+j)%len(e.Secrets)], token.Personal, at); err != nil {
						b.Fatal(err)
					}
				}
				k := key{Sizes[i], "ResolveToken"}
				res[k] = append(res[k], time.Since(start)/per)
				start = time.Now()
				for j := range per {
					if _, err := e.Store.TokenByDigest(ctx, e.Digests[(r*per+j)%len(e.Digests)]); err != nil {
						b.Fatal(err)
					}
				}
				k = key{Sizes[i], "TokenByDigest"}
				res[k] = append(res[k], time.Since(start)/per)
			}
		}
	}
	for _, what := range []string{"TokenByDigest", "ResolveToken"} {
		for _, size := range Sizes {
			d := res[key{size, what}]
			slices.Sort(d)
			b.Logf("%-13s tokens=%-7d min %6.1f µs  median %6.1f µs  max %6.1f µs", what, size,
				us(d[0]), us(d[len(d)/2]), us(d[len(d)-1]))
		}
	}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
