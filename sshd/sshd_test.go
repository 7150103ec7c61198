package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/sqlite"
	"github.com/latchhq/latch/sqlstore"
	"github.com/latchhq/latch/sshkey"
	"github.com/latchhq/latch/store"
)

var ctx = context.Background()

// fixture is a store with users, one project with two repositories and an
// SSH server over them.
type fixture struct {
	st    *sqlstore.Store
	b     *backend.Backend
	repos *gitrepo.Manager
	srv   *Server
	addr  string
	host  ssh.PublicKey

	lookups    *recordingKeys
	alice, bob *latch.User
	prj        *latch.Project
	one, two   *latch.Repository
}

func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	repos, err := gitrepo.NewManager(filepath.Join(dir, "repositories"), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &fixture{st: st, repos: repos, b: backend.New(st, repos, log)}
	for _, u := range []**latch.User{&f.alice, &f.bob} {
		name := "alice"
		if u == &f.bob {
			name = "bob"
		}
		*u = &latch.User{Name: name, Slug: name, DisplayName: name, Email: name + "@example.com", Active: true, Type: latch.UserNormal}
		must(t, st.CreateUser(ctx, *u, ""))
	}
	f.prj = &latch.Project{Key: "PRJ", Name: "Project"}
	must(t, st.CreateProject(ctx, f.prj))
	for _, r := range []**latch.Repository{&f.one, &f.two} {
		name := "one"
		if r == &f.two {
			name = "two"
		}
		*r = &latch.Repository{ProjectID: f.prj.ID, Name: name, Slug: name, DefaultBranch: "main"}
		must(t, st.CreateRepo(ctx, *r))
		must(t, repos.Init(ctx, (*r).ID))
	}
	// alice reads PRJ/one; bob has nothing.
	must(t, st.SetPermission(ctx, latch.Resource{ProjectID: f.prj.ID, RepoID: f.one.ID}, store.Subject{UserID: f.alice.ID}, latch.RepoRead))

	hk, err := LoadOrCreateHostKey(filepath.Join(dir, HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	f.host = hk.PublicKey()
	f.lookups = &recordingKeys{KeyFinder: st}
	cfg := Config{HostKey: hk, Keys: f.lookups, Backend: f.b, Repos: repos, Log: log, Uses: NewUseTracker(st, time.Hour, log)}
	for _, o := range opts {
		o(&cfg)
	}
	f.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// recordingKeys records the fingerprints the server looks up.
type recordingKeys struct {
	KeyFinder
	mu  sync.Mutex
	fps []string
}

func (r *recordingKeys) KeyByFingerprint(ctx context.Context, fp string) (*store.SSHKey, error) {
	r.mu.Lock()
	r.fps = append(r.fps, fp)
	r.mu.Unlock()
	return r.KeyFinder.KeyByFingerprint(ctx, fp)
}

func (r *recordingKeys) looked(fp string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.fps, fp)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newSigner makes an Ed25519 key pair.
func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addKey stores signer's public key as a user key of u (nil: an access key
// with the given grants).
func (f *fixture) addKey(t *testing.T, s ssh.Signer, u *latch.User, label string, grants ...store.AccessKeyGrant) *store.SSHKey {
	t.Helper()
	k, err := sshkey.Parse(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
	if err != nil {
		t.Fatal(err)
	}
	sk := &store.SSHKey{Text: k.Text, Label: label, Fingerprint: k.Fingerprint, Algorithm: k.Algorithm, Bits: k.Bits, CreatedAt: 1}
	if u != nil {
		sk.UserID = u.ID
	}
	must(t, f.st.CreateKey(ctx, sk))
	for _, g := range grants {
		g.KeyID = sk.ID
		if _, err := f.st.SetAccessKeyGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	return sk
}

func (f *fixture) dial(t *testing.T, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", f.addr, &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: ssh.FixedHostKey(f.host), Timeout: 10 * time.Second,
	})
}

// result is what one command answered.
type result struct {
	stdout, stderr string
	code           int
}

// run runs command on a new session, sends stdin and closes it, and returns
// what came back.
func run(t *testing.T, c *ssh.Client, command, stdin string, env ...string) result {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for i := 0; i+1 < len(env); i += 2 {
		_ = sess.Setenv(env[i], env[i+1])
	}
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errb
	sess.Stdin = strings.NewReader(stdin)
	err = sess.Run(command)
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitStatus()
	default:
		t.Fatalf("%s: %v", command, err)
	}
	return r
}

// uploadPack asks for the ref advertisement of path and ends the
// conversation with a flush packet.
func uploadPack(t *testing.T, c *ssh.Client, path string) result {
	t.Helper()
	return run(t, c, "git-upload-pack '"+path+"'", "0000")
}

func wantRead(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 0 || !strings.Contains(r.stdout, "capabilities") && !strings.HasPrefix(r.stdout, "0000") {
		t.Errorf("%s: exit %d, stdout %q, stderr %q; want a ref advertisement", what, r.code, r.stdout, r.stderr)
	}
}

func wantRefused(t *testing.T, what string, r result, msg string) {
	t.Helper()
	if r.code == 0 || !strings.Contains(r.stderr, msg) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("%s: exit %d, stderr %q; want a non-zero exit and one line containing %q", what, r.code, r.stderr, msg)
	}
	if r.stdout != "" {
		t.Errorf("%s: stdout %q, want none", what, r.stdout)
	}
}

func TestUserKeyReadsWhatItsOwnerReads(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t)
	k := f.addKey(t, s, f.alice, "laptop")
	c, err := f.dial(t, User, ssh.PublicKeys(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, path := range []string{"/prj/one.git", "prj/one.git", "/scm/prj/one.git", "/PRJ/one"} {
		wantRead(t, path, uploadPack(t, c, path))
	}
	wantRefused(t, "a repository alice cannot read", uploadPack(t, c, "/prj/two.git"), "Repository not found")
	wantRefused(t, "an unknown repository", uploadPack(t, c, "/prj/nope.git"), "Repository not found")
	wantRefused(t, "push without write", run(t, c, "git-receive-pack '/prj/one.git'", ""), "may read but not push")
	if at, ok := f.srv.cfg.Uses.PendingKeyUse(k.ID); !ok || at == 0 {
		t.Error("the key's use was not recorded")
	}
}

func TestAccessKeys(t *testing.T) {
	f := newFixture(t)
	ro, rw, proj := newSigner(t), newSigner(t), newSigner(t)
	f.addKey(t, ro, nil, "ci", store.AccessKeyGrant{ProjectID: f.prj.ID, RepoID: f.one.ID, Permission: latch.RepoRead})
	f.addKey(t, rw, nil, "deploy", store.AccessKeyGrant{ProjectID: f.prj.ID, RepoID: f.two.ID, Permission: latch.RepoWrite})
	f.addKey(t, proj, nil, "project", store.AccessKeyGrant{ProjectID: f.prj.ID, Permission: latch.ProjectRead})

	c, err := f.dial(t, User, ssh.PublicKeys(ro))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantRead(t, "read-only key on its repository", uploadPack(t, c, "/prj/one.git"))
	wantRefused(t, "read-only key on another repository", uploadPack(t, c, "/prj/two.git"), "Repository not found")
	wantRefused(t, "read-only key pushing", run(t, c, "git-receive-pack '/prj/one.git'", ""), `access key "ci" is read-only on PRJ/one`)

	c2, err := f.dial(t, User, ssh.PublicKeys(proj))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wantRead(t, "project key on PRJ/one", uploadPack(t, c2, "/prj/one.git"))
	wantRead(t, "project key on PRJ/two", uploadPack(t, c2, "/prj/two.git"))
}

// TestOfferedKeyIsNotTheAuthenticatedKey offers key A (known to the server,
// so PublicKeyCallback accepts the query) without proving it holds A, then
// authenticates with B: the session must act as B (CVE-2024-45337).
func TestOfferedKeyIsNotTheAuthenticatedKey(t *testing.T) {
	f := newFixture(t)
	privileged, plain := newSigner(t), newSigner(t)
	noAccess, reader := newSigner(t), newSigner(t)
	f.addKey(t, privileged, f.alice, "alice can read PRJ/one")
	f.addKey(t, plain, f.bob, "bob can read nothing")
	f.addKey(t, noAccess, f.bob, "bob again")
	f.addKey(t, reader, nil, "ci", store.AccessKeyGrant{ProjectID: f.prj.ID, RepoID: f.one.ID, Permission: latch.RepoRead})

	// A signer that presents a's public key without holding its private key:
	// the server's query check for a passes (PublicKeyCallback accepts a),
	// the signature it then sends is refused (softly: its format does not
	// match the key's), and the client moves on to b.
	impostor := func(a, _ ssh.Signer) ssh.Signer { return &wrongSigner{pub: a.PublicKey()} }

	t.Run("privileged key offered, unprivileged key used", func(t *testing.T) {
		c, err := f.dial(t, User, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			return []ssh.Signer{impostor(privileged, plain), plain}, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !f.lookups.looked(sshkey.Fingerprint(privileged.PublicKey())) {
			t.Fatal("the server never saw the offered key: the test proves nothing")
		}
		wantRefused(t, "acting as bob", uploadPack(t, c, "/prj/one.git"), "Repository not found")
	})
	t.Run("no-access key offered, access key used", func(t *testing.T) {
		c, err := f.dial(t, User, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			return []ssh.Signer{impostor(noAccess, reader), reader}, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wantRead(t, "acting as the access key", uploadPack(t, c, "/prj/one.git"))
	})
	t.Run("only an offered key", func(t *testing.T) {
		if c, err := f.dial(t, User, ssh.PublicKeys(impostor(privileged, plain))); err == nil {
			c.Close()
			t.Fatal("authenticated without proving any key")
		}
	})
}

// wrongSigner presents a public key it does not hold: it answers with a
// signature in a format that does not match the key.
type wrongSigner struct{ pub ssh.PublicKey }

func (w *wrongSigner) PublicKey() ssh.PublicKey { return w.pub }

func (w *wrongSigner) Sign(io.Reader, []byte) (*ssh.Signature, error) {
	return &ssh.Signature{Format: ssh.KeyAlgoRSASHA256, Blob: make([]byte, 64)}, nil
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t)
	f.addKey(t, s, f.alice, "laptop")

	if c, err := f.dial(t, "alice", ssh.PublicKeys(s)); err == nil {
		c.Close()
		t.Error("user alice was accepted")
	}
	if c, err := f.dial(t, User, ssh.PublicKeys(newSigner(t))); err == nil {
		c.Close()
		t.Error("an unknown key was accepted")
	}
	if c, err := f.dial(t, User, ssh.Password("x")); err == nil {
		c.Close()
		t.Error("a password was accepted")
	}

	c, err := f.dial(t, User, ssh.PublicKeys(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct{ command, msg string }{
		{"ls -la", `command "ls" is not allowed`},
		{"git-upload-pack '/prj/../one.git'", "not a repository path"},
		{"git-upload-pack '/etc/passwd'", "Repository not found"},
		{"git-upload-pack '/home/git/.ssh/authorized_keys'", "not a repository path"},
		{"git-upload-pack '/prj/one.git'; rm -rf /", "not quoted correctly"},
		{"git-upload-pack /prj/one.git;id", "not allowed"},
		{"git-upload-pack", "repository path is required"},
		{"git-upload-pack '/a/b/c.git'", "not a repository path"},
		{"git upload-pack '/prj/one.git'", `command "git" is not allowed`},
		{"scp -t /tmp", `command "scp" is not allowed`},
	} {
		wantRefused(t, tc.command, run(t, c, tc.command, ""), tc.msg)
	}

	// A shell: refused with one line, exit 1.
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 40, 80, ssh.TerminalModes{}); err == nil {
		t.Error("a PTY was granted")
	}
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	sess.Stdout = io.Discard
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	err = sess.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() == 0 || !strings.Contains(stderr.String(), "does not provide shell access") {
		t.Errorf("shell: %v, stderr %q", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "hi alice") {
		t.Errorf("shell message does not say who authenticated: %q", stderr.String())
	}
	sess.Close()

	// Only GIT_PROTOCOL passes as environment.
	sess, _ = c.NewSession()
	if err := sess.Setenv("LD_PRELOAD", "/tmp/x.so"); err == nil {
		t.Error("LD_PRELOAD was accepted")
	}
	if err := sess.Setenv("GIT_PROTOCOL", "version=2"); err != nil {
		t.Errorf("GIT_PROTOCOL refused: %v", err)
	}
	if err := sess.Setenv("GIT_PROTOCOL", "version=2 --upload-pack=x"); err == nil {
		t.Error("an unsafe GIT_PROTOCOL was accepted")
	}
	sess.Close()
	r := run(t, c, "git-upload-pack '/prj/one.git'", "0000", "GIT_PROTOCOL", "version=2")
	if r.code != 0 || !strings.Contains(r.stdout, "version 2") {
		t.Errorf("protocol v2 upload-pack: %+v", r)
	}

	// Port forwarding is refused.
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Error("a direct-tcpip channel was opened")
	}
}

func TestRemovedKeyTakesEffectAtNextConnection(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t)
	k := f.addKey(t, s, nil, "ci", store.AccessKeyGrant{ProjectID: f.prj.ID, RepoID: f.one.ID, Permission: latch.RepoRead})
	c, err := f.dial(t, User, ssh.PublicKeys(s))
	if err != nil {
		t.Fatal(err)
	}
	wantRead(t, "before", uploadPack(t, c, "/prj/one.git"))
	if _, err := f.st.RemoveAccessKeyGrant(ctx, k.ID, latch.Resource{ProjectID: f.prj.ID, RepoID: f.one.ID}); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "on the same connection after the grant is removed", uploadPack(t, c, "/prj/one.git"), "Repository not found")
	c.Close()
	must(t, f.st.DeleteKey(ctx, k.ID))
	if c, err := f.dial(t, User, ssh.PublicKeys(s)); err == nil {
		c.Close()
		t.Error("a deleted key authenticated")
	}
}

func TestHostKeyIsStable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", HostKeyFile)
	a, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.PublicKey().Marshal(), b.PublicKey().Marshal()) || a.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key changed or is not Ed25519: %s, %s", a.PublicKey().Type(), b.PublicKey().Type())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v, %v; want 0600", st.Mode(), err)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil || !bytes.Equal(pub, ssh.MarshalAuthorizedKey(a.PublicKey())) {
		t.Errorf("host public key file: %q, %v", pub, err)
	}
}

