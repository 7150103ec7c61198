package gitrepo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

// sshLike serves svc on the server's repository to every connection on a
// Unix socket, the way the SSH layer serves a session channel: GIT_PROTOCOL
// first (one line, sent by the connect helper), then a bidirectional stream.
// It returns the command to give git as --upload-pack / --receive-pack.
func sshLike(t *testing.T, s *server, svc gitrepo.Service) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var proto []byte
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if b[0] == '\n' {
						break
					}
					proto = append(proto, b[0])
				}
				var stderr bytes.Buffer
				err := s.m.Serve(context.Background(), svc, s.id, gitrepo.ServeOptions{
					Stdin: c, Stdout: c, Stderr: &stderr, GitProtocol: string(proto), Principal: s.principal,
				})
				if err != nil {
					t.Logf("%s over a stream: %v (stderr %q)", svc, err, stderr.String())
				}
			}()
		}
	}()
	return latchBin + " connect " + sock
}

func TestServeBidirectional(t *testing.T) {
	h := &recorder{}
	s := newServer(t, h)
	uploadPack := sshLike(t, s, gitrepo.UploadPack)
	receivePack := sshLike(t, s, gitrepo.ReceivePack)
	// A path git accepts as a remote; the connect helper ignores it.
	remote := s.dir

	wt := gittest.NewWorktree(t)
	c1 := gittest.Commit(t, wt, map[string][]byte{"f": []byte("1")}, "first")
	gittest.Git(t, wt, "push", "--receive-pack="+receivePack, remote, "main")
	if got := s.ref(t, "refs/heads/main"); got != c1 {
		t.Fatalf("main = %q", got)
	}
	h.pre = func(context.Context, *gitrepo.Push) error { return gitrepo.Message("not over SSH either") }
	gittest.Commit(t, wt, nil, "second")
	r := gittest.Run(wt, nil, "push", "--receive-pack="+receivePack, remote, "main")
	if r.Err == nil || !containsLines(r.Stderr, "remote: not over SSH either") {
		t.Fatalf("refused push over a stream: %v\n%s", r.Err, r.Stderr)
	}
	if got := s.ref(t, "refs/heads/main"); got != c1 {
		t.Fatalf("main moved to %q", got)
	}
	if _, posts := h.got(); len(posts) != 1 || posts[0].Principal != s.principal {
		t.Fatalf("post-receive: %v", posts)
	}

	for _, proto := range []string{"0", "2"} {
		dst := filepath.Join(t.TempDir(), "clone")
		r := gittest.Run("", []string{"GIT_TRACE_PACKET=1"}, "-c", "protocol.version="+proto, "clone", "--quiet", "--no-local", "--upload-pack="+uploadPack, remote, dst)
		if r.Err != nil {
			t.Fatalf("v%s clone: %v\n%s", proto, r.Err, r.Stderr)
		}
		if got := gittest.Git(t, dst, "rev-parse", "HEAD"); got != c1 {
			t.Fatalf("v%s: cloned %s, want %s", proto, got, c1)
		}
		if v2 := strings.Contains(r.Stderr, "< version 2"); v2 != (proto == "2") {
			t.Errorf("protocol v%s requested, server spoke v2: %v", proto, v2)
		}
	}
}

// blockingReader never returns.
type blockingReader struct{ done chan struct{} }

func (r blockingReader) Read([]byte) (int, error) { <-r.done; return 0, io.EOF }

func TestServeCancel(t *testing.T) {
	s := newServer(t, nil)
	in := blockingReader{make(chan struct{})}
	defer close(in.done)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		errc <- s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: in, Stdout: &out})
	}()
	time.Sleep(200 * time.Millisecond) // git waits for the client
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if !bytes.Contains(out.Bytes(), []byte("0000")) {
		t.Errorf("no advertisement before cancel: %q", out.String())
	}
}

