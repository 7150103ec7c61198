package gitrepo_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

// Benchmark repository: 60 files of 1 MiB of random (incompressible) bytes
// in 3 commits, fully packed with a bitmap, as a served repository is after
// gc. Generated once and kept under os.TempDir; bump benchRepoVersion when
// its recipe changes.
const (
	benchRepoVersion = "v1"
	benchFiles       = 60
	benchFileSize    = 1 << 20
	benchCommits     = 3
)

var benchRepo = sync.OnceValues(func() (string, error) {
	base := filepath.Join(os.TempDir(), "latch-gitrepo-bench-"+benchRepoVersion)
	dir := filepath.Join(base, "repo.git")
	if _, err := os.Stat(filepath.Join(base, "ok")); err == nil {
		return dir, nil
	}
	os.RemoveAll(base)
	tmp, err := os.MkdirTemp(os.TempDir(), "latch-gitrepo-bench-tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	repo := filepath.Join(tmp, "repo.git")
	if r := gittest.Run("", nil, "init", "--quiet", "--bare", "--initial-branch=main", repo); r.Err != nil {
		return "", fmt.Errorf("init: %v %s", r.Err, r.Stderr)
	}
	cmd := exec.Command("git", "--git-dir="+repo, "fast-import", "--quiet")
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	rng := rand.NewChaCha8([32]byte{'l', 'a', 't', 'c', 'h'})
	data := make([]byte, benchFileSize)
	for i := 1; i <= benchFiles; i++ {
		rng.Read(data)
		fmt.Fprintf(w, "blob\nmark :%d\ndata %d\n", i, len(data))
		w.Write(data)
		w.WriteString("\n")
	}
	per := benchFiles / benchCommits
	for c := 0; c < benchCommits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata 7\ncommit%d\n",
			1000+c, 1700000000+c, c)
		if c > 0 {
			fmt.Fprintf(w, "from :%d\n", 1000+c-1)
		}
		for i := c*per + 1; i <= (c+1)*per; i++ {
			fmt.Fprintf(w, "M 100644 :%d dir%d/file%02d.bin\n", i, c, i)
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("fast-import: %v %s", err, stderr.String())
	}
	if r := gittest.Run("", nil, "--git-dir="+repo, "repack", "-a", "-d", "-b", "-q"); r.Err != nil {
		return "", fmt.Errorf("repack: %v %s", r.Err, r.Stderr)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(repo, dir); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(base, "ok"), nil, 0o644); err != nil {
		return "", err
	}
	return dir, nil
})

// fetchRequest is what `git clone` sends to upload-pack over smart HTTP with
// protocol v2: want every ref, done.
func fetchRequest(b *testing.B, repo string) []byte {
	b.Helper()
	var req bytes.Buffer
	for _, l := range []string{"command=fetch\n", "agent=git/2.39.5\n", "object-format=sha1\n"} {
		req.Write(gitrepo.PktLine(l))
	}
	req.WriteString("0001")
	for _, l := range []string{"thin-pack\n", "no-progress\n", "ofs-delta\n"} {
		req.Write(gitrepo.PktLine(l))
	}
	for _, oid := range strings.Fields(gittest.Git(b, "", "--git-dir="+repo, "for-each-ref", "--format=%(objectname)")) {
		req.Write(gitrepo.PktLine("want " + oid + "\n"))
	}
	req.Write(gitrepo.PktLine("done\n"))
	req.WriteString(gitrepo.PktFlush)
	return req.Bytes()
}

// cpuTime is the CPU time used so far by this process and its waited-for
// children: what a benchmark costs the machine, which contention from other
// processes changes much less than wall time.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	var d time.Duration
	for _, tv := range []syscall.Timeval{self.Utime, self.Stime, children.Utime, children.Stime} {
		d += time.Duration(tv.Nano())
	}
	return d
}

// measureCPU reports CPU milliseconds per operation; call it before the loop
// and call the returned function after it.
func measureCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}

