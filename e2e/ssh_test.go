package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestSSH drives Git over SSH with the real OpenSSH client and keys made by
// ssh-keygen: user keys, repository and project access keys, exclusivity,
// refusals.
func TestSSH(t *testing.T) {
	s := startServer(t)
	g := newGit(t)
	s.createProject(t, "PRJ", "Project")
	s.createProject(t, "OTH", "Other")
	for _, name := range []string{"one", "two", "three"} {
		s.createRepo(t, "PRJ", name)
		s.seedRepo(t, g, "PRJ", name)
	}
	s.createRepo(t, "OTH", "secret")
	s.seedRepo(t, g, "OTH", "secret")
	alice := s.createUser(t, "alice")
	s.grant(t, "PRJ/one", "alice", "REPO_WRITE")
	s.grant(t, "PRJ/two", "alice", "REPO_READ")

	t.Run("user key clone and push", func(t *testing.T) {
		key := sshKeygen(t, "ed25519", 0, "alice@laptop")
		k := s.addUserKey(t, alice.Name, alice.Password, key, "")
		if k.Label != "alice@laptop" || k.AlgorithmType != "ED25519" || k.BitLength != 256 || "SHA256:"+k.Fingerprint != key.fingerprint(t) {
			t.Errorf("added key %+v (fingerprint want %s)", k, key.fingerprint(t))
		}
		dir, out, err := s.cloneSSH(t, g, key, "PRJ", "one")
		if err != nil {
			t.Fatalf("clone over SSH: %v\n%s", err, out)
		}
		gs := s.gitSSH(g, key)
		id := gs.commitFile(t, dir, "alice.txt", "from alice over ssh\n", "alice over ssh")
		gs.must(t, dir, "push", "-q", "origin", "main")
		if refs := g.lsRemote(t, s.gitURLAs("PRJ", "one", adminName, s.AdminPassword)); refs["refs/heads/main"] != id {
			t.Errorf("after the SSH push main is %s, want %s", refs["refs/heads/main"], id)
		}
		// Read-only where alice only reads; nothing where she has nothing.
		dir2, out, err := s.cloneSSH(t, g, key, "PRJ", "two")
		if err != nil {
			t.Fatalf("clone PRJ/two: %v\n%s", err, out)
		}
		gs.commitFile(t, dir2, "x.txt", "x\n", "x")
		out, err = gs.run(dir2, "push", "origin", "main")
		if err == nil || !strings.Contains(out, "may read but not push to PRJ/two") {
			t.Errorf("push to a read-only repository: %v\n%s", err, out)
		}
		if _, out, err := s.cloneSSH(t, g, key, "OTH", "secret"); err == nil || !strings.Contains(out, "Repository not found") {
			t.Errorf("clone of a repository alice cannot see: %v\n%s", err, out)
		}
		// The other accepted path shapes.
		for _, u := range []string{"ssh://git@" + s.SSHAddr + "/scm/prj/one.git", "ssh://git@" + s.SSHAddr + "/PRJ/one"} {
			if out, err := gs.run("", "ls-remote", u); err != nil || !strings.Contains(out, "refs/heads/main") {
				t.Errorf("ls-remote %s: %v\n%s", u, err, out)
			}
		}
		// Listed with lastAuthenticated (batched, shown before it is written).
		keys := getJSON[page[restSSHKey]](t, s, "/rest/ssh/1.0/keys", alice.Name, alice.Password)
		if len(keys.Values) != 1 || keys.Values[0].ID != k.ID || keys.Values[0].LastAuthenticated == nil {
			t.Errorf("alice's keys: %+v", keys.Values)
		} else if ms, err := strconv.ParseInt(*keys.Values[0].LastAuthenticated, 10, 64); err != nil || time.Since(time.UnixMilli(ms)) > time.Minute {
			t.Errorf("lastAuthenticated %q", *keys.Values[0].LastAuthenticated)
		}
		// Deleting the key takes effect for the next connection.
		st, b, _ := s.do(t, http.MethodDelete, "/rest/ssh/1.0/keys/"+strconv.FormatInt(k.ID, 10), alice.Name, alice.Password, nil)
		mustStatus(t, "delete key", st, b, http.StatusNoContent)
		if out, err := gs.run("", "ls-remote", s.sshURL("PRJ", "one")); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("ls-remote with a deleted key: %v\n%s", err, out)
		}
	})

	t.Run("access key read-only", func(t *testing.T) {
		key := sshKeygen(t, "ecdsa", 256, "build-server")
		ak := s.addAccessKey(t, "PRJ/one", key, "REPO_READ")
		if ak.Permission != "REPO_READ" || ak.Repository == nil || ak.Repository.Slug != "one" || ak.Key.Label != "build-server" || ak.Key.AlgorithmType != "ECDSA" {
			t.Errorf("added access key %+v", ak)
		}
		dir, out, err := s.cloneSSH(t, g, key, "PRJ", "one")
		if err != nil {
			t.Fatalf("clone with a read-only access key: %v\n%s", err, out)
		}
		gs := s.gitSSH(g, key)
		gs.commitFile(t, dir, "ci.txt", "ci\n", "ci")
		out, err = gs.run(dir, "push", "origin", "main")
		if err == nil || !strings.Contains(out, `access key "build-server" is read-only on PRJ/one`) {
			t.Errorf("push with a read-only access key: %v\n%s", err, out)
		}
		for _, repo := range []string{"PRJ/two", "OTH/secret"} {
			k, slug, _ := strings.Cut(repo, "/")
			if _, out, err := s.cloneSSH(t, g, key, k, slug); err == nil || !strings.Contains(out, "Repository not found") {
				t.Errorf("clone of %s with a key not added there: %v\n%s", repo, err, out)
			}
		}
	})

	t.Run("one key on two repositories then removed from one", func(t *testing.T) {
		key := sshKeygen(t, "rsa", 3072, "deploy")
		a1 := s.addAccessKey(t, "PRJ/two", key, "REPO_READ")
		a2 := s.addAccessKey(t, "PRJ/three", key, "REPO_READ")
		if a1.Key.ID != a2.Key.ID || a1.Key.BitLength != 3072 || a1.Key.AlgorithmType != "RSA" {
			t.Errorf("one key twice: %+v / %+v", a1.Key, a2.Key)
		}
		id := strconv.FormatInt(a1.Key.ID, 10)
		usages := getJSON[page[restAccessKey]](t, s, "/rest/keys/1.0/ssh/"+id+"/repos", adminName, s.AdminPassword)
		if len(usages.Values) != 2 {
			t.Errorf("usages: %+v", usages.Values)
		}
		for _, slug := range []string{"two", "three"} {
			if _, out, err := s.cloneSSH(t, g, key, "PRJ", slug); err != nil {
				t.Errorf("clone PRJ/%s: %v\n%s", slug, err, out)
			}
		}
		st, b := s.asAdmin(t, http.MethodDelete, accessKeyPath("PRJ/two")+"/"+id, nil)
		mustStatus(t, "remove the key from PRJ/two", st, b, http.StatusNoContent)
		if _, out, err := s.cloneSSH(t, g, key, "PRJ", "two"); err == nil || !strings.Contains(out, "Repository not found") {
			t.Errorf("clone PRJ/two after removal: %v\n%s", err, out)
		}
		if _, out, err := s.cloneSSH(t, g, key, "PRJ", "three"); err != nil {
			t.Errorf("clone PRJ/three after removal from PRJ/two: %v\n%s", err, out)
		}
		usages = getJSON[page[restAccessKey]](t, s, "/rest/keys/1.0/ssh/"+id+"/repos", adminName, s.AdminPassword)
		if len(usages.Values) != 1 || usages.Values[0].Repository == nil || usages.Values[0].Repository.Slug != "three" {
			t.Errorf("usages after removal: %+v", usages.Values)
		}
		st, b = s.asAdmin(t, http.MethodGet, accessKeyPath("PRJ/two")+"/"+id, nil)
		mustStatus(t, "GET the key on PRJ/two", st, b, http.StatusNotFound)
	})

	t.Run("project key reaches every repository of the project", func(t *testing.T) {
		key := sshKeygen(t, "ed25519", 0, "project-ci")
		ak := s.addAccessKey(t, "PRJ", key, "PROJECT_READ")
		if ak.Project == nil || ak.Project.Key != "PRJ" || ak.Permission != "PROJECT_READ" {
			t.Errorf("project key %+v", ak)
		}
		s.createRepo(t, "PRJ", "later")
		for _, slug := range []string{"one", "two", "three", "later"} {
			if _, out, err := s.cloneSSH(t, g, key, "PRJ", slug); err != nil {
				t.Errorf("clone PRJ/%s with the project key: %v\n%s", slug, err, out)
			}
		}
		if _, out, err := s.cloneSSH(t, g, key, "OTH", "secret"); err == nil || !strings.Contains(out, "Repository not found") {
			t.Errorf("project key on another project: %v\n%s", err, out)
		}
		projects := getJSON[page[restAccessKey]](t, s, "/rest/keys/1.0/ssh/"+strconv.FormatInt(ak.Key.ID, 10)+"/projects", adminName, s.AdminPassword)
		if len(projects.Values) != 1 || projects.Values[0].Project == nil || projects.Values[0].Project.Key != "PRJ" {
			t.Errorf("project usages %+v", projects.Values)
		}
	})

	t.Run("REPO_WRITE key pushes", func(t *testing.T) {
		key := sshKeygen(t, "ed25519", 0, "writer")
		ak := s.addAccessKey(t, "PRJ/three", key, "REPO_WRITE")
		dir, out, err := s.cloneSSH(t, g, key, "PRJ", "three")
		if err != nil {
			t.Fatalf("clone: %v\n%s", err, out)
		}
		gs := s.gitSSH(g, key)
		id := gs.commitFile(t, dir, "deploy.txt", "deployed\n", "deploy")
		gs.must(t, dir, "push", "-q", "origin", "main")
		if refs := g.lsRemote(t, s.gitURLAs("PRJ", "three", adminName, s.AdminPassword)); refs["refs/heads/main"] != id {
			t.Errorf("main after the access key push: %s, want %s", refs["refs/heads/main"], id)
		}
		// Lowering the permission takes effect for the next connection.
		st, b := s.asAdmin(t, http.MethodPut, accessKeyPath("PRJ/three")+"/"+strconv.FormatInt(ak.Key.ID, 10)+"/permission/REPO_READ", nil)
		mustStatus(t, "set REPO_READ", st, b, http.StatusOK)
		gs.commitFile(t, dir, "deploy2.txt", "again\n", "deploy again")
		if out, err := gs.run(dir, "push", "origin", "main"); err == nil || !strings.Contains(out, "read-only") {
			t.Errorf("push after lowering to REPO_READ: %v\n%s", err, out)
		}
		// Re-adding on the same resource updates the permission.
		again := s.addAccessKey(t, "PRJ/three", key, "REPO_WRITE")
		if again.Key.ID != ak.Key.ID || again.Permission != "REPO_WRITE" {
			t.Errorf("re-added key %+v", again)
		}
		gs.must(t, dir, "push", "-q", "origin", "main")
	})

	t.Run("user key and access key exclusivity", func(t *testing.T) {
		bob := s.createUser(t, "bob")
		userKey := sshKeygen(t, "ed25519", 0, "bob")
		s.addUserKey(t, bob.Name, bob.Password, userKey, "")
		st, b := s.tryAddUserKey(t, bob.Name, bob.Password, "", userKey.Pub, "")
		mustStatus(t, "same user key again", st, b, http.StatusConflict)
		if errs := checkError(t, "duplicate key", b, ""); len(errs) > 0 && errs[0].Message != "The SSH key already exists on the system." {
			t.Errorf("duplicate key message %q", errs[0].Message)
		}
		st, b = s.tryAddUserKey(t, alice.Name, alice.Password, "", userKey.Pub, "")
		mustStatus(t, "bob's key added by alice", st, b, http.StatusConflict)
		st, b = s.tryAddAccessKey(t, "PRJ/one", userKey.Pub, "REPO_READ")
		mustStatus(t, "a user key as access key", st, b, http.StatusConflict)
		checkError(t, "user key as access key", b, "")

		accessKey := sshKeygen(t, "ed25519", 0, "ci")
		s.addAccessKey(t, "PRJ/one", accessKey, "REPO_READ")
		s.addAccessKey(t, "OTH/secret", accessKey, "REPO_READ")
		st, b = s.tryAddUserKey(t, bob.Name, bob.Password, "", accessKey.Pub, "")
		mustStatus(t, "an access key as user key", st, b, http.StatusConflict)
		if !strings.Contains(string(b), "access key") {
			t.Errorf("message: %s", b)
		}
	})

	t.Run("invalid keys", func(t *testing.T) {
		short := sshKeygen(t, "rsa", 1024, "short")
		for _, tc := range []struct{ text, msg string }{
			{short.Pub, "at least 2048 bits"},
			{"not a key", "not a valid SSH public key"},
			{"ssh-dss AAAAB3NzaC1kc3MAAACBAP== x", "DSA keys are not accepted"},
			{"", "required"},
		} {
			st, b := s.tryAddUserKey(t, alice.Name, alice.Password, "", tc.text, "")
			mustStatus(t, "add "+tc.text, st, b, http.StatusBadRequest)
			if !strings.Contains(string(b), tc.msg) {
				t.Errorf("add %q: %s, want a message containing %q", tc.text, b, tc.msg)
			}
			st, b = s.tryAddAccessKey(t, "PRJ/one", tc.text, "REPO_READ")
			mustStatus(t, "add access key "+tc.text, st, b, http.StatusBadRequest)
		}
		key := sshKeygen(t, "ed25519", 0, "x")
		st, b := s.tryAddAccessKey(t, "PRJ/one", key.Pub, "REPO_ADMIN")
		mustStatus(t, "REPO_ADMIN access key", st, b, http.StatusBadRequest)
		st, b = s.tryAddAccessKey(t, "PRJ", key.Pub, "REPO_READ")
		mustStatus(t, "REPO_READ on a project", st, b, http.StatusBadRequest)
		// Only repository and project administrators add access keys.
		st, b, _ = s.do(t, http.MethodPost, accessKeyPath("PRJ/one"), alice.Name, alice.Password,
			map[string]any{"key": map[string]any{"text": key.Pub}, "permission": "REPO_READ"})
		mustStatus(t, "alice adds an access key without REPO_ADMIN", st, b, http.StatusUnauthorized)
	})

	t.Run("refused shell and commands", func(t *testing.T) {
		key := sshKeygen(t, "ed25519", 0, "shelly")
		s.addUserKey(t, alice.Name, alice.Password, key, "")
		out, code := s.sshRun(t, key, "git")
		if code == 0 || !strings.Contains(out, "does not provide shell access") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("shell: exit %d, output %q", code, out)
		}
		for _, cmd := range [][]string{{"ls", "-la"}, {"cat", "/etc/passwd"}, {"git-upload-pack", "'/../../etc'"}, {"bash", "-c", "id"}} {
			out, code := s.sshRun(t, key, "git", cmd...)
			if code == 0 || !strings.Contains(out, "latch:") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("%v: exit %d, output %q; want a non-zero exit and one line", cmd, code, out)
			}
		}
		if out, code := s.sshRun(t, key, "alice", "git-upload-pack", "'/prj/one.git'"); code == 0 || !strings.Contains(out, "Permission denied") {
			t.Errorf("user alice: exit %d, output %q", code, out)
		}
		// git archive --remote works over SSH (git-upload-archive).
		gs := s.gitSSH(g, key)
		tarPath := filepath.Join(t.TempDir(), "one.tar")
		if out, err := gs.run("", "archive", "--remote="+s.sshURL("PRJ", "one"), "-o", tarPath, "main"); err != nil {
			t.Errorf("git archive --remote: %v\n%s", err, out)
		} else if st, err := os.Stat(tarPath); err != nil || st.Size() == 0 {
			t.Errorf("archive: %v", err)
		}
	})
}

