package e2e

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIdleMemory measures the resident memory of an idle latch holding
// 10,000 repositories and 1,000,000 tokens (DESIGN.md: under 150 MB; caches
// are bounded). The tokens and repository rows are written straight into
// the SQLite database of a stopped server; the repositories on disk are
// hard-linked copies of one bare repository. It needs LATCH_BENCH_LARGE=1.
//
//	LATCH_BENCH_LARGE=1 go test ./e2e -run '^$' -bench IdleMemory -benchtime 1x
func BenchmarkIdleMemory(b *testing.B) {
	if os.Getenv("LATCH_BENCH_LARGE") != "1" {
		b.Skip("set LATCH_BENCH_LARGE=1 to fill a database with 1,000,000 tokens")
	}
	const repos, tokens = 10_000, 1_000_000
	s := startServer(b, WithoutSSH(), WithSQLite())
	s.createProject(b, "IDLE", "Idle")
	r := s.createRepo(b, "IDLE", "template")
	s.stop(b)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "latch.db"))
	if err != nil {
		b.Fatal(err)
	}
	stmts := []string{
		fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)
			INSERT INTO access_tokens (id, kind, name, user_id, permissions, digest, created_at)
			SELECT printf('%%012d', x), 'personal-token', 'bench-' || x, 1, 'PROJECT_READ,REPO_READ', randomblob(32), 0 FROM c`, tokens),
		fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)
			INSERT INTO repos (project_id, slug, name, name_lower, default_branch)
			SELECT (SELECT id FROM projects WHERE key = 'IDLE'), 'r' || x, 'r' || x, 'r' || x, 'main' FROM c`, repos-1),
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	rows, err := db.Query("SELECT id FROM repos WHERE id <> ?", r.ID)
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	db.Close()
	template := s.repoDir(r.ID)
	for _, id := range ids {
		if out, err := exec.Command("cp", "-al", template, s.repoDir(id)).CombinedOutput(); err != nil {
			b.Fatalf("copy repository: %v: %s", err, out)
		}
	}

	s = s.restart(b)
	st, body, _ := s.do(b, "GET", "/rest/api/1.0/repos?limit=1000", "admin", s.AdminPassword, nil)
	mustStatus(b, "list repositories", st, body, 200)
	time.Sleep(5 * time.Second)
	rss := procStatus(b, s.cmd.Process.Pid, "VmRSS")
	b.ReportMetric(float64(rss)/(1<<20), "MB-resident")
	b.Logf("idle with %d repositories and %d tokens: %d MB resident", repos, tokens, rss>>20)
	if rss > 150<<20 {
		b.Errorf("idle resident memory %d MB is over the 150 MB budget", rss>>20)
	}
}
