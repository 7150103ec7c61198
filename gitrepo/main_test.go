package gitrepo_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

// latchBin is the stand-in latch binary the hooks run.
var latchBin string

func TestMain(m *testing.M) {
	gittest.SetupEnv()
	dir, err := os.MkdirTemp("", "gitrepo-test-")
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

// recorder is a PushHandler that records pushes and refuses with pre.
type recorder struct {
	mu    sync.Mutex
	pre   func(ctx context.Context, p *gitrepo.Push) error
	post  func(ctx context.Context, p *gitrepo.Push)
	pres  []*gitrepo.Push
	posts []*gitrepo.Push
}

func (r *recorder) PreReceive(ctx context.Context, p *gitrepo.Push) error {
	r.mu.Lock()
	r.pres = append(r.pres, p)
	f := r.pre
	r.mu.Unlock()
	if f != nil {
		return f(ctx, p)
	}
	return nil
}

func (r *recorder) PostReceive(ctx context.Context, p *gitrepo.Push) {
	r.mu.Lock()
	r.posts = append(r.posts, p)
	f := r.post
	r.mu.Unlock()
	if f != nil {
		f(ctx, p)
	}
}

func (r *recorder) got() (pres, posts []*gitrepo.Push) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pres), slices.Clone(r.posts)
}

// server is one repository served over smart HTTP by httptest.
type server struct {
	m         *gitrepo.Manager
	hooks     *gitrepo.HookServer
	id        int64
	dir       string // bare repository
	url       string // clone URL
	principal *latch.Principal
}

// newServer makes a data directory with one empty repository (id 42) served
// over HTTP with handler h (nil: no handler) deciding pushes.
func newServer(t *testing.T, h gitrepo.PushHandler) *server {
	t.Helper()
	data := t.TempDir()
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin, Handler: h, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	m, err := gitrepo.NewManager(filepath.Join(data, "repositories"), hs)
	if err != nil {
		t.Fatal(err)
	}
	const id = 42
	if err := m.Init(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	p := &latch.Principal{User: &latch.User{ID: 7, Name: "alice", Active: true}, Credential: latch.CredPersonalToken, CredentialID: "tok1"}
	srv := httptest.NewServer(gittest.Handler(m, id, p, t.Logf))
	t.Cleanup(srv.Close)
	return &server{m: m, hooks: hs, id: id, dir: m.Path(id), url: srv.URL + "/scm/prj/repo.git", principal: p}
}

// ref returns the value of ref in the served repository, or "" if absent.
func (s *server) ref(t *testing.T, ref string) string {
	t.Helper()
	r := gittest.Run("", nil, "--git-dir="+s.dir, "rev-parse", "--verify", "--quiet", ref)
	if r.Err != nil {
		return ""
	}
	return r.Stdout[:len(r.Stdout)-1]
}

func execGit(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	return cmd
}

// testLogger sends log records to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
