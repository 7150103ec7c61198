package e2e

// Several latch nodes on one PostgreSQL database and one shared data
// directory (issue 5): any node serves any request, changes made on one node
// reach the others' caches within a second, and a node killed in the middle
// of a push leaves the repository and the database consistent.

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchhq/latch/internal/pgtest"
)

// propagation is how soon a change on one node must be honoured by another.
const propagation = time.Second

// startNodes starts n latch nodes at once on database dbURL and one shared
// data directory, as a cluster's nodes start after an upgrade: migrations,
// the first administrator, the server secret and the hook scripts must all
// survive the race.
func startNodes(t *testing.T, n int, dbURL string) []*Server {
	t.Helper()
	data := filepath.Join(t.TempDir(), "shared")
	pw := "adm-" + randomHex(16)
	nodes := make([]*Server, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done() // startServer may end this goroutine with t.Fatal
			nodes[i] = startServer(t, WithDataDir(data), WithAdminPassword(pw), WithArgs("--db", dbURL))
		}()
	}
	wg.Wait()
	for _, s := range nodes {
		if s == nil {
			t.FailNow()
		}
	}
	return nodes
}

// killNode ends s with SIGKILL, as a crash or the OOM killer would; the
// harness's cleanup then leaves it alone.
func killNode(t testing.TB, s *Server) {
	t.Helper()
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-s.done
}

