package e2e

// Git over HTTP with the real git client: clone, push, fetch, protocol v2,
// shallow and partial clones, credential helpers, and the access rules that
// the one authorization decision enforces for every kind of grant.

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// pkt encodes one pkt-line.
func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

const (
	pktFlush = "0000"
	pktDelim = "0001"
)

// infoRefs GETs /scm/{key}/{slug}.git/info/refs?service=svc with optional
// Basic credentials and extra headers.
func (s *Server) infoRefs(t testing.TB, key, slug, svc, user, pass string, hdr http.Header) (int, []byte, http.Header) {
	t.Helper()
	h := http.Header{}
	for k, v := range hdr {
		h[k] = v
	}
	if user != "" || pass != "" {
		h.Set("Authorization", basicAuth(user, pass))
	}
	h.Set("Accept", "*/*")
	return s.request(t, http.MethodGet, "/scm/"+strings.ToLower(key)+"/"+slug+".git/info/refs?service="+svc, h, nil)
}

func TestGitOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dev := s.createUser(t, "dev")
	s.createProject(t, "GIT", "Git")
	repo := s.createRepo(t, "GIT", "Demo Repo")
	s.grant(t, "GIT/demo-repo", dev.Name, "REPO_WRITE")

	g := newGit(t)
	remote := s.gitURLAs("GIT", "demo-repo", dev.Name, dev.Password)
	root := t.TempDir()
	work := filepath.Join(root, "work")
	var head string

	t.Run("clone empty repository", func(t *testing.T) {
		g.must(t, "", "clone", remote, work)
		if _, err := g.run(work, "rev-parse", "--verify", "-q", "HEAD"); err == nil {
			t.Errorf("a fresh repository has commits")
		}
		if br := g.must(t, work, "symbolic-ref", "--short", "HEAD"); br != "main" {
			t.Errorf("clone of an empty repository is on %q, want main", br)
		}
	})

	t.Run("commit and push", func(t *testing.T) {
		g.commitFile(t, work, "README.md", "# demo\n", "first")
		g.commitFile(t, work, "src/a.txt", "a\n", "second")
		head = g.must(t, work, "rev-parse", "HEAD")
		g.must(t, work, "push", "-u", "origin", "main")
		refs := g.lsRemote(t, remote)
		if refs["refs/heads/main"] != head {
			t.Errorf("ls-remote: main = %q, want %s (refs %v)", refs["refs/heads/main"], head, refs)
		}
		if refs["HEAD"] != head {
			t.Errorf("ls-remote: HEAD = %q, want %s: the repository's HEAD should point at main", refs["HEAD"], head)
		}
		// The push landed in the repository on disk.
		if got := g.must(t, "", "--git-dir", s.repoDir(repo.ID), "rev-parse", "refs/heads/main"); got != head {
			t.Errorf("%s: main = %s, want %s", s.repoDir(repo.ID), got, head)
		}
	})

	work2 := filepath.Join(root, "work2")
	t.Run("clone again", func(t *testing.T) {
		g.must(t, "", "clone", remote, work2)
		if got := g.must(t, work2, "rev-parse", "HEAD"); got != head {
			t.Errorf("second clone HEAD = %s, want %s", got, head)
		}
		if b, err := os.ReadFile(filepath.Join(work2, "src", "a.txt")); err != nil || string(b) != "a\n" {
			t.Errorf("second clone: src/a.txt = %q, %v", b, err)
		}
	})

	t.Run("fetch", func(t *testing.T) {
		next := g.commitFile(t, work, "b.txt", "b\n", "third")
		g.must(t, work, "push", "origin", "main")
		g.must(t, work2, "fetch", "origin")
		if got := g.must(t, work2, "rev-parse", "origin/main"); got != next {
			t.Errorf("after fetch origin/main = %s, want %s", got, next)
		}
		g.must(t, work2, "merge", "--ff-only", "-q", "origin/main")
		head = next
	})

	t.Run("email and password", func(t *testing.T) {
		byEmail := s.gitURLAs("GIT", "demo-repo", dev.Email, dev.Password)
		dir := filepath.Join(t.TempDir(), "by-email")
		g.must(t, "", "clone", byEmail, dir)
		c := g.commitFile(t, dir, "email.txt", "pushed with an email address\n", "by email")
		g.must(t, dir, "push", "origin", "HEAD:refs/heads/by-email")
		if refs := g.lsRemote(t, remote); refs["refs/heads/by-email"] != c {
			t.Errorf("push with email:password: refs/heads/by-email = %q, want %s", refs["refs/heads/by-email"], c)
		}
	})

	t.Run("protocol v2", func(t *testing.T) {
		traced := g.withEnv("GIT_TRACE_PACKET=1")
		out, err := traced.run("", "-c", "protocol.version=2", "ls-remote", remote)
		if err != nil {
			t.Fatalf("ls-remote (v2): %v\n%s", err, out)
		}
		if !strings.Contains(out, "< version 2") {
			t.Errorf("protocol.version=2 ls-remote: the server did not answer \"version 2\":\n%s", truncate([]byte(out), 2000))
		}
		if !strings.Contains(out, head+"\trefs/heads/main") {
			t.Errorf("ls-remote (v2) does not list main at %s:\n%s", head, truncate([]byte(out), 2000))
		}
		out, err = traced.run("", "-c", "protocol.version=0", "ls-remote", remote)
		if err != nil {
			t.Fatalf("ls-remote (v0): %v\n%s", err, out)
		}
		if strings.Contains(out, "< version 2") || !strings.Contains(out, head+"\trefs/heads/main") {
			t.Errorf("protocol.version=0 ls-remote:\n%s", truncate([]byte(out), 2000))
		}
		dir := filepath.Join(t.TempDir(), "v2")
		out, err = traced.run("", "-c", "protocol.version=2", "clone", remote, dir)
		if err != nil {
			t.Fatalf("clone (v2): %v\n%s", err, out)
		}
		if !strings.Contains(out, "> command=fetch") {
			t.Errorf("protocol.version=2 clone did not use the v2 fetch command:\n%s", truncate([]byte(out), 2000))
		}
		if got := g.must(t, dir, "rev-parse", "HEAD"); got != head {
			t.Errorf("v2 clone HEAD = %s, want %s", got, head)
		}

		// On the wire: Git-Protocol selects v2, its absence v0.
		st, b, h := s.infoRefs(t, "GIT", "demo-repo", "git-upload-pack", dev.Name, dev.Password,
			http.Header{"Git-Protocol": {"version=2"}})
		mustStatus(t, "info/refs with Git-Protocol: version=2", st, b, http.StatusOK)
		if ct := h.Get("Content-Type"); ct != "application/x-git-upload-pack-advertisement" {
			t.Errorf("info/refs Content-Type %q", ct)
		}
		if !bytes.Contains(b, []byte(pkt("version 2\n"))) || !bytes.Contains(b, []byte("ls-refs")) {
			t.Errorf("v2 advertisement: %q", truncate(b, 400))
		}
		st, b, _ = s.infoRefs(t, "GIT", "demo-repo", "git-upload-pack", dev.Name, dev.Password, nil)
		mustStatus(t, "info/refs without Git-Protocol", st, b, http.StatusOK)
		if !bytes.HasPrefix(b, []byte(pkt("# service=git-upload-pack\n")+pktFlush)) || bytes.Contains(b, []byte("version 2")) {
			t.Errorf("v0 advertisement: %q", truncate(b, 400))
		}

		// A v2 ls-refs command POSTed by hand, plain and gzip-compressed.
		body := pkt("command=ls-refs\n") + pktDelim + pkt("symrefs\n") + pkt("ref-prefix refs/heads/\n") + pktFlush
		for _, gz := range []bool{false, true} {
			hdr := http.Header{
				"Authorization": {basicAuth(dev.Name, dev.Password)},
				"Content-Type":  {"application/x-git-upload-pack-request"},
				"Accept":        {"application/x-git-upload-pack-result"},
				"Git-Protocol":  {"version=2"},
			}
			payload := []byte(body)
			if gz {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(payload)
				zw.Close()
				payload = buf.Bytes()
				hdr.Set("Content-Encoding", "gzip")
			}
			st, b, h := s.request(t, http.MethodPost, "/scm/git/demo-repo.git/git-upload-pack", hdr, payload)
			what := "POST git-upload-pack ls-refs (gzip " + strconv.FormatBool(gz) + ")"
			mustStatus(t, what, st, b, http.StatusOK)
			if ct := h.Get("Content-Type"); ct != "application/x-git-upload-pack-result" {
				t.Errorf("%s: Content-Type %q", what, ct)
			}
			if !bytes.Contains(b, []byte(head+" refs/heads/main")) {
				t.Errorf("%s: answer does not list main at %s: %q", what, head, truncate(b, 400))
			}
		}
	})

	t.Run("shallow clone", func(t *testing.T) {
		full := g.must(t, work, "rev-list", "--count", "HEAD")
		dir := filepath.Join(t.TempDir(), "shallow")
		g.must(t, "", "clone", "--depth", "1", remote, dir)
		if got := g.must(t, dir, "rev-parse", "--is-shallow-repository"); got != "true" {
			t.Errorf("--depth 1 clone is not shallow")
		}
		if n := g.must(t, dir, "rev-list", "--count", "HEAD"); n != "1" {
			t.Errorf("--depth 1 clone has %s commits, want 1", n)
		}
		g.must(t, dir, "fetch", "--unshallow")
		if n := g.must(t, dir, "rev-list", "--count", "HEAD"); n != full {
			t.Errorf("after --unshallow: %s commits, want %s", n, full)
		}
	})

	t.Run("partial clone", func(t *testing.T) {
		// A blob that only history holds: added, then deleted.
		big := strings.Repeat("partial clone payload "+randomHex(8)+"\n", 4000)
		withBig := g.commitFile(t, work, "big.txt", big, "add big")
		g.must(t, work, "rm", "-q", "big.txt")
		g.must(t, work, "commit", "-q", "-m", "remove big")
		g.must(t, work, "push", "origin", "main")

		dir := filepath.Join(t.TempDir(), "partial")
		out, err := g.run("", "clone", "--filter=blob:none", remote, dir)
		if err != nil {
			t.Fatalf("clone --filter=blob:none: %v\n%s", err, out)
		}
		if strings.Contains(out, "filtering not recognized") {
			t.Errorf("the server ignored the filter (enable uploadpack.allowFilter):\n%s", out)
		}
		if got := g.must(t, dir, "config", "remote.origin.promisor"); got != "true" {
			t.Errorf("partial clone: remote.origin.promisor = %q", got)
		}
		missing := 0
		for _, l := range strings.Split(g.must(t, dir, "rev-list", "--objects", "--all", "--missing=print"), "\n") {
			if strings.HasPrefix(l, "?") {
				missing++
			}
		}
		if missing == 0 {
			t.Errorf("--filter=blob:none clone holds every blob: the filter was not applied")
		}
		// Missing blobs are fetched on demand.
		if got := g.must(t, dir, "show", withBig+":big.txt"); got != strings.TrimSpace(big) {
			t.Errorf("lazy fetch of big.txt returned %d bytes, want %d", len(got), len(strings.TrimSpace(big)))
		}
		head = g.must(t, work, "rev-parse", "HEAD")
	})

	t.Run("credential helper store and set-url", func(t *testing.T) {
		plain := s.gitURL("GIT", "demo-repo")

		// Without credentials, the server's 401 makes git ask for them.
		fresh := newGit(t)
		out, err := fresh.run("", "ls-remote", plain)
		if err == nil || !strings.Contains(out, "could not read Username") {
			t.Errorf("ls-remote without credentials: err %v, want git to ask for a username:\n%s", err, out)
		}

		// An existing clone (credentials in its URL) switches to the store
		// helper with git remote set-url, no re-clone.
		hg := newGit(t)
		dir := filepath.Join(t.TempDir(), "helper")
		hg.must(t, "", "clone", remote, dir)
		hg.must(t, "", "config", "--global", "credential.helper", "store")
		hg.must(t, dir, "remote", "set-url", "origin", plain)
		if u := hg.must(t, dir, "remote", "get-url", "origin"); u != plain {
			t.Fatalf("remote get-url = %q", u)
		}

		// First use: the helper has nothing, git asks (askpass), then stores.
		askpass := filepath.Join(t.TempDir(), "askpass.sh")
		script := fmt.Sprintf("#!/bin/sh\ncase \"$1\" in\nUsername*) echo '%s' ;;\nPassword*) echo '%s' ;;\nesac\n", dev.Name, dev.Password)
		if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		hg.withEnv("GIT_ASKPASS="+askpass).must(t, dir, "fetch", "origin")
		stored, err := os.ReadFile(filepath.Join(hg.Home, ".git-credentials"))
		// The store helper writes http://user:pass@host%3aport.
		unescaped := strings.NewReplacer("%3a", ":", "%3A", ":").Replace(string(stored))
		if err != nil || !strings.Contains(unescaped, dev.Name+":"+dev.Password+"@"+s.HTTPAddr) {
			t.Fatalf("~/.git-credentials after a successful fetch: %v (%d bytes): the store helper did not keep the credentials", err, len(stored))
		}

		// From now on the stored credentials alone serve fetch, push and clone.
		hg.must(t, dir, "fetch", "origin")
		c := hg.commitFile(t, dir, "helper.txt", "via credential helper\n", "helper")
		hg.must(t, dir, "push", "origin", "HEAD:refs/heads/from-helper")
		if refs := g.lsRemote(t, remote); refs["refs/heads/from-helper"] != c {
			t.Errorf("push with stored credentials: from-helper = %q, want %s", refs["refs/heads/from-helper"], c)
		}
		hg.must(t, "", "clone", plain, filepath.Join(t.TempDir(), "helper-clone"))
	})

	t.Run("wrong password", func(t *testing.T) {
		out, err := g.run("", "ls-remote", s.gitURLAs("GIT", "demo-repo", dev.Name, dev.Password+"x"))
		if err == nil || !strings.Contains(out, "Authentication failed") {
			t.Errorf("ls-remote with a wrong password: err %v, want \"Authentication failed\":\n%s", err, out)
		}
		for _, svc := range []string{"git-upload-pack", "git-receive-pack"} {
			st, b, h := s.infoRefs(t, "GIT", "demo-repo", svc, dev.Name, dev.Password+"x", nil)
			if expectStatus(t, svc+" with a wrong password", st, b, http.StatusUnauthorized) {
				if got := h.Get("WWW-Authenticate"); got != `Basic realm="latch"` {
					t.Errorf("%s with a wrong password: WWW-Authenticate %q", svc, got)
				}
			}
		}
	})
}

