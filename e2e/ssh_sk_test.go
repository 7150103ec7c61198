package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Security-key (FIDO) SSH keys, driven through the real ssh-keygen and ssh
// with a software authenticator: e2e/internal/skprovider, built as the
// shared library OpenSSH loads as its SecurityKeyProvider.

var skProvider struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildSKProvider builds the software authenticator once per test binary
// and returns the library's absolute path.
func buildSKProvider(t testing.TB) string {
	t.Helper()
	skProvider.once.Do(func() {
		dir, err := os.MkdirTemp("", "latch-skprovider-")
		if err != nil {
			skProvider.err = err
			return
		}
		skProvider.path = filepath.Join(dir, "skprovider.so")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", skProvider.path, "./e2e/internal/skprovider")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		skProvider.out, skProvider.err = cmd.CombinedOutput()
	})
	if skProvider.err != nil {
		t.Fatalf("building the software security key (needs a C compiler): %v\n%s", skProvider.err, skProvider.out)
	}
	return skProvider.path
}

// skKeygen makes a security-key pair of typ (ed25519-sk or ecdsa-sk) on the
// software authenticator.
func skKeygen(t testing.TB, provider, typ, comment string) sshKey {
	t.Helper()
	return keygen(t, typ, comment, "-w", provider)
}

// TestSSHSecurityKeys adds ed25519-sk and ecdsa-sk keys as user keys, then
// clones and pushes with them; an sk key signing without a touch, and one
// latch does not know, are refused.
func TestSSHSecurityKeys(t *testing.T) {
	t.Parallel()
	provider := buildSKProvider(t)
	s := startServer(t)
	g := newGit(t)
	s.createProject(t, "PRJ", "Project")
	s.createRepo(t, "PRJ", "repo")
	s.seedRepo(t, g, "PRJ", "repo")
	alice := s.createUser(t, "alice")
	s.grant(t, "PRJ/repo", "alice", "REPO_WRITE")
	withKey := func(key sshKey) *gitClient {
		opts := append(s.sshOptions(key, ""), "-o", "SecurityKeyProvider="+provider)
		return g.withEnv("GIT_SSH_COMMAND=ssh " + strings.Join(opts, " "))
	}

	var added []sshKey
	for _, c := range []struct{ typ, alg string }{{"ed25519-sk", "ED25519_SK"}, {"ecdsa-sk", "ECDSA_SK"}} {
		t.Run(c.typ, func(t *testing.T) {
			key := skKeygen(t, provider, c.typ, "alice@"+c.typ)
			added = append(added, key)
			k := s.addUserKey(t, alice.Name, alice.Password, key, "")
			if k.AlgorithmType != c.alg || k.BitLength != 256 || k.Label != "alice@"+c.typ || "SHA256:"+k.Fingerprint != key.fingerprint(t) {
				t.Errorf("added key %+v (fingerprint want %s)", k, key.fingerprint(t))
			}
			gs := withKey(key)
			dir := filepath.Join(t.TempDir(), "repo")
			if out, err := gs.run("", "clone", s.sshURL("PRJ", "repo"), dir); err != nil {
				t.Fatalf("clone with a %s key: %v\n%s", c.typ, err, out)
			}
			id := gs.commitFile(t, dir, c.typ+".txt", "pushed with a security key\n", "via "+c.typ)
			gs.must(t, dir, "push", "-q", "origin", "main")
			if refs := g.lsRemote(t, s.gitURLAs("PRJ", "repo", adminName, s.AdminPassword)); refs["refs/heads/main"] != id {
				t.Errorf("after the push main is %s, want %s", refs["refs/heads/main"], id)
			}
		})
	}

	// A key made not to need a touch signs without the user-presence flag,
	// and is refused (as sshd refuses it without a no-touch-required
	// option): whoever holds the machine must not clone without a touch.
	// golang.org/x/crypto/ssh closes the connection on such a signature
	// rather than answering "Permission denied".
	untouched := keygen(t, "ed25519-sk", "alice@untouched", "-w", provider, "-O", "no-touch-required")
	s.addUserKey(t, alice.Name, alice.Password, untouched, "")
	if out, err := withKey(untouched).run("", "ls-remote", s.sshURL("PRJ", "repo")); err == nil || !strings.Contains(out, "Could not read from remote repository") {
		t.Errorf("ls-remote with a no-touch-required security key: %v\n%s", err, out)
	}

	stranger := skKeygen(t, provider, "ed25519-sk", "stranger")
	if out, err := withKey(stranger).run("", "ls-remote", s.sshURL("PRJ", "repo")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("ls-remote with an unknown security key: %v\n%s", err, out)
	}
	// A security key cannot be both a user key and an access key either.
	for _, k := range added {
		st, b := s.tryAddAccessKey(t, "PRJ/repo", k.Pub, "REPO_READ")
		expectStatus(t, "a user's security key as an access key", st, b, http.StatusConflict)
	}
}
