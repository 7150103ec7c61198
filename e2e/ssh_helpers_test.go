package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SSH helpers: keys made with the real ssh-keygen, the real OpenSSH client
// as git's transport, and the key REST APIs.

// sshKey is a key pair made by ssh-keygen.
type sshKey struct {
	Path string // private key file
	Pub  string // public key line, "TYPE BASE64 COMMENT"
}

// sshKeygen makes a key pair in a temporary directory: typ "ed25519",
// "ecdsa" or "rsa", bits 0 for the default.
func sshKeygen(t testing.TB, typ string, bits int, comment string) sshKey {
	t.Helper()
	if bits > 0 {
		return keygen(t, typ, comment, "-b", fmt.Sprint(bits))
	}
	return keygen(t, typ, comment)
}

// keygen runs ssh-keygen -t typ with extra arguments, writing an
// unencrypted key pair in a temporary directory.
func keygen(t testing.TB, typ, comment string, extra ...string) sshKey {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("ssh-keygen not found: %v", err)
	}
	path := filepath.Join(t.TempDir(), "id_"+typ)
	args := append([]string{"-q", "-t", typ, "-N", "", "-C", comment, "-f", path}, extra...)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{Path: path, Pub: strings.TrimSpace(string(pub))}
}

// fingerprint returns the key's "SHA256:..." fingerprint as ssh-keygen prints it.
func (k sshKey) fingerprint(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", k.Path+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l: %q", out)
	}
	return f[1]
}

// sshOptions are the OpenSSH options every test connection uses.
func (s *Server) sshOptions(key sshKey, knownHosts string) []string {
	_, port := s.SSHHostPort()
	strict := "no"
	if knownHosts == "" {
		knownHosts = os.DevNull
	} else {
		strict = "yes"
	}
	return []string{"-i", key.Path, "-p", port, "-o", "StrictHostKeyChecking=" + strict, "-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-F", os.DevNull}
}

// gitSSH returns g with GIT_SSH_COMMAND using key.
func (s *Server) gitSSH(g *gitClient, key sshKey) *gitClient {
	return g.withEnv("GIT_SSH_COMMAND=ssh " + strings.Join(s.sshOptions(key, ""), " "))
}

// sshRun runs the OpenSSH client as git@host with key and the remote
// command args (none: a shell), and returns its combined output and exit code.
func (s *Server) sshRun(t testing.TB, key sshKey, user string, args ...string) (string, int) {
	t.Helper()
	host, _ := s.SSHHostPort()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append(s.sshOptions(key, ""), "-T", user+"@"+host)
	cmd := exec.CommandContext(ctx, "ssh", append(all, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("ssh: %v", err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// restSSHKey is RestSshKey.
type restSSHKey struct {
	ID                int64   `json:"id"`
	Text              string  `json:"text"`
	Label             string  `json:"label"`
	Fingerprint       string  `json:"fingerprint"`
	AlgorithmType     string  `json:"algorithmType"`
	BitLength         int     `json:"bitLength"`
	CreatedDate       int64   `json:"createdDate"`
	ExpiryDays        int     `json:"expiryDays"`
	LastAuthenticated *string `json:"lastAuthenticated"`
}

// restAccessKey is RestSshAccessKey.
type restAccessKey struct {
	Key        restSSHKey   `json:"key"`
	Permission string       `json:"permission"`
	Project    *restProject `json:"project"`
	Repository *restRepo    `json:"repository"`
}

// addUserKey adds key to user's account as user (pass) and returns it.
func (s *Server) addUserKey(t testing.TB, user, pass string, key sshKey, label string) restSSHKey {
	t.Helper()
	st, b := s.tryAddUserKey(t, user, pass, "", key.Pub, label)
	mustStatus(t, "add SSH key for "+user, st, b, http.StatusCreated)
	return decodeJSON[restSSHKey](t, b)
}

// tryAddUserKey posts a user key (for user forUser, "" for oneself).
func (s *Server) tryAddUserKey(t testing.TB, user, pass, forUser, text, label string) (int, []byte) {
	t.Helper()
	path := "/rest/ssh/1.0/keys"
	if forUser != "" {
		path += "?user=" + url.QueryEscape(forUser)
	}
	body := map[string]any{"text": text}
	if label != "" {
		body["label"] = label
	}
	st, b, _ := s.do(t, http.MethodPost, path, user, pass, body)
	return st, b
}

// accessKeyPath is the access key collection of "KEY" or "KEY/slug".
func accessKeyPath(resource string) string {
	if key, slug, ok := strings.Cut(resource, "/"); ok {
		return "/rest/keys/1.0/projects/" + key + "/repos/" + slug + "/ssh"
	}
	return "/rest/keys/1.0/projects/" + resource + "/ssh"
}

// addAccessKey adds key as an access key on resource ("KEY" or "KEY/slug")
// as the admin.
func (s *Server) addAccessKey(t testing.TB, resource string, key sshKey, perm string) restAccessKey {
	t.Helper()
	st, b := s.tryAddAccessKey(t, resource, key.Pub, perm)
	mustStatus(t, "add access key to "+resource, st, b, http.StatusCreated)
	return decodeJSON[restAccessKey](t, b)
}

func (s *Server) tryAddAccessKey(t testing.TB, resource, text, perm string) (int, []byte) {
	t.Helper()
	body := map[string]any{"key": map[string]any{"text": text}}
	if perm != "" {
		body["permission"] = perm
	}
	return s.asAdmin(t, http.MethodPost, accessKeyPath(resource), body)
}

// cloneSSH clones KEY/slug over SSH with key into a new directory; it
// returns the directory, git's output and error.
func (s *Server) cloneSSH(t testing.TB, g *gitClient, key sshKey, projectKey, slug string) (string, string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), slug)
	out, err := s.gitSSH(g, key).run("", "clone", s.sshURL(projectKey, slug), dir)
	return dir, out, err
}