// hostKeyOf returns the SSH host key fingerprint s logged at start.
func hostKeyOf(t testing.TB, s *Server) string {
	t.Helper()
	for _, line := range strings.Split(s.Log(t), "\n") {
		var e struct {
			Msg     string `json:"msg"`
			HostKey string `json:"host_key"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.HostKey != "" {
			return e.HostKey
		}
	}
	return ""
}

// within polls ok every 10 ms until it holds or d has passed, and returns
// how long it took, or a negative duration when it never held.
func within(d time.Duration, ok func() bool) time.Duration {
	start := time.Now()
	for {
		if ok() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			return -1
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMultiNode(t *testing.T) {
	dbURL := pgtest.Start(t) // skips without PostgreSQL, unless LATCH_REQUIRE_POSTGRES=1
	nodes := startNodes(t, 2, dbURL)
	a, b := nodes[0], nodes[1]
	g := newGit(t)

	a.createProject(t, "MN", "Multi node")
	repo := a.createRepo(t, "MN", "shared")
	admin := func(s *Server) string { return s.gitURLAs("MN", repo.Slug, adminName, s.AdminPassword) }

	t.Run("one SSH host key", func(t *testing.T) {
		// Nodes started at once agree on one host key, so SSH clients behind
		// the load balancer never see it change.
		ka, kb := hostKeyOf(t, a), hostKeyOf(t, b)
		if ka == "" || ka != kb {
			t.Errorf("node A presents host key %q, node B %q", ka, kb)
		}
	})

	t.Run("push on A, clone on B", func(t *testing.T) {
		work := g.initRepo(t)
		c1 := g.commitFile(t, work, "README.md", "hello from node A\n", "first")
		g.must(t, work, "push", "-q", admin(a), "main")
		clone := filepath.Join(t.TempDir(), "clone")
		g.must(t, "", "clone", "-q", admin(b), clone)
		if got := g.must(t, clone, "rev-parse", "HEAD"); got != c1 {
			t.Fatalf("node B serves %s, pushed %s", got, c1)
		}
		// And back: push on B, fetch on A.
		c2 := g.commitFile(t, clone, "b.txt", "from B\n", "second")
		g.must(t, clone, "push", "-q", admin(b), "main")
		if got := g.lsRemote(t, admin(a))["refs/heads/main"]; got != c2 {
			t.Fatalf("node A serves main=%s, pushed %s through B", got, c2)
		}
	})

	alice := a.createUser(t, "alice")
	b.addSecret(alice.Password)
	a.grant(t, "MN", "alice", "PROJECT_READ")
	repoPath := "/rest/api/1.0/projects/MN/repos/" + repo.Slug

	t.Run("token revoked on A is refused by B", func(t *testing.T) {
		st, body, _ := a.do(t, http.MethodPut, "/rest/access-tokens/1.0/users/alice", alice.Name, alice.Password,
			map[string]any{"name": "ci", "permissions": []string{"REPO_READ"}})
		mustStatus(t, "create token on A", st, body, http.StatusOK)
		tok := decodeJSON[struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}](t, body)
		a.addSecret(tok.Token)
		b.addSecret(tok.Token)
		// Used on B, twice: the second answer comes from B's token cache.
		for range 2 {
			st, body, _ = b.doBearer(t, http.MethodGet, repoPath, tok.Token, nil)
			mustStatus(t, "token on B", st, body, http.StatusOK)
		}
		st, body, _ = a.do(t, http.MethodDelete, "/rest/access-tokens/1.0/users/alice/"+tok.ID, alice.Name, alice.Password, nil)
		mustStatus(t, "revoke on A", st, body, http.StatusNoContent)
		took := within(propagation, func() bool {
			st, _, _ := b.doBearer(t, http.MethodGet, repoPath, tok.Token, nil)
			return st == http.StatusUnauthorized
		})
		if took < 0 {
			t.Fatalf("node B still accepts the token %v after it was revoked on node A", propagation)
		}
		t.Logf("node B refused the revoked token after %v", took)
	})

	t.Run("permission removed on A is enforced by B", func(t *testing.T) {
		for range 2 { // the second answer comes from B's access cache
			st, body, _ := b.do(t, http.MethodGet, repoPath, alice.Name, alice.Password, nil)
			mustStatus(t, "alice reads on B", st, body, http.StatusOK)
		}
		a.revoke(t, "MN", "alice")
		took := within(propagation, func() bool {
			st, _, _ := b.do(t, http.MethodGet, repoPath, alice.Name, alice.Password, nil)
			return st != http.StatusOK
		})
		if took < 0 {
			t.Fatalf("node B still lets alice read %v after her permission was removed on node A", propagation)
		}
		t.Logf("node B enforced the removed permission after %v", took)
		a.grant(t, "MN", "alice", "PROJECT_READ")
	})

	t.Run("setting changed on A is honoured by B", func(t *testing.T) {
		if took := within(propagation, func() bool {
			st, _, _ := b.do(t, http.MethodGet, repoPath, alice.Name, alice.Password, nil)
			return st == http.StatusOK
		}); took < 0 {
			t.Fatal("alice cannot read on B after her permission was given back")
		}
		set := func(rest bool) {
			st, body := a.asAdmin(t, http.MethodPut, "/rest/latch/1.0/admin/settings",
				map[string]any{"auth": map[string]any{"passwordForGit": true, "passwordForRest": rest}})
			mustStatus(t, "PUT settings on A", st, body, http.StatusOK)
		}
		set(false)
		took := within(propagation, func() bool {
			st, _, _ := b.do(t, http.MethodGet, repoPath, alice.Name, alice.Password, nil)
			return st == http.StatusForbidden || st == http.StatusUnauthorized
		})
		if took < 0 {
			t.Fatalf("node B still accepts passwords on REST %v after node A turned them off", propagation)
		}
		t.Logf("node B honoured the new setting after %v", took)
		set(true)
		if within(propagation, func() bool {
			st, _, _ := b.do(t, http.MethodGet, repoPath, alice.Name, alice.Password, nil)
			return st == http.StatusOK
		}) < 0 {
			t.Fatal("node B does not accept passwords again after node A turned them back on")
		}
	})

	t.Run("SIGKILL during a push", func(t *testing.T) {
		work := filepath.Join(t.TempDir(), "work")
		g.must(t, "", "clone", "-q", admin(a), work)
		// An acknowledged push through B...
		acked := g.commitFile(t, work, "acked.txt", "acknowledged\n", "acknowledged")
		g.must(t, work, "push", "-q", admin(b), "main")
		// ...then a 30 MB push through B, which dies while receiving it.
		big := make([]byte, 30<<20)
		rand.Read(big)
		if err := os.WriteFile(filepath.Join(work, "big.bin"), big, 0o644); err != nil {
			t.Fatal(err)
		}
		g.must(t, work, "add", "big.bin")
		g.must(t, work, "commit", "-q", "-m", "big")
		bigCommit := g.must(t, work, "rev-parse", "HEAD")

		push := exec.Command("git", "push", "-q", admin(b), "main")
		push.Dir, push.Env = work, g.env
		var out strings.Builder
		push.Stdout, push.Stderr = &out, &out
		if err := push.Start(); err != nil {
			t.Fatal(err)
		}
		dir := b.repoDir(repo.ID)
		// Kill B as soon as it is receiving: git's quarantine directory
		// appears when receive-pack starts writing the pack.
		receiving := within(30*time.Second, func() bool {
			m, _ := filepath.Glob(filepath.Join(dir, "objects", "tmp_objdir-incoming-*"))
			return len(m) > 0
		}) >= 0
		killNode(t, b)
		pushErr := push.Wait()
		t.Logf("killed node B (receiving=%v); the push %s", receiving, map[bool]string{true: "failed", false: "succeeded"}[pushErr != nil])

		// The repository is sound, main is the acknowledged commit or the
		// big one (if the push completed before the kill), never lost.
		fsck := exec.Command("git", "--git-dir", dir, "fsck", "--full", "--strict", "--no-dangling")
		fsck.Env = g.env
		if fout, err := fsck.CombinedOutput(); err != nil {
			t.Errorf("git fsck after the kill: %v\n%s", err, fout)
		}
		main := g.lsRemote(t, admin(a))["refs/heads/main"]
		switch {
		case main == acked && pushErr != nil:
		case main == bigCommit:
		default:
			t.Errorf("main = %s after the kill; want the acknowledged %s (or %s, if the push was acknowledged: err=%v)\n%s",
				main, acked, bigCommit, pushErr, out.String())
		}
		// The database agrees with the disk, and serves the repository.
		a.checkReposMatchDisk(t)
		st, body, _ := a.do(t, http.MethodGet, repoPath, adminName, a.AdminPassword, nil)
		mustStatus(t, "repository after the kill", st, body, http.StatusOK)

		// Node B comes back on the same directory and takes the push again.
		b2 := startServer(t, WithDataDir(b.DataDir), WithAdminPassword(b.AdminPassword), WithArgs("--db", dbURL))
		g.must(t, work, "push", "-q", b2.gitURLAs("MN", repo.Slug, adminName, b2.AdminPassword), "main")
		clone := filepath.Join(t.TempDir(), "after")
		g.must(t, "", "clone", "-q", admin(a), clone)
		if got := g.must(t, clone, "rev-parse", "HEAD"); got != bigCommit {
			t.Fatalf("after pushing again main = %s, want %s", got, bigCommit)
		}
		if fout, err := exec.Command("git", "--git-dir", dir, "fsck", "--full", "--strict").CombinedOutput(); err != nil {
			t.Errorf("git fsck after pushing again: %v\n%s", err, fout)
		}
	})
}