func TestGitDenials(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.createProject(t, "DEN", "Denials")
	s.createRepo(t, "DEN", "Secret Repo")
	reader := s.createUser(t, "reader")
	stranger := s.createUser(t, "stranger")
	gone := s.createUser(t, "gone")
	s.grant(t, "DEN/secret-repo", reader.Name, "REPO_READ")
	s.grant(t, "DEN/secret-repo", gone.Name, "REPO_WRITE")

	g := newGit(t)
	seed := g.initRepo(t)
	head := g.commitFile(t, seed, "secret.txt", "s\n", "seed")
	g.must(t, seed, "push", s.gitURLAs("DEN", "secret-repo", adminName, s.AdminPassword), "main")

	t.Run("anonymous gets 401 with a Basic challenge", func(t *testing.T) {
		for _, c := range []struct{ key, slug string }{
			{"DEN", "secret-repo"}, // exists
			{"DEN", "no-such-repo"},
			{"NOPE", "no-such-repo"},
		} {
			for _, svc := range []string{"git-upload-pack", "git-receive-pack"} {
				what := fmt.Sprintf("anonymous info/refs %s/%s %s", c.key, c.slug, svc)
				st, b, h := s.infoRefs(t, c.key, c.slug, svc, "", "", nil)
				if expectStatus(t, what, st, b, http.StatusUnauthorized) {
					if got := h.Get("WWW-Authenticate"); got != `Basic realm="latch"` {
						t.Errorf("%s: WWW-Authenticate %q, want Basic realm=\"latch\"", what, got)
					}
				}
			}
		}
		st, b, h := s.request(t, http.MethodPost, "/scm/den/secret-repo.git/git-upload-pack",
			http.Header{"Content-Type": {"application/x-git-upload-pack-request"}}, pktFlush)
		if expectStatus(t, "anonymous POST git-upload-pack", st, b, http.StatusUnauthorized) &&
			h.Get("WWW-Authenticate") != `Basic realm="latch"` {
			t.Errorf("anonymous POST git-upload-pack: WWW-Authenticate %q", h.Get("WWW-Authenticate"))
		}
		out, err := g.run("", "ls-remote", s.gitURL("DEN", "secret-repo"))
		if err == nil || !strings.Contains(out, "could not read Username") {
			t.Errorf("anonymous ls-remote: err %v, want git to ask for credentials:\n%s", err, out)
		}
	})

	t.Run("no read access looks like no repository", func(t *testing.T) {
		for _, slug := range []string{"secret-repo", "no-such-repo"} {
			for _, svc := range []string{"git-upload-pack", "git-receive-pack"} {
				what := fmt.Sprintf("stranger info/refs %s %s", slug, svc)
				st, b, _ := s.infoRefs(t, "DEN", slug, svc, stranger.Name, stranger.Password, nil)
				if expectStatus(t, what, st, b, http.StatusNotFound) && !bytes.Contains(b, []byte("Repository not found")) {
					t.Errorf("%s: body %q, want it to say \"Repository not found\"", what, truncate(b, 300))
				}
			}
		}
		// The POST endpoints are checked too, not only info/refs.
		for _, svc := range []string{"git-upload-pack", "git-receive-pack"} {
			st, b, _ := s.request(t, http.MethodPost, "/scm/den/secret-repo.git/"+svc, http.Header{
				"Authorization": {basicAuth(stranger.Name, stranger.Password)},
				"Content-Type":  {"application/x-" + svc + "-request"},
			}, pktFlush)
			expectStatus(t, "stranger POST "+svc, st, b, http.StatusNotFound)
		}
		out, err := g.run("", "clone", s.gitURLAs("DEN", "secret-repo", stranger.Name, stranger.Password), filepath.Join(t.TempDir(), "x"))
		if err == nil || !strings.Contains(out, "not found") {
			t.Errorf("stranger clone: err %v, want \"not found\":\n%s", err, out)
		}
	})

	t.Run("reader may clone but not push", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "reader")
		g.must(t, "", "clone", s.gitURLAs("DEN", "secret-repo", reader.Name, reader.Password), dir)
		if got := g.must(t, dir, "rev-parse", "HEAD"); got != head {
			t.Errorf("reader clone HEAD %s, want %s", got, head)
		}
		g.commitFile(t, dir, "r.txt", "r\n", "reader change")
		out, err := g.run(dir, "push", "origin", "HEAD:refs/heads/reader")
		if err == nil {
			t.Fatalf("a reader pushed:\n%s", out)
		}
		if !strings.Contains(out, "403") || !strings.Contains(out, "REPO_WRITE") {
			t.Errorf("reader push: want a 403 naming REPO_WRITE in git's output, got:\n%s", out)
		}
		st, b, _ := s.infoRefs(t, "DEN", "secret-repo", "git-receive-pack", reader.Name, reader.Password, nil)
		if expectStatus(t, "reader info/refs git-receive-pack", st, b, http.StatusForbidden) && !bytes.Contains(b, []byte("REPO_WRITE")) {
			t.Errorf("reader info/refs git-receive-pack: body %q does not name REPO_WRITE", truncate(b, 300))
		}
		// A POST straight to git-receive-pack is refused as well.
		st, b, _ = s.request(t, http.MethodPost, "/scm/den/secret-repo.git/git-receive-pack", http.Header{
			"Authorization": {basicAuth(reader.Name, reader.Password)},
			"Content-Type":  {"application/x-git-receive-pack-request"},
		}, pktFlush)
		expectStatus(t, "reader POST git-receive-pack", st, b, http.StatusForbidden)
		if refs := g.lsRemote(t, s.gitURLAs("DEN", "secret-repo", adminName, s.AdminPassword)); refs["refs/heads/reader"] != "" {
			t.Errorf("the reader's push created refs/heads/reader")
		}
	})

	t.Run("deleted user", func(t *testing.T) {
		url := s.gitURLAs("DEN", "secret-repo", gone.Name, gone.Password)
		g.must(t, "", "ls-remote", url)
		st, b := s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/admin/users?name=gone", nil)
		mustStatus(t, "DELETE admin/users?name=gone", st, b, http.StatusOK, http.StatusNoContent)
		st, b, _ = s.infoRefs(t, "DEN", "secret-repo", "git-upload-pack", gone.Name, gone.Password, nil)
		expectStatus(t, "deleted user's password", st, b, http.StatusUnauthorized)
		if out, err := g.run("", "ls-remote", url); err == nil {
			t.Errorf("a deleted user's credentials still work:\n%s", out)
		}
	})
}

