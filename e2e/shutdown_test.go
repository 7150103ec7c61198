package e2e

// Graceful shutdown end to end: SIGTERM while a large push over HTTP is in
// flight must let the push finish, close the listeners to new clients, and
// exit 0; the pushed commit must be there after a restart.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// gateProxy is a TCP proxy in front of the server that forwards client
// bytes until threshold bytes (over all connections) have gone through,
// then holds every client→server stream until release is called. It makes
// "the server is in the middle of receiving a push" a state the test can
// hold for as long as it needs, instead of a race against the push's speed.
type gateProxy struct {
	ln        net.Listener
	target    string
	threshold int64

	forwarded   atomic.Int64
	reachedOnce sync.Once
	reached     chan struct{} // closed when threshold bytes have been forwarded
	releaseOnce sync.Once
	released    chan struct{} // closed by release
	wg          sync.WaitGroup
}

func startGateProxy(t testing.TB, target string, threshold int64) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: target, threshold: threshold,
		reached: make(chan struct{}), released: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.release()
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *gateProxy) addr() string { return p.ln.Addr().String() }

func (p *gateProxy) release() { p.releaseOnce.Do(func() { close(p.released) }) }

func (p *gateProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c.(*net.TCPConn))
		}()
	}
}

func (p *gateProxy) serve(c *net.TCPConn) {
	defer c.Close()
	sc, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	s := sc.(*net.TCPConn)
	defer s.Close()
	done := make(chan struct{})
	go func() { // server → client, never held
		defer close(done)
		_, _ = io.Copy(c, s)
		_ = c.CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := c.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				break
			}
			if p.forwarded.Add(int64(n)) >= p.threshold {
				p.reachedOnce.Do(func() { close(p.reached) })
				<-p.released
			}
		}
		if rerr != nil {
			break
		}
	}
	_ = s.CloseWrite()
	<-done
}

// sigterm sends SIGTERM to the server now and marks it stopped, so that the
// harness' cleanup (Server.stop) does not signal it again nor complain that
// it exited on its own. The caller waits on s.done and checks the log.
func (s *Server) sigterm(t testing.TB) {
	t.Helper()
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped {
		t.Fatalf("sigterm: the server was already stopped")
	}
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM to latch (pid %d): %v", s.cmd.Process.Pid, err)
	}
}

// quarantines lists git's incoming object directories (quarantine of a push
// in progress) in a bare repository.
func quarantines(repoDir string) []string {
	var out []string
	for _, pat := range []string{"objects/incoming-*", "objects/tmp_objdir-incoming-*"} {
		m, _ := filepath.Glob(filepath.Join(repoDir, pat))
		out = append(out, m...)
	}
	return out
}