func TestShutdownWaitsForRunningCommands(t *testing.T) {
	f := newFixture(t)
	s := newSigner(t)
	f.addKey(t, s, f.alice, "laptop")
	c, err := f.dial(t, User, ssh.PublicKeys(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	var out bytes.Buffer
	sess.Stdout = &out
	if err := sess.Start("git-upload-pack '/prj/one.git'"); err != nil {
		t.Fatal(err)
	}
	// Wait until git answers, so that the command is running.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f.srv.mu.Lock()
		n := 0
		for _, st := range f.srv.conns {
			n += st.active
		}
		f.srv.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done <- f.srv.Shutdown(sctx)
	}()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned while a command ran: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	stdin.Write([]byte("0000"))
	stdin.Close()
	if err := sess.Wait(); err != nil {
		t.Errorf("the running command was cut short: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := f.dial(t, User, ssh.PublicKeys(s)); err == nil {
		t.Error("a connection was accepted after Shutdown")
	}
}

func TestNetworkPolicyApplies(t *testing.T) {
	var aliceID atomic.Int64
	f := newFixture(t, func(c *Config) {
		c.CheckNetwork = func(p *latch.Principal, addr netip.Addr) error {
			if p.User == nil || p.User.ID != aliceID.Load() || !addr.IsLoopback() {
				t.Errorf("CheckNetwork(%+v, %s)", p, addr)
			}
			return errors.New("out of range")
		}
	})
	aliceID.Store(f.alice.ID)
	s := newSigner(t)
	f.addKey(t, s, f.alice, "laptop")
	c, err := f.dial(t, User, ssh.PublicKeys(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wantRefused(t, "out of the allowed ranges", uploadPack(t, c, "/prj/one.git"), "may not be used from 127.0.0.1")
}

// Connections that never finish their handshake hold at most MaxHandshakes
// slots; more are closed at once, and authenticated clients get through
// again as soon as a slot frees.
func TestHandshakesAreBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxHandshakes = 1; c.HandshakeTimeout = 5 * time.Second })
	signer := newSigner(t)
	f.addKey(t, signer, f.alice, "alice")

	idle, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	// Read the server's version line: the idle connection now holds the slot.
	buf := make([]byte, 64)
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dial(t, User, ssh.PublicKeys(signer)); err == nil {
		t.Fatal("a second handshake was accepted while the only slot was held")
	}
	idle.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := f.dial(t, User, ssh.PublicKeys(signer))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no handshake once the slot was free: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHandshakesPerSourceAreBounded: once half of the handshake slots are
// taken, one client address holds at most MaxHandshakesPerSource of them,
// so that one client's idle connections take at most half and a client at
// another address still gets in; every count is given back.
func TestHandshakesPerSourceAreBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.MaxHandshakes, c.MaxHandshakesPerSource, c.HandshakeTimeout = 8, 2, 10*time.Second
	})
	signer := newSigner(t)
	f.addKey(t, signer, f.alice, "alice")
	var idle []net.Conn
	dialFrom := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		return c
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// held reports whether the server keeps an idle connection (it sends its
	// version line) or closes it at once.
	held := func(c net.Conn) bool {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 64))
		return n > 0 && err == nil
	}
	count := func(from string, n int) (kept int) {
		t.Helper()
		for range n {
			if held(dialFrom(from)) {
				kept++
			}
		}
		return kept
	}
	// Below half of the slots, one address takes what it asks for; then
	// its further connections are closed.
	if kept := count("127.0.0.1", 6); kept != 4 {
		t.Errorf("127.0.0.1 kept %d of 6 idle connections, want 4 (half of the 8 slots)", kept)
	}
	// With half taken, another address gets MaxHandshakesPerSource.
	if kept := count("127.0.0.2", 3); kept != 2 {
		t.Errorf("127.0.0.2 kept %d of 3 idle connections, want 2", kept)
	}
	// A third address still authenticates.
	login := func(from string) error {
		nc := dialFrom(from)
		sc, chans, reqs, err := ssh.NewClientConn(nc, f.addr, &ssh.ClientConfig{
			User: User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(f.host),
		})
		if err != nil {
			return err
		}
		return ssh.NewClient(sc, chans, reqs).Close()
	}
	if err := login("127.0.0.3"); err != nil {
		t.Errorf("a client at a third address was refused: %v", err)
	}
	// The server counts down just after the client is through.
	waitSources := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for handshakeSources(f.srv) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d addresses counted %s, want %d", handshakeSources(f.srv), what, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSources(2, "with idle connections held from two and a login done")
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	waitSources(0, "after every connection ended")
	// A quiet server takes a burst from one address (many clients behind
	// one NAT) past MaxHandshakesPerSource.
	if kept := count("127.0.0.1", 4); kept != 4 {
		t.Errorf("on a quiet server 127.0.0.1 kept %d of 4 idle connections, want 4", kept)
	}
}

