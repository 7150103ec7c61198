package hookcmd_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

var latchBin string

func TestMain(m *testing.M) {
	gittest.SetupEnv()
	dir, err := os.MkdirTemp("", "hookcmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	latchBin, err = gittest.BuildLatch(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runHook runs `latch hook NAME` with only env as its environment.
func runHook(t *testing.T, name, stdin string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(latchBin, "hook", name)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		}
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestHookOutsideLatch(t *testing.T) {
	// LATCH_TEST_FAIL_PRERUN makes the root command's persistent pre-run
	// fail: the hook must not run it.
	code, out := runHook(t, "pre-receive", "", "LATCH_TEST_FAIL_PRERUN=1")
	if code != 1 || !strings.Contains(out, "did not come through latch") || strings.Contains(out, "pre-run") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if code, out := runHook(t, "post-receive", "", "LATCH_HOOK_SOCKET=/nonexistent/sock", "LATCH_PUSH_ID=x"); code != 1 || !strings.Contains(out, "cannot reach the latch server") {
		t.Fatalf("server down: exit %d: %s", code, out)
	}
}

func TestHookUnknownPush(t *testing.T) {
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: t.TempDir(), Bin: latchBin, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	line := strings.Repeat("0", 40) + " " + strings.Repeat("1", 40) + " refs/heads/main\n"
	code, out := runHook(t, "pre-receive", line, "LATCH_HOOK_SOCKET="+hs.SocketPath(), "LATCH_PUSH_ID=forged")
	if code != 1 || !strings.Contains(out, "does not know this push") {
		t.Fatalf("forged push id: exit %d: %s", code, out)
	}
	code, out = runHook(t, "pre-receive", "only two\n", "LATCH_HOOK_SOCKET="+hs.SocketPath(), "LATCH_PUSH_ID=forged")
	if code != 1 || !strings.Contains(out, "malformed input") {
		t.Fatalf("malformed input: exit %d: %s", code, out)
	}
}

type handler struct {
	pre  func(*gitrepo.Push) error
	post chan *gitrepo.Push
}

func (h *handler) PreReceive(_ context.Context, p *gitrepo.Push) error { return h.pre(p) }
func (h *handler) PostReceive(_ context.Context, p *gitrepo.Push)      { h.post <- p }

// TestHookPush drives the hook through a real push over smart HTTP.
func TestHookPush(t *testing.T) {
	data := t.TempDir()
	h := &handler{post: make(chan *gitrepo.Push, 10)}
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin, Handler: h, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	m, err := gitrepo.NewManager(filepath.Join(data, "repositories"), hs)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	p := &latch.Principal{User: &latch.User{ID: 1, Name: "bob", Active: true}}
	srv := httptest.NewServer(gittest.Handler(m, 3, p, t.Logf))
	defer srv.Close()
	url := srv.URL + "/scm/p/r.git"

	// Refuse pushes touching refs/heads/protected; the whole push fails.
	h.pre = func(p *gitrepo.Push) error {
		for _, u := range p.Updates {
			if u.Ref == "refs/heads/protected" {
				return gitrepo.Message("refs/heads/protected is protected", "ask an admin")
			}
		}
		return nil
	}
	wt := gittest.NewWorktree(t)
	c := gittest.Commit(t, wt, map[string][]byte{"x": []byte("x")}, "x")
	start := time.Now()
	r := gittest.Run(wt, nil, "push", "--atomic", url, "main", "main:protected")
	if r.Err == nil || !strings.Contains(r.Stderr, "remote: refs/heads/protected is protected") || !strings.Contains(r.Stderr, "remote: ask an admin") {
		t.Fatalf("refused push: %v\n%s", r.Err, r.Stderr)
	}
	if r := gittest.Run("", nil, "--git-dir="+m.Path(3), "rev-parse", "--verify", "--quiet", "main"); r.Err == nil {
		t.Fatal("main updated by a refused push")
	}
	r = gittest.Run(wt, nil, "push", "-o", "topic=x", url, "main")
	if r.Err != nil {
		t.Fatal(r.Err, r.Stderr)
	}
	t.Logf("two pushes through the hooks in %v", time.Since(start))
	select {
	case got := <-h.post:
		if got.Principal != p || got.RepoID != 3 || len(got.Updates) != 1 || got.Updates[0].New != c || got.Options[0] != "topic=x" {
			t.Fatalf("post-receive push: %+v", got)
		}
	default:
		t.Fatal("post-receive did not run")
	}
}

var quiet = slog.New(slog.DiscardHandler)