// TestServeLimit: with a limit of one, a second Serve waits for the first
// and, when the first does not end within the wait, fails with ErrBusy;
// once the first ends the next one runs.
func TestServeLimit(t *testing.T) {
	s := newServer(t, nil)
	s.m.SetLimit(1, 300*time.Millisecond)
	ctx := context.Background()
	in := blockingReader{make(chan struct{})}
	first := make(chan error, 1)
	go func() {
		first <- s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: in, Stdout: io.Discard})
	}()
	waitSlots(t, s.m, 1) // the first holds the slot, waiting for its client

	start := time.Now()
	err := s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: strings.NewReader("0000"), Stdout: io.Discard})
	if !errors.Is(err, gitrepo.ErrBusy) {
		t.Fatalf("second Serve = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("second Serve gave up after %v, before the wait", d)
	}
	// A caller that goes away while waiting stops waiting.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.m.Serve(cctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: strings.NewReader("0000"), Stdout: io.Discard}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve with a context ending while waiting = %v", err)
	}

	// A waiter gets the slot as soon as the first ends.
	waited := make(chan error, 1)
	go func() {
		var out bytes.Buffer
		waited <- s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: strings.NewReader("0000"), Stdout: &out})
	}()
	close(in.done) // the first one's client hangs up
	<-first
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("waiting Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting Serve did not run after the slot freed")
	}

	s.m.SetLimit(0, 0)
	if err := s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: strings.NewReader("0000"), Stdout: io.Discard}); err != nil {
		t.Errorf("Serve without a limit = %v", err)
	}
}

// waitSlots waits until n git process slots of m are taken.
func waitSlots(t *testing.T, m *gitrepo.Manager, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.SlotsInUse() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots in use, want %d", m.SlotsInUse(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("client gone") }

func TestServeClientGone(t *testing.T) {
	s := newServer(t, nil)
	in := blockingReader{make(chan struct{})}
	defer close(in.done)
	start := time.Now()
	err := s.m.Serve(context.Background(), gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: in, Stdout: failWriter{}})
	if err == nil || !strings.Contains(err.Error(), "client gone") {
		t.Fatalf("Serve = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Serve took %v after the client was gone", d)
	}
}