// countWriter counts bytes (and is deliberately not an io.ReaderFrom).
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkUploadPack serves the fetch of a whole ≥60 MB repository (what a
// clone over smart HTTP asks for) through Serve, against git upload-pack run
// directly on the same request. "direct" lets git write straight to
// /dev/null; "direct-pipe" reads its output through a pipe as any server
// must; "latch" is Serve.
func BenchmarkUploadPack(b *testing.B) {
	repo, err := benchRepo()
	if err != nil {
		b.Fatal(err)
	}
	req := fetchRequest(b, repo)
	env := append(os.Environ(), "GIT_PROTOCOL=version=2")
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()

	check := func(b *testing.B, n int64) {
		if n < benchFiles*benchFileSize {
			b.Fatalf("served %d bytes, want at least %d", n, benchFiles*benchFileSize)
		}
		b.SetBytes(n)
	}
	b.Run("direct", func(b *testing.B) {
		var n int64
		done := measureCPU(b)
		for b.Loop() {
			cmd := exec.Command("git", "upload-pack", "--stateless-rpc", repo)
			cmd.Env = env
			cmd.Stdin = bytes.NewReader(req)
			cmd.Stdout = devnull
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
		done()
		cw := &countWriter{}
		cmd := exec.Command("git", "upload-pack", "--stateless-rpc", repo)
		cmd.Env, cmd.Stdin, cmd.Stdout = env, bytes.NewReader(req), cw
		cmd.Run()
		n = cw.n
		check(b, n)
	})
	b.Run("direct-pipe", func(b *testing.B) {
		var cw countWriter
		done := measureCPU(b)
		for b.Loop() {
			cw = countWriter{}
			cmd := exec.Command("git", "upload-pack", "--stateless-rpc", repo)
			cmd.Env = env
			cmd.Stdin = bytes.NewReader(req)
			cmd.Stdout = &cw
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
		done()
		check(b, cw.n)
	})
	b.Run("latch", func(b *testing.B) {
		b.ReportAllocs() // streamed: a few buffers per clone, whatever its size
		var cw countWriter
		ctx := context.Background()
		done := measureCPU(b)
		for b.Loop() {
			cw = countWriter{}
			err := gitrepo.Serve(ctx, gitrepo.UploadPack, repo, gitrepo.ServeOptions{
				Stdin: bytes.NewReader(req), Stdout: &cw, StatelessRPC: true, GitProtocol: "version=2",
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		done()
		check(b, cw.n)
	})
}

// BenchmarkClone runs a real `git clone --bare` of the same repository:
// directly (file://, git upload-pack over a pipe), over smart HTTP from git's
// own git-http-backend (CGI), and over smart HTTP through latch (httptest
// and Manager.AdvertiseRefs/Serve). The client's side of HTTP (curl,
// remote-curl) costs the same in the last two.
func BenchmarkClone(b *testing.B) {
	repo, err := benchRepo()
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	m, err := gitrepo.NewManager(filepath.Join(root, "repositories"), nil)
	if err != nil {
		b.Fatal(err)
	}
	// Serve the cached repository as repository 1 through a symlink.
	if err := os.Symlink(repo, m.Path(1)); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(gittest.Handler(m, 1, nil, b.Logf))
	defer srv.Close()

	clone := func(b *testing.B, url string) {
		done := measureCPU(b)
		for b.Loop() {
			dst := filepath.Join(root, "clone.git")
			if r := gittest.Run("", nil, "clone", "--quiet", "--bare", "--no-local", url, dst); r.Err != nil {
				b.Fatal(r.Err, r.Stderr)
			}
			b.StopTimer()
			os.RemoveAll(dst)
			b.StartTimer()
		}
		done()
		b.SetBytes(benchFiles * benchFileSize)
	}
	// The reference smart-HTTP server: git http-backend as CGI.
	execPath := gittest.Git(b, "", "--exec-path")
	backend := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo), "GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"},
	})
	defer backend.Close()

	b.Run("direct", func(b *testing.B) { clone(b, "file://"+repo) })
	b.Run("http-backend", func(b *testing.B) { clone(b, backend.URL+"/"+filepath.Base(repo)) })
	b.Run("latch-http", func(b *testing.B) { clone(b, srv.URL+"/scm/p/r.git") })
}

// BenchmarkReceivePack pushes the whole ≥60 MB repository (one pack) into a
// fresh repository through Serve, hooks included, as smart HTTP does. B/op
// shows that the pack is streamed, not held.
func BenchmarkReceivePack(b *testing.B) {
	repo, err := benchRepo()
	if err != nil {
		b.Fatal(err)
	}
	head := gittest.Git(b, "", "--git-dir="+repo, "rev-parse", "main")
	packFile := filepath.Join(b.TempDir(), "push.pack")
	f, err := os.Create(packFile)
	if err != nil {
		b.Fatal(err)
	}
	f.Write(gitrepo.PktLine(zero + " " + head + " refs/heads/main\x00report-status side-band-64k quiet\n"))
	f.WriteString(gitrepo.PktFlush)
	pack := exec.Command("git", "--git-dir="+repo, "pack-objects", "--all", "--stdout", "-q")
	pack.Stdin = strings.NewReader("")
	pack.Stdout = f
	if err := pack.Run(); err != nil {
		b.Fatal(err)
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	f.Close()

	data := b.TempDir()
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: latchBin, Handler: &recorder{}, Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer hs.Close()
	m, err := gitrepo.NewManager(filepath.Join(data, "repositories"), hs)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var id int64
	push := func(b *testing.B, serve func(dir string, in io.Reader, out io.Writer) error) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			id++
			if err := m.Init(ctx, id); err != nil {
				b.Fatal(err)
			}
			in, err := os.Open(packFile)
			if err != nil {
				b.Fatal(err)
			}
			var out bytes.Buffer
			b.StartTimer()
			err = serve(m.Path(id), struct{ io.Reader }{in}, &out)
			b.StopTimer()
			in.Close()
			if err != nil || !bytes.Contains(out.Bytes(), []byte("ok refs/heads/main")) {
				b.Fatalf("push: %v %q", err, out.String())
			}
			m.Remove(id)
			b.StartTimer()
		}
	}
	// git receive-pack alone: no hooks.
	b.Run("direct", func(b *testing.B) {
		push(b, func(dir string, in io.Reader, out io.Writer) error {
			cmd := exec.Command("git", "receive-pack", "--stateless-rpc", dir)
			cmd.Stdin, cmd.Stdout = in, out
			return cmd.Run()
		})
	})
	// Serve: both hooks run, calling the handler over the socket.
	b.Run("latch", func(b *testing.B) {
		push(b, func(dir string, in io.Reader, out io.Writer) error {
			return m.Serve(ctx, gitrepo.ReceivePack, id, gitrepo.ServeOptions{Stdin: in, Stdout: out, StatelessRPC: true})
		})
	})
}

// BenchmarkAdvertiseRefs is the git side of smart HTTP's GET info/refs, what
// every fetch and CI poll starts with: one git process per request.
func BenchmarkAdvertiseRefs(b *testing.B) {
	repo, err := benchRepo()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, proto := range []string{"", "version=2"} {
		name := "v0"
		if proto != "" {
			name = "v2"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			done := measureCPU(b)
			for b.Loop() {
				var cw countWriter
				if err := gitrepo.AdvertiseRefs(ctx, gitrepo.UploadPack, repo, gitrepo.ServeOptions{Stdout: &cw, GitProtocol: proto}); err != nil || cw.n == 0 {
					b.Fatal(err)
				}
			}
			done()
		})
	}
	// Through a Manager, v2 is answered from its cache: no process.
	root := b.TempDir()
	m, err := gitrepo.NewManager(filepath.Join(root, "repositories"), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(repo, m.Path(1)); err != nil {
		b.Fatal(err)
	}
	b.Run("v2-manager", func(b *testing.B) {
		b.ReportAllocs()
		done := measureCPU(b)
		for b.Loop() {
			var cw countWriter
			if err := m.AdvertiseRefs(ctx, gitrepo.UploadPack, 1, gitrepo.ServeOptions{Stdout: &cw, GitProtocol: "version=2"}); err != nil || cw.n == 0 {
				b.Fatal(err)
			}
		}
		done()
	})
}
