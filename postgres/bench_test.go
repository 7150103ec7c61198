package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/latchhq/latch/internal/pgtest"
	"github.com/latchhq/latch/internal/tokenbench"
	"github.com/latchhq/latch/postgres"
	"github.com/latchhq/latch/sqlstore"
)

// benchEnvs outlives single benchmarks: its databases stay until the shared
// cluster stops (pgtest.Main).
var benchEnvs tokenbench.Cache

// BenchmarkTokenAuthMiss authenticates tokens on a cache miss with 1,000
// and (LATCH_BENCH_LARGE=1) 1,000,000 tokens in the table; see tokenbench.
func BenchmarkTokenAuthMiss(b *testing.B) {
	tokenbench.Run(b, &benchEnvs, openBench, fillPostgres)
}

// BenchmarkTokenAuthMissInterleaved compares the two table sizes in
// alternating rounds (LATCH_BENCH_LARGE=1, -benchtime 1x); see tokenbench.
func BenchmarkTokenAuthMissInterleaved(b *testing.B) {
	tokenbench.Interleave(b, &benchEnvs, openBench, fillPostgres)
}

func openBench(b *testing.B, _ int) *sqlstore.Store {
	b.Helper()
	ctx := context.Background()
	_, url, err := pgtest.SharedCluster(b).CreateDatabase(ctx)
	if err != nil {
		b.Fatal(err)
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// fillPostgres inserts count tokens with random digests in one statement.
func fillPostgres(ctx context.Context, db *sql.DB, userID int64, count int) error {
	_, err := db.ExecContext(ctx, `INSERT INTO access_tokens (id, kind, name, user_id, permissions, digest, created_at)
		SELECT 'f' || lpad(i::text, 11, '0'), 'personal-token', 'filler', $1, 'PROJECT_READ',
			sha256(convert_to(random()::text || i::text, 'UTF8')), 1
		FROM generate_series(1, $2::int) AS i`, userID, count)
	return err
}