func TestServeErrors(t *testing.T) {
	m := newManager(t) // no HookServer
	ctx := context.Background()
	if err := m.Init(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := m.Serve(ctx, gitrepo.ReceivePack, 1, gitrepo.ServeOptions{StatelessRPC: true, Stdin: strings.NewReader("0000"), Stdout: &out})
	if !errors.Is(err, gitrepo.ErrNoHooks) {
		t.Fatalf("push without hooks: %v", err)
	}
	// Advertising needs no hooks, and carries the push-options capability.
	if err := m.AdvertiseRefs(ctx, gitrepo.ReceivePack, 1, gitrepo.ServeOptions{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "001f# service=git-receive-pack\n0000") || !strings.Contains(out.String(), "push-options") {
		t.Fatalf("receive-pack advertisement: %q", out.String())
	}
	// Protocol v2 upload-pack: no preamble, as git-http-backend.
	out.Reset()
	if err := m.AdvertiseRefs(ctx, gitrepo.UploadPack, 1, gitrepo.ServeOptions{Stdout: &out, GitProtocol: "version=2"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "000eversion 2\n") || !strings.Contains(out.String(), "filter") {
		t.Fatalf("v2 advertisement: %q", out.String())
	}
	// An invalid GIT_PROTOCOL is dropped: v0 with preamble.
	out.Reset()
	if err := m.AdvertiseRefs(ctx, gitrepo.UploadPack, 1, gitrepo.ServeOptions{Stdout: &out, GitProtocol: "version=2;rm -rf"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "001e# service=git-upload-pack\n0000") || strings.Contains(out.String(), "version 2") {
		t.Fatalf("advertisement with bad protocol: %q", out.String())
	}

	if err := m.Serve(ctx, gitrepo.UploadPack, 2, gitrepo.ServeOptions{Stdout: &out}); err == nil {
		t.Fatal("Serve of a missing repository succeeded")
	}
	if err := m.Serve(ctx, gitrepo.UploadArchive, 1, gitrepo.ServeOptions{StatelessRPC: true, Stdout: &out}); err == nil {
		t.Fatal("upload-archive over smart HTTP accepted")
	}
	// A protocol error is a *GitError with git's message.
	err = m.Serve(ctx, gitrepo.UploadPack, 1, gitrepo.ServeOptions{StatelessRPC: true, Stdin: strings.NewReader("garbage"), Stdout: io.Discard})
	var ge *gitrepo.GitError
	if !errors.As(err, &ge) || ge.ExitCode == 0 || ge.Stderr == "" {
		t.Fatalf("bad request: %#v", err)
	}
}

func TestUploadArchive(t *testing.T) {
	s := newServer(t, nil)
	wt := gittest.NewWorktree(t)
	gittest.Commit(t, wt, map[string][]byte{"hello.txt": []byte("hi\n")}, "first")
	gittest.Git(t, wt, "push", s.url, "main")
	// git archive --remote speaks upload-archive over a stream.
	cmd := sshLike(t, s, gitrepo.UploadArchive)
	out := filepath.Join(t.TempDir(), "a.tar")
	gittest.Git(t, "", "archive", "--exec="+cmd, "--remote="+s.dir, "--output="+out, "main")
	b, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(b, []byte("hello.txt")) {
		t.Fatalf("archive: %v, %d bytes", err, len(b))
	}
}

func TestValidGitProtocol(t *testing.T) {
	for s, want := range map[string]bool{
		"version=2":                    true,
		"version=1":                    true,
		"version=2:object-format=sha1": true,
		"version=2:flag":               true,
		"a_b.c-d=E_f.9":                true,
		"":                             false,
		"version=":                     false,
		"=2":                           false,
		"version=2:":                   false,
		"version=2;x":                  false,
		"version=2 x":                  false,
		"version=2\nX=1":               false,
		"version=2=3":                  false,
		"v=$(id)":                      false,
		strings.Repeat("a", 257):       false,
	} {
		if got := gitrepo.ValidGitProtocol(s); got != want {
			t.Errorf("ValidGitProtocol(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestPktLine(t *testing.T) {
	if got := string(gitrepo.PktLine("# service=git-upload-pack\n")); got != "001e# service=git-upload-pack\n" {
		t.Fatalf("PktLine = %q", got)
	}
	if got := string(gitrepo.ServicePreamble(gitrepo.UploadPack)); got != "001e# service=git-upload-pack\n0000" {
		t.Fatalf("ServicePreamble = %q", got)
	}
	if got := string(gitrepo.PktLine("")); got != "0004" {
		t.Fatalf("PktLine(\"\") = %q", got)
	}
	for in, want := range map[string]gitrepo.Service{"upload-pack": gitrepo.UploadPack, "git-receive-pack": gitrepo.ReceivePack, "git-upload-archive": gitrepo.UploadArchive} {
		if got, err := gitrepo.ParseService(in); err != nil || got != want {
			t.Errorf("ParseService(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := gitrepo.ParseService("git-shell"); err == nil {
		t.Error("ParseService accepted git-shell")
	}
	if got := gitrepo.UploadPack.AdvertisementType(); got != "application/x-git-upload-pack-advertisement" {
		t.Errorf("AdvertisementType = %q", got)
	}
	if got := gitrepo.ReceivePack.ResultType(); got != "application/x-git-receive-pack-result" {
		t.Errorf("ResultType = %q", got)
	}
}

func TestAdvertiseRefsV2Cache(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	if err := m.Init(ctx, 1); err != nil {
		t.Fatal(err)
	}
	advertise := func() string {
		t.Helper()
		var out bytes.Buffer
		if err := m.AdvertiseRefs(ctx, gitrepo.UploadPack, 1, gitrepo.ServeOptions{Stdout: &out, GitProtocol: "version=2"}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	var direct bytes.Buffer
	if err := gitrepo.AdvertiseRefs(ctx, gitrepo.UploadPack, m.Path(1), gitrepo.ServeOptions{Stdout: &direct, GitProtocol: "version=2"}); err != nil {
		t.Fatal(err)
	}
	first, second := advertise(), advertise()
	if first != direct.String() || second != first || !strings.Contains(first, "filter") {
		t.Fatalf("cached advertisement differs:\n%q\n%q\n%q", direct.String(), first, second)
	}
	// The advertisement follows the repository's configuration.
	gittest.Git(t, "", "--git-dir="+m.Path(1), "config", "uploadpack.allowFilter", "false")
	if got := advertise(); strings.Contains(got, "filter") {
		t.Fatalf("stale advertisement after a configuration change: %q", got)
	}
	// v0 is never cached: it lists refs.
	wt := gittest.NewWorktree(t)
	c := gittest.Commit(t, wt, nil, "x")
	gittest.Git(t, wt, "push", "--quiet", m.Path(1), "main")
	var v0 bytes.Buffer
	if err := m.AdvertiseRefs(ctx, gitrepo.UploadPack, 1, gitrepo.ServeOptions{Stdout: &v0}); err != nil || !strings.Contains(v0.String(), c) {
		t.Fatalf("v0 advertisement: %v %q", err, v0.String())
	}
}
