// Package gittest holds helpers for the tests of gitrepo and hookcmd: a
// clean Git environment, a stand-in latch binary running hookcmd, a minimal
// smart-HTTP handler over gitrepo, and git runners.
package gittest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/gitrepo"
)

// SetupEnv makes git in this process and its children ignore the machine's
// configuration and commit with a fixed identity. Call it from TestMain.
func SetupEnv() {
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL":   "/dev/null",
		"GIT_CONFIG_NOSYSTEM": "1",
		"GIT_AUTHOR_NAME":     "Test Author",
		"GIT_AUTHOR_EMAIL":    "author@example.com",
		"GIT_COMMITTER_NAME":  "Test Committer",
		"GIT_COMMITTER_EMAIL": "committer@example.com",
		"GIT_TERMINAL_PROMPT": "0",
		"LANG":                "C",
		"LC_ALL":              "C",
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_PROTOCOL", "GIT_TRACE", "GIT_TRACE_PACKET"} {
		os.Unsetenv(k)
	}
}

// BuildLatch builds the stand-in latch binary (hookcmd/testdata/latch) into
// dir and returns its path. The Go build cache makes repeated builds cheap.
func BuildLatch(dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("gittest: cannot locate sources")
	}
	src := filepath.Join(filepath.Dir(file), "..", "..", "hookcmd", "testdata", "latch")
	bin := filepath.Join(dir, "latch")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gittest: building latch stand-in: %v\n%s", err, out)
	}
	return bin, nil
}

// Result is the outcome of one git run.
type Result struct {
	Stdout, Stderr string
	Err            error
}

// Run runs git in dir (may be "") with extra environment entries.
func Run(dir string, env []string, args ...string) Result {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return Result{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// Git runs git in dir and fails the test if it fails; it returns the
// trimmed standard output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	r := Run(dir, nil, args...)
	if r.Err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), r.Err, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// NewWorktree makes a non-bare repository on branch main.
func NewWorktree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	Git(t, dir, "init", "--quiet", "--initial-branch=main")
	return dir
}

// Commit writes files (path -> content; nil content deletes) into the
// worktree, commits them and returns the commit id.
func Commit(t testing.TB, wt string, files map[string][]byte, msg string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(wt, filepath.FromSlash(name))
		if content == nil {
			Git(t, wt, "rm", "--quiet", "--", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		Git(t, wt, "add", "--", name)
	}
	Git(t, wt, "commit", "--quiet", "--allow-empty", "-m", msg)
	return Git(t, wt, "rev-parse", "HEAD")
}

// Handler is a minimal smart-HTTP server for one repository of m, acting as
// principal p: what latch's HTTP layer does, without authentication. Errors
// go to logf.
func Handler(m *gitrepo.Manager, id int64, p *latch.Principal, logf func(string, ...any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := r.Header.Get("Git-Protocol")
		out := flushWriter{w}
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs"):
			svc, err := gitrepo.ParseService(r.URL.Query().Get("service"))
			if err != nil || svc == gitrepo.UploadArchive {
				http.Error(w, "smart HTTP only", http.StatusForbidden)
				return
			}
			w.Header().Set("Content-Type", svc.AdvertisementType())
			w.Header().Set("Cache-Control", "no-cache")
			if err := m.AdvertiseRefs(r.Context(), svc, id, gitrepo.ServeOptions{Stdout: out, GitProtocol: proto, Principal: p}); err != nil {
				logf("info/refs: %v", err)
			}
		case r.Method == http.MethodPost:
			svc, err := gitrepo.ParseService(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
			if err != nil || svc == gitrepo.UploadArchive {
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
			w.Header().Set("Cache-Control", "no-cache")
			err = m.Serve(r.Context(), svc, id, gitrepo.ServeOptions{
				Stdin: body, Stdout: out, StatelessRPC: true, GitProtocol: proto, Principal: p,
			})
			if err != nil {
				logf("%s: %v", svc, err)
			}
		default:
			http.NotFound(w, r)
		}
	})
}

// flushWriter flushes the response after every write, so that progress and
// keep-alive packets reach the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = http.NewResponseController(f.w).Flush()
	}
	return n, err
}