// listenerClosed reports whether a TCP connection to addr is refused.
func listenerClosed(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestGracefulShutdownFinishesPush(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.createProject(t, "SHUT", "Shutdown")
	repo := s.createRepo(t, "SHUT", "big")
	g := newGit(t)

	// A commit of 40 MB of random (incompressible) data in four files.
	const files, size = 4, 10 << 20
	dir := g.initRepo(t)
	for i := range files {
		b := make([]byte, size)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.must(t, dir, "-c", "core.compression=0", "add", ".")
	g.must(t, dir, "commit", "-q", "-m", "40 MB of random data")
	want := g.must(t, dir, "rev-parse", "HEAD")

	// Push through the gate: it holds the upload once 8 MB of it have
	// reached the server, i.e. while receive-pack is reading the pack.
	proxy := startGateProxy(t, s.HTTPAddr, 8<<20)
	pushURL := strings.Replace(s.gitURLAs("SHUT", "big", adminName, s.AdminPassword), s.HTTPAddr, proxy.addr(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	push := exec.CommandContext(ctx, "git", "-c", "core.compression=0", "push", pushURL, "main")
	push.Dir = dir
	push.Env = g.env
	var pushOut bytes.Buffer
	push.Stdout, push.Stderr = &pushOut, &pushOut
	started := time.Now()
	if err := push.Start(); err != nil {
		t.Fatalf("starting git push: %v", err)
	}
	pushDone := make(chan error, 1) // receives git's result once
	pushExited := make(chan struct{})
	go func() {
		err := push.Wait()
		close(pushExited)
		pushDone <- err
	}()
	defer func() { // on an early failure: let git finish before the temp dirs go
		proxy.release()
		cancel()
		<-pushExited
	}()

	select {
	case <-proxy.reached:
	case err := <-pushDone:
		t.Fatalf("git push ended (%v) before 8 MB reached the server\n%s", err, pushOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("git push did not send 8 MB within 30 s (%d bytes)\n%s", proxy.forwarded.Load(), pushOut.String())
	}
	// The server is receiving: receive-pack's quarantine exists.
	deadline := time.Now().Add(5 * time.Second)
	for len(quarantines(s.repoDir(repo.ID))) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if q := quarantines(s.repoDir(repo.ID)); len(q) == 0 {
		t.Errorf("no incoming-* quarantine under %s/objects while the pack upload is held mid-way", s.repoDir(repo.ID))
	}
	t.Logf("push in flight after %v with %d bytes forwarded: sending SIGTERM", time.Since(started).Round(time.Millisecond), proxy.forwarded.Load())

	s.sigterm(t)
	sigAt := time.Now()

	// Shutting down: both listeners close to new clients, while the held
	// push keeps the process alive.
	for _, l := range []struct{ name, addr string }{{"HTTP", s.HTTPAddr}, {"SSH", s.SSHAddr}} {
		deadline := time.Now().Add(5 * time.Second)
		for !listenerClosed(l.addr) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !listenerClosed(l.addr) {
			t.Errorf("the %s listener %s still accepts connections 5 s after SIGTERM", l.name, l.addr)
		}
	}
	select {
	case <-s.done:
		t.Fatalf("latch exited (%v) while a push was in flight\n--- push output ---\n%s\n--- server log (tail) ---\n%s",
			s.waitErr, pushOut.String(), s.logTail(40))
	case err := <-pushDone:
		proxy.release()
		t.Fatalf("git push ended (%v) while it was held at the proxy: the server cut it off\n%s\n--- server log (tail) ---\n%s",
			err, pushOut.String(), s.logTail(40))
	case <-time.After(300 * time.Millisecond):
	}

	// Let the rest of the pack through: the push must complete.
	proxy.release()
	select {
	case err := <-pushDone:
		if err != nil {
			t.Errorf("git push during shutdown failed: %v\n%s\n--- server log (tail) ---\n%s", err, pushOut.String(), s.logTail(40))
		} else {
			t.Logf("push finished %v after SIGTERM", time.Since(sigAt).Round(time.Millisecond))
		}
	case <-time.After(gitTimeout):
		t.Fatalf("git push did not finish within %v\n%s", gitTimeout, pushOut.String())
	}

	// Then the server exits 0 within the harness' limit.
	select {
	case <-s.done:
		var ee *exec.ExitError
		switch {
		case s.waitErr == nil:
		case errors.As(s.waitErr, &ee):
			t.Errorf("latch exited with %v after SIGTERM, want status 0\n%s", s.waitErr, s.logTail(40))
		default:
			t.Errorf("latch: %v", s.waitErr)
		}
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("latch did not exit within %v of the push finishing (killed)\n%s", stopTimeout, s.logTail(40))
	}
	s.checkLogForSecrets(t)
	if log := s.Log(t); !strings.Contains(log, "shutting down") || !strings.Contains(log, `"stopped"`) {
		t.Errorf("the server log does not show a clean shutdown (\"shutting down\" … \"stopped\"):\n%s", s.logTail(20))
	}
	if q := quarantines(s.repoDir(repo.ID)); len(q) != 0 {
		t.Errorf("quarantine directories left behind after the push: %v", q)
	}

	// Restarted on the same data directory, the commit is there.
	s2 := s.restart(t)
	clone := filepath.Join(t.TempDir(), "clone")
	g.must(t, "", "clone", "-q", s2.gitURLAs("SHUT", "big", adminName, s2.AdminPassword), clone)
	if got := g.must(t, clone, "rev-parse", "HEAD"); got != want {
		t.Errorf("after the restart main is %s, want the pushed %s", got, want)
	}
	for i := range files {
		orig, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("blob%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(clone, fmt.Sprintf("blob%d.bin", i)))
		if err != nil || !bytes.Equal(orig, got) {
			t.Errorf("blob%d.bin in the clone differs from the pushed file (err %v, %d bytes)", i, err, len(got))
		}
	}
	g.must(t, "", "--git-dir", s2.repoDir(repo.ID), "fsck", "--no-progress", "--no-dangling")
}
