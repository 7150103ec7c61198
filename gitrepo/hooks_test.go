package gitrepo_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

func TestHookServerSetup(t *testing.T) {
	data := t.TempDir()
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if hs.SocketPath() != filepath.Join(data, "hook.sock") || hs.HooksDir() != filepath.Join(data, "hooks") {
		t.Fatalf("socket %q, hooks %q", hs.SocketPath(), hs.HooksDir())
	}
	for _, name := range []string{"pre-receive", "post-receive"} {
		p := filepath.Join(hs.HooksDir(), name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "#!/bin/sh\n") || !strings.Contains(string(b), `exec "$LATCH_HOOK_BIN" hook `+name+"\n") {
			t.Errorf("%s:\n%s", name, b)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v", name, fi.Mode())
		}
	}
	if fi, err := os.Stat(hs.SocketPath()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}

	// A second server on a live socket is refused.
	if _, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin}); err == nil {
		t.Fatal("two hook servers on one socket")
	}
	// Tampered scripts are rewritten; the socket goes away with Close.
	pre := filepath.Join(hs.HooksDir(), "pre-receive")
	os.WriteFile(pre, []byte("#!/bin/sh\nexit 0\n"), 0o644)
	if err := hs.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(hs.SocketPath()); !os.IsNotExist(err) {
		t.Fatalf("socket after Close: %v", err)
	}
	// A socket file left by a crashed server is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: hs.SocketPath(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	hs2, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer hs2.Close()
	if b, _ := os.ReadFile(pre); !strings.Contains(string(b), "LATCH_HOOK_BIN") {
		t.Fatalf("pre-receive not rewritten:\n%s", b)
	}
	if fi, _ := os.Stat(pre); fi.Mode().Perm() != 0o755 {
		t.Fatalf("pre-receive mode %v", fi.Mode())
	}
}

func TestHookServerLongPath(t *testing.T) {
	data := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	h := &recorder{}
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin, Handler: h, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	sock := hs.SocketPath()
	if len(sock) >= 100 || !strings.HasPrefix(sock, os.TempDir()) {
		t.Fatalf("socket path %q", sock)
	}
	m, err := gitrepo.NewManager(filepath.Join(data, "repositories"), hs)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	// Push over a stream through the fallback socket.
	s := &server{m: m, hooks: hs, id: 1, dir: m.Path(1)}
	rp := sshLike(t, s, gitrepo.ReceivePack)
	wt := gittest.NewWorktree(t)
	c := gittest.Commit(t, wt, nil, "first")
	gittest.Git(t, wt, "push", "--receive-pack="+rp, s.dir, "main")
	if got := s.ref(t, "refs/heads/main"); got != c {
		t.Fatalf("main = %q", got)
	}
	if pres, posts := h.got(); len(pres) != 1 || len(posts) != 1 {
		t.Fatalf("hooks ran %d/%d times", len(pres), len(posts))
	}
	hs.Close()
	if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
		t.Fatalf("fallback socket directory left: %v", err)
	}
}

// TestHookServerPrivateSocket runs two hook servers on one data directory,
// as two latch nodes sharing it do: each gets a socket of its own, and the
// hook scripts are shared.
func TestHookServerPrivateSocket(t *testing.T) {
	data := t.TempDir()
	var socks []string
	for range 2 {
		hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin, Logger: testLogger(t), PrivateSocket: true})
		if err != nil {
			t.Fatalf("second node on one data directory: %v", err)
		}
		t.Cleanup(func() { hs.Close() })
		if hs.HooksDir() != filepath.Join(data, "hooks") || strings.HasPrefix(hs.SocketPath(), data) {
			t.Fatalf("socket %q, hooks %q", hs.SocketPath(), hs.HooksDir())
		}
		socks = append(socks, hs.SocketPath())
	}
	if socks[0] == socks[1] {
		t.Fatalf("both servers listen on %s", socks[0])
	}
}