// TestGitAccessRules checks effective repository access = the highest of the
// direct user grant, group grants, the project grant (PROJECT_READ → REPO_READ,
// PROJECT_WRITE → REPO_WRITE, PROJECT_ADMIN → REPO_ADMIN) and global
// ADMIN/SYS_ADMIN, over Git and REST alike.
func TestGitAccessRules(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.createProject(t, "ACC", "Access")
	s.createRepo(t, "ACC", "Target")
	s.createRepo(t, "ACC", "Elsewhere")
	s.createProject(t, "ACX", "Access Other")
	s.createRepo(t, "ACX", "Target")

	g := newGit(t)
	seed := g.initRepo(t)
	head := g.commitFile(t, seed, "README.md", "access\n", "seed")
	g.must(t, seed, "push", s.gitURLAs("ACC", "target", adminName, s.AdminPassword), "main")

	const target = "ACC/target"
	type grantFn func(t *testing.T, user, group string)
	user := func(resource, perm string) grantFn {
		return func(t *testing.T, u, _ string) { s.grant(t, resource, u, perm) }
	}
	group := func(resource, perm string) grantFn {
		return func(t *testing.T, u, grp string) {
			s.createGroup(t, grp, u)
			s.grantGroup(t, resource, grp, perm)
		}
	}
	both := func(fs ...grantFn) grantFn {
		return func(t *testing.T, u, grp string) {
			for _, f := range fs {
				f(t, u, grp)
			}
		}
	}
	cases := []struct {
		name        string
		grant       grantFn
		read, write bool
	}{
		{"no-grants", nil, false, false},
		{"licensed-user", user("", "LICENSED_USER"), false, false},
		{"project-create", user("", "PROJECT_CREATE"), false, false},
		{"repo-read", user(target, "REPO_READ"), true, false},
		{"repo-write", user(target, "REPO_WRITE"), true, true},
		{"repo-admin", user(target, "REPO_ADMIN"), true, true},
		{"project-read", user("ACC", "PROJECT_READ"), true, false},
		{"project-write", user("ACC", "PROJECT_WRITE"), true, true},
		{"project-admin", user("ACC", "PROJECT_ADMIN"), true, true},
		{"group-repo-read", group(target, "REPO_READ"), true, false},
		{"group-repo-write", group(target, "REPO_WRITE"), true, true},
		{"group-repo-admin", group(target, "REPO_ADMIN"), true, true},
		{"group-project-read", group("ACC", "PROJECT_READ"), true, false},
		{"group-project-write", group("ACC", "PROJECT_WRITE"), true, true},
		{"group-project-admin", group("ACC", "PROJECT_ADMIN"), true, true},
		{"repo-read-and-group-write", both(user(target, "REPO_READ"), group(target, "REPO_WRITE")), true, true},
		{"group-read-and-repo-write", both(group(target, "REPO_READ"), user(target, "REPO_WRITE")), true, true},
		{"project-write-and-repo-read", both(user("ACC", "PROJECT_WRITE"), user(target, "REPO_READ")), true, true},
		{"project-read-and-group-project-write", both(user("ACC", "PROJECT_READ"), group("ACC", "PROJECT_WRITE")), true, true},
		{"global-admin", user("", "ADMIN"), true, true},
		{"sys-admin", user("", "SYS_ADMIN"), true, true},
		{"other-repo-write", user("ACC/elsewhere", "REPO_WRITE"), false, false},
		{"same-slug-other-project-write", user("ACX/target", "REPO_WRITE"), false, false},
		{"other-project-admin", user("ACX", "PROJECT_ADMIN"), false, false},
		{"revoked-user-grant", func(t *testing.T, u, _ string) {
			s.grant(t, target, u, "REPO_WRITE")
			s.revoke(t, target, u)
		}, false, false},
		{"revoked-group-grant", func(t *testing.T, u, grp string) {
			group(target, "REPO_WRITE")(t, u, grp)
			s.revokeGroup(t, target, grp)
		}, false, false},
		{"revoked-project-grant", func(t *testing.T, u, _ string) {
			s.grant(t, "ACC", u, "PROJECT_WRITE")
			s.revoke(t, "ACC", u)
		}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := s.createUser(t, "u-"+c.name)
			if c.grant != nil {
				c.grant(t, u.Name, "g-"+c.name)
			}

			// Wire level.
			st, b, _ := s.infoRefs(t, "ACC", "target", "git-upload-pack", u.Name, u.Password, nil)
			if c.read {
				expectStatus(t, "info/refs upload-pack", st, b, http.StatusOK)
			} else {
				expectStatus(t, "info/refs upload-pack", st, b, http.StatusNotFound)
			}
			st, b, _ = s.infoRefs(t, "ACC", "target", "git-receive-pack", u.Name, u.Password, nil)
			switch {
			case c.write:
				expectStatus(t, "info/refs receive-pack", st, b, http.StatusOK)
			case c.read:
				expectStatus(t, "info/refs receive-pack", st, b, http.StatusForbidden)
			default:
				expectStatus(t, "info/refs receive-pack", st, b, http.StatusNotFound)
			}

			// The real git client.
			remote := s.gitURLAs("ACC", "target", u.Name, u.Password)
			dir := filepath.Join(t.TempDir(), "clone")
			out, err := g.run("", "clone", remote, dir)
			if c.read != (err == nil) {
				t.Fatalf("clone: err %v, want allowed=%v:\n%s", err, c.read, out)
			}
			if !c.read {
				if !strings.Contains(out, "not found") {
					t.Errorf("clone without read access: want \"not found\", got:\n%s", out)
				}
				dir = g.initRepo(t)
			} else if got := g.must(t, dir, "rev-parse", "HEAD"); got != head {
				t.Errorf("clone HEAD %s, want %s", got, head)
			}
			mine := g.commitFile(t, dir, c.name+".txt", c.name+"\n", "push by "+u.Name)
			out, err = g.run(dir, "push", remote, "HEAD:refs/heads/"+u.Name)
			if c.write != (err == nil) {
				t.Errorf("push: err %v, want allowed=%v:\n%s", err, c.write, out)
			}
			switch {
			case c.write:
				refs := g.lsRemote(t, s.gitURLAs("ACC", "target", adminName, s.AdminPassword))
				if refs["refs/heads/"+u.Name] != mine {
					t.Errorf("push reported success but refs/heads/%s = %q, want %s", u.Name, refs["refs/heads/"+u.Name], mine)
				}
			case c.read:
				if !strings.Contains(out, "REPO_WRITE") {
					t.Errorf("push with read-only access: git's output does not name REPO_WRITE:\n%s", out)
				}
			default:
				if !strings.Contains(out, "not found") {
					t.Errorf("push without access: want \"not found\", got:\n%s", out)
				}
			}

			// REST sees the same decision.
			repos := allPages[restRepo](t, s, "/rest/api/1.0/repos", u.Name, u.Password)
			listed := slices.ContainsFunc(repos, func(r restRepo) bool { return r.Project.Key == "ACC" && r.Slug == "target" })
			if listed != c.read {
				t.Errorf("GET /rest/api/1.0/repos lists ACC/target: %v, want %v", listed, c.read)
			}
			if c.read {
				mustGet(t, s, "/rest/api/1.0/projects/ACC/repos/target", u.Name, u.Password)
			}
		})
	}
}