// TestConnectionsPerKeyAreBounded: with a bound of two connections per key,
// a third is refused with a message while the others work, and a key's
// connections do not count against another key.
func TestConnectionsPerKeyAreBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxConnsPerKey = 2 })
	alice, other := newSigner(t), newSigner(t)
	f.addKey(t, alice, f.alice, "alice")
	f.addKey(t, other, f.alice, "alice's other")
	var held []*ssh.Client
	for range 2 {
		c, err := f.dial(t, User, ssh.PublicKeys(alice))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A command on each shows the server has counted both.
	for _, c := range held {
		wantRead(t, "a connection within the bound", uploadPack(t, c, "/prj/one.git"))
	}
	third, err := f.dial(t, User, ssh.PublicKeys(alice))
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "a third connection with one key", uploadPack(t, third, "/prj/one.git"), "already has 2 connections open")
	third.Close()
	wantRead(t, "a held connection", uploadPack(t, held[0], "/prj/one.git"))
	c, err := f.dial(t, User, ssh.PublicKeys(other))
	if err != nil {
		t.Fatal(err)
	}
	wantRead(t, "another key", uploadPack(t, c, "/prj/one.git"))
	c.Close()

	// Closing one frees its place.
	held[1].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := f.dial(t, User, ssh.PublicKeys(alice))
		if err != nil {
			t.Fatal(err)
		}
		r := uploadPack(t, c, "/prj/one.git")
		c.Close()
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after a connection closed: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	held[0].Close()
}

