package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/latchhq/latch/internal/tokenbench"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/sqlstore"
)

var (
	benchEnvs tokenbench.Cache
	benchDir  string // databases of the cached environments
)

func TestMain(m *testing.M) {
	code := m.Run()
	benchEnvs.Close()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// BenchmarkTokenAuthMiss authenticates tokens on a cache miss with 1,000
// and (LATCH_BENCH_LARGE=1) 1,000,000 tokens in the table; see tokenbench.
func BenchmarkTokenAuthMiss(b *testing.B) {
	tokenbench.Run(b, &benchEnvs, openBench, fillSQLite)
}

// BenchmarkTokenAuthMissInterleaved compares the two table sizes in
// alternating rounds (LATCH_BENCH_LARGE=1, -benchtime 1x); see tokenbench.
func BenchmarkTokenAuthMissInterleaved(b *testing.B) {
	tokenbench.Interleave(b, &benchEnvs, openBench, fillSQLite)
}

func openBench(b *testing.B, _ int) *sqlstore.Store {
	b.Helper()
	if benchDir == "" {
		d, err := os.MkdirTemp("", "latch-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	d, err := os.MkdirTemp(benchDir, "db-")
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(d, "latch.db"))
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// fillSQLite inserts count tokens with random digests in one statement: a
// recursive CTE counts the rows.
func fillSQLite(ctx context.Context, db *sql.DB, userID int64, count int) error {
	_, err := db.ExecContext(ctx, `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $2)
		INSERT INTO access_tokens (id, kind, name, user_id, permissions, digest, created_at)
		SELECT printf('f%011d', i), 'personal-token', 'filler', $1, 'PROJECT_READ', randomblob(32), 1 FROM seq`,
		userID, count)
	return err
}