// TestSSHHostKeyStableAcrossRestart connects with strict host key checking
// before and after a restart.
func TestSSHHostKeyStableAcrossRestart(t *testing.T) {
	s := startServer(t)
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	key := sshKeygen(t, "ed25519", 0, "admin")
	s.addUserKey(t, adminName, s.AdminPassword, key, "")
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	pub, err := os.ReadFile(filepath.Join(s.DataDir, "ssh_host_ed25519_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	host, port := s.SSHHostPort()
	if err := os.WriteFile(knownHosts, []byte("["+host+"]:"+port+" "+string(pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := newGit(t)
	lsRemote := func(s *Server) (string, error) {
		return g.withEnv("GIT_SSH_COMMAND=ssh "+strings.Join(s.sshOptions(key, knownHosts), " ")).run("", "ls-remote", s.sshURL("PRJ", "repo"))
	}
	if out, err := lsRemote(s); err != nil {
		t.Fatalf("ls-remote with strict host key checking: %v\n%s", err, out)
	}
	s2 := s.restart(t)
	// The port may differ after a restart: pin the same key for the new one.
	host, port = s2.SSHHostPort()
	if err := os.WriteFile(knownHosts, []byte("["+host+"]:"+port+" "+string(pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := lsRemote(s2); err != nil {
		t.Fatalf("ls-remote after restart (host key changed?): %v\n%s", err, out)
	}
	pub2, _ := os.ReadFile(filepath.Join(s2.DataDir, "ssh_host_ed25519_key.pub"))
	if string(pub2) != string(pub) {
		t.Errorf("host key changed across restart:\n%s\n%s", pub, pub2)
	}
}

// TestSSHSettings reads GET /rest/ssh/1.0/settings without credentials, as a
// clone dialog or an integration would, and uses what it says: the host key
// fingerprint is the one ssh-keygen prints for the server's key, and baseUrl
// joined with a repository's path clones with the real ssh client.
func TestSSHSettings(t *testing.T) {
	s := startServer(t)
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	type settings struct {
		Enabled           bool   `json:"enabled"`
		AccessKeysEnabled bool   `json:"accessKeysEnabled"`
		BaseURL           string `json:"baseUrl"`
		Port              int    `json:"port"`
		Fingerprint       *struct {
			Algorithm string `json:"algorithm"`
			Value     string `json:"value"`
		} `json:"fingerprint"`
	}
	var got settings
	for _, v := range []string{"1.0", "latest"} {
		st, b, _ := s.request(t, "GET", "/rest/ssh/"+v+"/settings", nil, nil)
		mustStatus(t, "ssh settings "+v, st, b, http.StatusOK)
		got = decodeJSON[settings](t, b)
	}
	_, port := s.SSHHostPort()
	hostKey := sshKey{Path: filepath.Join(s.DataDir, "ssh_host_ed25519_key")}.fingerprint(t)
	if !got.Enabled || !got.AccessKeysEnabled || strconv.Itoa(got.Port) != port || got.Fingerprint == nil ||
		got.Fingerprint.Algorithm != "SHA256" || "SHA256:"+got.Fingerprint.Value != hostKey {
		t.Fatalf("settings %+v (fingerprint %+v), want port %s and host key %s", got, got.Fingerprint, port, hostKey)
	}
	url := got.BaseURL + "/prj/repo.git"
	if url != s.sshURL("PRJ", "repo") {
		t.Errorf("baseUrl %q makes %q, want %q", got.BaseURL, url, s.sshURL("PRJ", "repo"))
	}
	key := sshKeygen(t, "ed25519", 0, "admin")
	s.addUserKey(t, adminName, s.AdminPassword, key, "")
	if out, err := s.gitSSH(newGit(t), key).run("", "ls-remote", url); err != nil {
		t.Fatalf("ls-remote %s: %v\n%s", url, err, out)
	}

	off := startServer(t, WithoutSSH())
	st, b, _ := off.request(t, "GET", "/rest/ssh/1.0/settings", nil, nil)
	mustStatus(t, "ssh settings with SSH off", st, b, http.StatusOK)
	if got := decodeJSON[settings](t, b); got.Enabled || got.AccessKeysEnabled || got.BaseURL != "" || got.Fingerprint != nil {
		t.Errorf("with --ssh off: %s", b)
	}
}

// TestSSHKeyMaximum: a user holds at most 200 SSH keys; the limit holds under
// concurrent additions (on PostgreSQL too), and deleting one frees a slot.
func TestSSHKeyMaximum(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.createUser(t, "keyring")
	newKey := func() string {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	burst := func(n int) map[int]int {
		var mu sync.Mutex
		counts := map[int]int{}
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				st, b := s.tryAddUserKey(t, u.Name, u.Password, "", newKey(), "")
				mu.Lock()
				defer mu.Unlock()
				counts[st]++
				if st != http.StatusCreated && st != http.StatusBadRequest {
					t.Errorf("add key: %d %s", st, truncate(b, 300))
				}
			}()
		}
		wg.Wait()
		return counts
	}
	if c := burst(190); c[http.StatusCreated] != 190 {
		t.Fatalf("adding 190 keys: statuses %v", c)
	}
	// 20 concurrent additions for the last 10 slots: exactly 10 succeed.
	if c := burst(20); c[http.StatusCreated] != 10 || c[http.StatusBadRequest] != 10 {
		t.Errorf("20 concurrent additions with 10 slots left: statuses %v, want 10×201 and 10×400", c)
	}
	keys := allPages[restSSHKey](t, s, "/rest/ssh/1.0/keys", u.Name, u.Password)
	if len(keys) != 200 {
		t.Fatalf("user has %d keys, want 200", len(keys))
	}
	st, b := s.tryAddUserKey(t, u.Name, u.Password, "", newKey(), "")
	if expectStatus(t, "201st key", st, b, http.StatusBadRequest) {
		if errs := checkError(t, "201st key", b, ""); len(errs) > 0 && !strings.Contains(errs[0].Message, "maximum number of SSH keys") {
			t.Errorf("201st key: %q", errs[0].Message)
		}
	}
	st, b, _ = s.do(t, http.MethodDelete, fmt.Sprintf("/rest/ssh/1.0/keys/%d", keys[0].ID), u.Name, u.Password, nil)
	mustStatus(t, "delete a key", st, b, http.StatusNoContent)
	st, b = s.tryAddUserKey(t, u.Name, u.Password, "", newKey(), "")
	mustStatus(t, "key after a deletion", st, b, http.StatusCreated)
}

// TestSSHKeyExpiry: keys added with expiryDays show it and work until then;
// an expired key is refused with a message saying so; the sshKeys policy
// requires and caps expiry for new user and access keys; expiry cannot be
// changed afterwards.
func TestSSHKeyExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithSQLite())
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	alice := s.createUser(t, "alice")
	st, b := s.asAdmin(t, http.MethodPut, "/rest/api/1.0/projects/PRJ/permissions/users?name=alice&permission=PROJECT_READ", nil)
	mustStatus(t, "grant alice PROJECT_READ", st, b, http.StatusNoContent)
	addKey := func(key sshKey, days any) (int, []byte) {
		body := map[string]any{"text": key.Pub}
		if days != nil {
			body["expiryDays"] = days
		}
		st, b, _ := s.do(t, http.MethodPost, "/rest/ssh/1.0/keys", alice.Name, alice.Password, body)
		return st, b
	}
	g := newGit(t)
	lsRemote := func(key sshKey) (string, error) {
		return s.gitSSH(g, key).run("", "ls-remote", s.sshURL("PRJ", "repo"))
	}

	soon := sshKeygen(t, "ed25519", 0, "soon")
	st, b = addKey(soon, 30)
	mustStatus(t, "key with expiryDays 30", st, b, http.StatusCreated)
	soonKey := decodeJSON[restSSHKey](t, b)
	if soonKey.ExpiryDays != 30 {
		t.Errorf("created key: expiryDays %d, want 30: %s", soonKey.ExpiryDays, b)
	}
	if keys := allPages[restSSHKey](t, s, "/rest/ssh/1.0/keys", alice.Name, alice.Password); len(keys) != 1 || keys[0].ExpiryDays != 30 {
		t.Errorf("listed keys: %+v", keys)
	}
	if out, err := lsRemote(soon); err != nil {
		t.Fatalf("ls-remote with an unexpired key: %v\n%s", err, out)
	}
	st, b, _ = s.do(t, http.MethodPut, fmt.Sprintf("/rest/ssh/1.0/keys/%d", soonKey.ID), alice.Name, alice.Password,
		map[string]any{"label": "x", "expiryDays": 365})
	if expectStatus(t, "changing a key's expiry", st, b, http.StatusBadRequest) {
		checkError(t, "changing a key's expiry", b, "")
	}
	for _, bad := range []any{-1, 3651, "30", 1.5} {
		st, b := addKey(sshKeygen(t, "ed25519", 0, "bad"), bad)
		if expectStatus(t, fmt.Sprintf("expiryDays %v", bad), st, b, http.StatusBadRequest) {
			checkError(t, fmt.Sprintf("expiryDays %v", bad), b, "")
		}
	}

	// The policy: new keys must expire within 90 days.
	st, b = s.asAdmin(t, http.MethodPut, "/rest/latch/1.0/admin/settings",
		map[string]any{"sshKeys": map[string]any{"requireExpiry": true, "maxExpiryDays": 90}})
	mustStatus(t, "SSH key policy", st, b, http.StatusOK)
	for _, c := range []struct {
		days any
		want string
	}{{nil, "SSH keys must expire"}, {0, "SSH keys must expire"}, {91, "at most 90 days"}} {
		st, b := addKey(sshKeygen(t, "ed25519", 0, "policy"), c.days)
		if expectStatus(t, fmt.Sprintf("expiryDays %v under the policy", c.days), st, b, http.StatusBadRequest) {
			if errs := checkError(t, "policy", b, ""); len(errs) > 0 && !strings.Contains(errs[0].Message, c.want) {
				t.Errorf("expiryDays %v: %q, want it to say %q", c.days, errs[0].Message, c.want)
			}
		}
	}
	later := sshKeygen(t, "ed25519", 0, "later")
	st, b = addKey(later, 90)
	mustStatus(t, "key with expiryDays 90 under the policy", st, b, http.StatusCreated)
	deploy := sshKeygen(t, "ed25519", 0, "deploy")
	st, b = s.tryAddAccessKey(t, "PRJ/repo", deploy.Pub, "REPO_READ")
	if expectStatus(t, "access key without expiry under the policy", st, b, http.StatusBadRequest) {
		checkError(t, "access key without expiry", b, "")
	}
	st, b = s.asAdmin(t, http.MethodPost, accessKeyPath("PRJ/repo"),
		map[string]any{"key": map[string]any{"text": deploy.Pub, "expiryDays": 7}, "permission": "REPO_READ"})
	mustStatus(t, "access key with expiryDays 7", st, b, http.StatusCreated)
	if ak := decodeJSON[restAccessKey](t, b); ak.Key.ExpiryDays != 7 {
		t.Errorf("access key: expiryDays %d, want 7", ak.Key.ExpiryDays)
	}
	if out, err := lsRemote(deploy); err != nil {
		t.Fatalf("ls-remote with the access key: %v\n%s", err, out)
	}
	// Added again (to the project), it keeps its expiry: another one is
	// refused rather than ignored; the same one, or none, is accepted.
	st, b = s.asAdmin(t, http.MethodPost, accessKeyPath("PRJ"),
		map[string]any{"key": map[string]any{"text": deploy.Pub, "expiryDays": 30}, "permission": "PROJECT_READ"})
	if expectStatus(t, "the access key again with expiryDays 30", st, b, http.StatusBadRequest) {
		if errs := checkError(t, "another expiry", b, ""); len(errs) > 0 && !strings.Contains(errs[0].Message, "already exists with expiryDays 7") {
			t.Errorf("another expiry: %q", errs[0].Message)
		}
	}
	for _, days := range []any{7, nil} {
		key := map[string]any{"text": deploy.Pub}
		if days != nil {
			key["expiryDays"] = days
		}
		st, b = s.asAdmin(t, http.MethodPost, accessKeyPath("PRJ"), map[string]any{"key": key, "permission": "PROJECT_READ"})
		if mustStatus(t, fmt.Sprintf("the access key again with expiryDays %v", days), st, b, http.StatusCreated); decodeJSON[restAccessKey](t, b).Key.ExpiryDays != 7 {
			t.Errorf("the access key added again: %s", b)
		}
	}

	// The first key's expiry passes (written into the database while the
	// server is stopped): it is refused, the others still work.
	s.stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE ssh_keys SET expires_at = $1 WHERE id = $2", time.Now().Add(-time.Hour).UnixMilli(), soonKey.ID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = s.restart(t)
	out, err := lsRemote(soon)
	if err == nil || !strings.Contains(out, "This SSH key expired on "+time.Now().Add(-time.Hour).UTC().Format(time.DateOnly)) {
		t.Errorf("ls-remote with an expired key: err %v\n%s", err, out)
	}
	for _, k := range []sshKey{later, deploy} {
		if out, err := lsRemote(k); err != nil {
			t.Errorf("ls-remote with an unexpired key after another expired: %v\n%s", err, out)
		}
	}
	st, b = s.asAdmin(t, http.MethodGet, "/rest/latch/1.0/admin/audit?type=sshkey.refused", nil)
	mustStatus(t, "GET audit", st, b, http.StatusOK)
	evs := decodeJSON[page[admEvent]](t, b).Values
	if len(evs) != 1 || evs[0].CredentialID != strconv.FormatInt(soonKey.ID, 10) || !strings.Contains(evs[0].Detail, "expired") {
		t.Errorf("sshkey.refused events: %+v", evs)
	}
}

// TestGitProcessLimit runs latch with --git-max-concurrent 1: while an SSH
// upload-pack holds the one slot (its client says nothing), a clone over
// HTTP waits, and completes once the SSH session ends.
func TestGitProcessLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithArgs("--git-max-concurrent", "1"))
	g := newGit(t)
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	head := g.must(t, s.seedRepo(t, g, "PRJ", "repo"), "rev-parse", "HEAD")
	key := sshKeygen(t, "ed25519", 0, "admin")
	s.addUserKey(t, adminName, s.AdminPassword, key, "")

	holder := s.holdUploadPack(t, key, "prj/repo")
	// The advertisement arrives once upload-pack runs, holding the slot.
	select {
	case err := <-holder.advertised:
		if err != nil {
			t.Fatalf("reading the SSH upload-pack advertisement: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no SSH upload-pack advertisement")
	}

	dir := filepath.Join(t.TempDir(), "clone")
	cloned := g.cloneAsync(s.gitURLAs("PRJ", "repo", adminName, s.AdminPassword), dir)
	select {
	case err := <-cloned:
		t.Fatalf("the clone finished while the only slot was held: %v", err)
	case <-time.After(2 * time.Second):
	}
	holder.hangUp() // upload-pack ends, the slot frees
	select {
	case err := <-cloned:
		if err != nil {
			t.Fatalf("clone after the slot freed: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the clone did not finish after the slot freed")
	}
	if got := g.must(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("cloned HEAD %s, want %s", got, head)
	}
}

// TestGitProcessLimitShare runs latch with --git-max-concurrent 4, of which
// one principal may hold two: of four SSH upload-pack sessions of the
// admin's that hold their processes (their client says nothing), two run
// and two wait; meanwhile another user's clone over HTTP completes at once;
// and when one of the admin's running sessions ends, a waiting one runs.
func TestGitProcessLimitShare(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithArgs("--git-max-concurrent", "4"))
	g := newGit(t)
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	head := g.must(t, s.seedRepo(t, g, "PRJ", "repo"), "rev-parse", "HEAD")
	key := sshKeygen(t, "ed25519", 0, "admin")
	s.addUserKey(t, adminName, s.AdminPassword, key, "")
	alice := s.createUser(t, "alice")
	s.grant(t, "PRJ/repo", alice.Name, "REPO_READ")

	type advertised struct {
		i   int
		err error
	}
	held := make([]*heldUploadPack, 4)
	advs := make(chan advertised, len(held))
	for i := range held {
		held[i] = s.holdUploadPack(t, key, "prj/repo")
		go func() { advs <- advertised{i, <-held[i].advertised} }()
	}
	next := func(what string) int {
		t.Helper()
		select {
		case a := <-advs:
			if a.err != nil {
				t.Fatalf("%s: reading the advertisement of session %d: %v", what, a.i, a.err)
			}
			return a.i
		case <-time.After(time.Minute):
			t.Fatalf("%s: no session runs", what)
			return -1
		}
	}
	running := []int{next("first session"), next("second session")}
	select {
	case a := <-advs:
		t.Fatalf("a third session of the admin's runs (%v): beyond its share of two slots", a.err)
	case <-time.After(2 * time.Second):
	}

	dir := filepath.Join(t.TempDir(), "clone")
	select {
	case err := <-g.cloneAsync(s.gitURLAs("PRJ", "repo", alice.Name, alice.Password), dir):
		if err != nil {
			t.Fatalf("another user's clone: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("another user's clone waited for the admin's sessions")
	}
	if got := g.must(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("cloned HEAD %s, want %s", got, head)
	}

	held[running[0]].hangUp()
	if i := next("after one of the admin's sessions ended"); i == running[0] || i == running[1] {
		t.Errorf("session %d advertised twice", i)
	}
}

// heldUploadPack is an SSH upload-pack session whose client says nothing
// but listens, so that its git process, once it runs, holds a slot of the
// git process limit until hangUp.
type heldUploadPack struct {
	stdin io.WriteCloser
	// advertised gets nil when the first bytes of the advertisement arrive
	// (upload-pack runs), or the error reading them.
	advertised <-chan error
}

// holdUploadPack opens a held upload-pack session with key on repository
// path ("prj/repo"); it is killed when the test ends.
func (s *Server) holdUploadPack(t testing.TB, key sshKey, path string) *heldUploadPack {
	t.Helper()
	host, _ := s.SSHHostPort()
	cmd := exec.Command("ssh", append(s.sshOptions(key, ""), "-T", "git@"+host, "git-upload-pack '"+path+".git'")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	advertised := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(stdout, make([]byte, 4))
		advertised <- err
	}()
	return &heldUploadPack{stdin: stdin, advertised: advertised}
}

// hangUp closes the session's input: the SSH client hangs up and
// upload-pack ends.
func (h *heldUploadPack) hangUp() { h.stdin.Close() }

// cloneAsync clones url into dir in the background; the channel gets git's
// error, with its output.
func (g *gitClient) cloneAsync(url, dir string) <-chan error {
	cloned := make(chan error, 1)
	go func() {
		out, err := g.run("", "clone", "-q", url, dir)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		cloned <- err
	}()
	return cloned
}