// TestConnectionsPerUserAreBounded: a user's keys together hold at most
// MaxConnsPerUser connections, so that adding keys does not multiply the
// bound per key; another user's keys and access keys do not count.
func TestConnectionsPerUserAreBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxConnsPerKey, c.MaxConnsPerUser = 2, 3 })
	first, second, bobs, ci := newSigner(t), newSigner(t), newSigner(t), newSigner(t)
	f.addKey(t, first, f.alice, "alice")
	f.addKey(t, second, f.alice, "alice's other")
	f.addKey(t, bobs, f.bob, "bob")
	f.addKey(t, ci, nil, "ci", store.AccessKeyGrant{ProjectID: f.prj.ID, RepoID: f.one.ID, Permission: latch.RepoRead})
	hold := func(s ssh.Signer) *ssh.Client {
		t.Helper()
		c, err := f.dial(t, User, ssh.PublicKeys(s))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []*ssh.Client
	for _, s := range []ssh.Signer{first, first, second} {
		c := hold(s)
		wantRead(t, "a connection within the bounds", uploadPack(t, c, "/prj/one.git"))
		held = append(held, c)
	}
	over := hold(second)
	wantRefused(t, "a fourth connection of alice's keys", uploadPack(t, over, "/prj/one.git"), "your SSH keys already have 3 connections open")
	over.Close()

	// bob's key does not count with alice's: his command is refused for
	// want of permission, not for the bound.
	wantRefused(t, "bob's key", uploadPack(t, hold(bobs), "/prj/one.git"), "not found")
	wantRead(t, "an access key", uploadPack(t, hold(ci), "/prj/one.git"))

	// Closing one of alice's connections frees a place for either key.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := hold(second)
		r := uploadPack(t, c, "/prj/one.git")
		c.Close()
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after a connection closed: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSessionsPerConnAreBounded: one connection holds at most
// MaxSessionsPerConn session channels at once, so that it cannot run git
// commands past the bounds on connections; one more is rejected with
// ResourceShortage and a message, and closing a session frees its place.
func TestSessionsPerConnAreBounded(t *testing.T) {
	if f := newFixture(t); f.srv.cfg.MaxSessionsPerConn != 10 {
		t.Errorf("default MaxSessionsPerConn = %d, want 10", f.srv.cfg.MaxSessionsPerConn)
	}
	f := newFixture(t, func(c *Config) { c.MaxSessionsPerConn = 2 })
	s := newSigner(t)
	f.addKey(t, s, f.alice, "laptop")
	c, err := f.dial(t, User, ssh.PublicKeys(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One session runs git, waiting for its input; the other only is open.
	running, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := running.StdinPipe()
	if err := running.Start("git-upload-pack '/prj/one.git'"); err != nil {
		t.Fatal(err)
	}
	idle, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.NewSession()
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ResourceShortage ||
		oce.Message != "latch: at most 2 sessions at once on one connection" {
		t.Fatalf("a third session: %v; want ResourceShortage with a message", err)
	}

	// A finished command frees its place.
	stdin.Write([]byte("0000"))
	stdin.Close()
	if err := running.Wait(); err != nil {
		t.Fatalf("the running command: %v", err)
	}
	// reopen opens a session, waiting for the server to let go of one.
	reopen := func(what string) *ssh.Session {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			sess, err := c.NewSession()
			if err == nil {
				return sess
			}
			if time.Now().After(deadline) {
				t.Fatalf("still rejected after %s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	held := reopen("a command ended")
	// The idle session counts until it is closed.
	if _, err := c.NewSession(); err == nil {
		t.Fatal("a third session was opened while the idle one stays open")
	}
	idle.Close()
	held.Close()
	sess := reopen("the idle session closed")
	defer sess.Close()
	var out bytes.Buffer
	sess.Stdout, sess.Stdin = &out, strings.NewReader("0000")
	if err := sess.Run("git-upload-pack '/prj/one.git'"); err != nil || !strings.Contains(out.String(), "capabilities") && !strings.HasPrefix(out.String(), "0000") {
		t.Errorf("a command in a freed place: %v, stdout %q", err, out.String())
	}
}

// handshakeSources is how many client addresses have connections being
// authenticated.
func handshakeSources(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.perSource)
}
