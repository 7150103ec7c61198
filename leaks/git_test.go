package leaks_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/gitrepo"
)

// hookBin is a latch stand-in with the `hook` command, which the Git hooks
// run: gitrepo's own (gitrepo/hookcmd/testdata/latch).
var hookBin string

func TestMain(m *testing.M) {
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
		"GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
		"GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "committer@example.com",
		"LANG": "C", "LC_ALL": "C",
	} {
		os.Setenv(k, v)
	}
	dir, err := os.MkdirTemp("", "leaks-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, file, _, _ := runtime.Caller(0)
	hookBin = filepath.Join(dir, "latch")
	cmd := exec.Command("go", "build", "-o", hookBin, ".")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "gitrepo", "hookcmd", "testdata", "latch")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the hook stand-in: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gitServer is one repository served over smart HTTP, pushes decided by a
// PushHandler.
type gitServer struct {
	m   *gitrepo.Manager
	id  int64
	url string
}

func newGitServer(t testing.TB, h gitrepo.PushHandler, p *latch.Principal) *gitServer {
	t.Helper()
	data := t.TempDir()
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: hookBin, Handler: h, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	srv := httptest.NewServer(smartHTTP(m, id, p))
	t.Cleanup(srv.Close)
	return &gitServer{m: m, id: id, url: srv.URL + "/scm/prj/repo.git"}
}

// smartHTTP is a minimal smart-HTTP server for one repository, acting as p.
func smartHTTP(m *gitrepo.Manager, id int64, p *latch.Principal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := r.Header.Get("Git-Protocol")
		out := flushWriter{w}
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			svc, err := gitrepo.ParseService(r.URL.Query().Get("service"))
			if err != nil {
				http.Error(w, "smart HTTP only", http.StatusForbidden)
				return
			}
			w.Header().Set("Content-Type", svc.AdvertisementType())
			m.AdvertiseRefs(r.Context(), svc, id, gitrepo.ServeOptions{Stdout: out, GitProtocol: proto, Principal: p})
		case r.Method == http.MethodPost:
			svc, err := gitrepo.ParseService(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
			if err != nil {
				http.NotFound(w, r)
				return
			}
			var body io.Reader = r.Body
			if r.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					http.Error(w, "bad gzip body", http.StatusBadRequest)
					return
				}
				defer zr.Close()
				body = zr
			}
			w.Header().Set("Content-Type", svc.ResultType())
			m.Serve(r.Context(), svc, id, gitrepo.ServeOptions{Stdin: body, Stdout: out, StatelessRPC: true, GitProtocol: proto, Principal: p})
		default:
			http.NotFound(w, r)
		}
	})
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}

// git runs git in dir and returns its combined output and error.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := git(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func newWorktree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	mustGit(t, dir, "init", "--quiet", "--initial-branch=main")
	return dir
}

// commit writes files and commits them, returning the commit id.
func commit(t testing.TB, wt string, files map[string][]byte, msg string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(wt, filepath.FromSlash(name))
		if content == nil {
			mustGit(t, wt, "rm", "--quiet", "--", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		mustGit(t, wt, "add", "--", name)
	}
	mustGit(t, wt, "commit", "--quiet", "--allow-empty", "-m", msg)
	return mustGit(t, wt, "rev-parse", "HEAD")
}

func (s *gitServer) ref(t testing.TB, ref string) string {
	t.Helper()
	out, err := git("", "--git-dir="+s.m.Path(s.id), "rev-parse", "--verify", "--quiet", ref)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

var _ = bytes.Repeat
