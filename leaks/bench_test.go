package leaks_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchhq/latch/gitrepo"
)

// Push benchmark input: a push request (ref update and pack) creating main
// with 50 MiB of new blobs in 5 commits, kept under os.TempDir. "random" is
// 50 files of 1 MiB of random bytes (incompressible, what gitrepo's own
// benchmarks push); "text" is 500 files of 100 KiB of source-like random
// text, which the scanner reads as text. Bump pushBenchVersion when the
// recipe changes.
const (
	pushBenchVersion = "v1"
	pushBenchBytes   = 50 << 20
)

var pushBenchPacks sync.Map // kind -> func() (string, int64, error)

func pushBenchPack(b *testing.B, kind string) (string, int64) {
	b.Helper()
	f, _ := pushBenchPacks.LoadOrStore(kind, sync.OnceValues(func() (string, error) { return makePushPack(kind) }))
	path, err := f.(func() (string, error))()
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, st.Size()
}

func makePushPack(kind string) (string, error) {
	base := filepath.Join(os.TempDir(), "latch-leaks-bench-"+pushBenchVersion+"-"+kind)
	path := filepath.Join(base, "push.req")
	if _, err := os.Stat(filepath.Join(base, "ok")); err == nil {
		return path, nil
	}
	os.RemoveAll(base)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	repo := filepath.Join(base, "src.git")
	if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", repo).CombinedOutput(); err != nil {
		return "", fmt.Errorf("init: %v %s", err, out)
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
	rng := rand.New(rand.NewChaCha8([32]byte{'l', 'e', 'a', 'k', 's'}))
	files, size := 50, 1<<20
	if kind == "text" {
		files, size = 500, 100<<10
	}
	data := make([]byte, size)
	for i := 1; i <= files; i++ {
		fillBlob(rng, data, kind)
		fmt.Fprintf(w, "blob\nmark :%d\ndata %d\n", i, len(data))
		w.Write(data)
		w.WriteString("\n")
	}
	const commits = 5
	per := files / commits
	for c := 0; c < commits; c++ {
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\ndata 7\ncommit%d\n",
			100000+c, 1700000000+c, c)
		if c > 0 {
			fmt.Fprintf(w, "from :%d\n", 100000+c-1)
		}
		for i := c*per + 1; i <= (c+1)*per; i++ {
			fmt.Fprintf(w, "M 100644 :%d dir%d/file%03d.txt\n", i, c, i)
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("fast-import: %v %s", err, stderr.String())
	}
	head, err := exec.Command("git", "--git-dir="+repo, "rev-parse", "main").Output()
	if err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zero := strings.Repeat("0", 40)
	f.Write(gitrepo.PktLine(zero + " " + strings.TrimSpace(string(head)) + " refs/heads/main\x00report-status side-band-64k quiet\n"))
	f.WriteString(gitrepo.PktFlush)
	pack := exec.Command("git", "--git-dir="+repo, "pack-objects", "--all", "--stdout", "-q")
	pack.Stdin = strings.NewReader("")
	pack.Stdout = f
	if err := pack.Run(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	os.RemoveAll(repo)
	return path, os.WriteFile(filepath.Join(base, "ok"), nil, 0o644)
}

// fillBlob fills data with random bytes, or with lines of random
// identifiers and punctuation for "text".
func fillBlob(rng *rand.Rand, data []byte, kind string) {
	if kind != "text" {
		for i := 0; i+8 <= len(data); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		return
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_     (){}.,=:;\"'"
	for i := range data {
		if rng.IntN(60) == 0 {
			data[i] = '\n'
			continue
		}
		data[i] = alphabet[rng.IntN(len(alphabet))]
	}
}

// accept is a PushHandler that accepts every push: the cost of the hooks
// alone.
type accept struct{}

func (accept) PreReceive(context.Context, *gitrepo.Push) error { return nil }
func (accept) PostReceive(context.Context, *gitrepo.Push)      {}

// BenchmarkPushProtection pushes 50 MiB of new blobs through Serve (hooks
// included) with a handler that accepts everything ("hooks") and with push
// protection ("protected"). "interleaved" alternates the two in one loop
// and reports the added time as overhead-%, which the budget caps at 10.
func BenchmarkPushProtection(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		b.Run(kind, func(b *testing.B) { benchPush(b, kind) })
	}
}

// BenchmarkGitPushProtection runs a real `git push` over smart HTTP of a
// new 50 MiB repository (the same blobs, just committed: loose objects)
// into a fresh repository, alternately without and with push protection,
// and reports the added wall and CPU time: what a pusher waits for.
func BenchmarkGitPushProtection(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		b.Run(kind, func(b *testing.B) {
			e := newEnv(b)
			wt := newWorktree(b)
			rng := rand.New(rand.NewChaCha8([32]byte{'l', 'e', 'a', 'k', 's'}))
			files, size := 50, 1<<20
			if kind == "text" {
				files, size = 500, 100<<10
			}
			for i := range files {
				data := make([]byte, size)
				fillBlob(rng, data, kind)
				p := filepath.Join(wt, fmt.Sprintf("dir%d", i%5), fmt.Sprintf("file%03d.txt", i))
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			mustGit(b, wt, "add", ".")
			mustGit(b, wt, "commit", "--quiet", "-m", "50 MiB")
			run := func(h gitrepo.PushHandler) (time.Duration, time.Duration) {
				srv := newGitServer(b, h, e.alice)
				start, cpu := time.Now(), cpuTime()
				if out, err := git(wt, "push", "--quiet", srv.url, "main"); err != nil {
					b.Fatalf("push: %v\n%s", err, out)
				}
				return time.Since(start), cpuTime() - cpu
			}
			var plain, protected, plainCPU, protectedCPU time.Duration
			for b.Loop() {
				d, c := run(accept{})
				plain, plainCPU = plain+d, plainCPU+c
				d, c = run(e.svc)
				protected, protectedCPU = protected+d, protectedCPU+c
			}
			b.ReportMetric(100*(float64(protected)-float64(plain))/float64(plain), "overhead-%")
			b.ReportMetric(100*(float64(protectedCPU)-float64(plainCPU))/float64(plainCPU), "cpu-overhead-%")
			b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "hooks-ms/op")
			b.ReportMetric(float64(protected.Milliseconds())/float64(b.N), "protected-ms/op")
		})
	}
}

func benchPush(b *testing.B, kind string) {
	req, size := pushBenchPack(b, kind)
	e := newEnv(b)
	data := b.TempDir()
	hs, err := gitrepo.NewHookServer(gitrepo.HookConfig{Dir: data, Bin: hookBin, Handler: accept{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	// push returns the wall time and the CPU time (this process and its
	// children: git, the hooks) of one push.
	push := func(b *testing.B, h gitrepo.PushHandler) (time.Duration, time.Duration) {
		id++
		if err := m.Init(ctx, id); err != nil {
			b.Fatal(err)
		}
		hs.SetHandler(h)
		in, err := os.Open(req)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		start, cpu := time.Now(), cpuTime()
		err = m.Serve(ctx, gitrepo.ReceivePack, id, gitrepo.ServeOptions{Stdin: struct{ io.Reader }{in}, Stdout: &out, StatelessRPC: true, Principal: e.alice})
		d, c := time.Since(start), cpuTime()-cpu
		in.Close()
		if err != nil || !bytes.Contains(out.Bytes(), []byte("ok refs/heads/main")) {
			b.Fatalf("push: %v %q", err, out.String())
		}
		m.Remove(id)
		return d, c
	}
	for _, c := range []struct {
		name string
		h    gitrepo.PushHandler
	}{{"hooks", accept{}}, {"protected", e.svc}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			var wall, cpu time.Duration
			n := 0
			for b.Loop() {
				b.StopTimer()
				d, c := push(b, c.h)
				wall, cpu = wall+d, cpu+c
				n++
				b.StartTimer()
			}
			b.ReportMetric(float64(wall.Milliseconds())/float64(n), "push-ms/op")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(n), "cpu-ms/op")
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		var plain, protected, plainCPU, protectedCPU time.Duration
		for b.Loop() {
			d, c := push(b, accept{})
			plain, plainCPU = plain+d, plainCPU+c
			d, c = push(b, e.svc)
			protected, protectedCPU = protected+d, protectedCPU+c
		}
		b.ReportMetric(100*(float64(protected)-float64(plain))/float64(plain), "overhead-%")
		b.ReportMetric(100*(float64(protectedCPU)-float64(plainCPU))/float64(plainCPU), "cpu-overhead-%")
		b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "hooks-ms/op")
		b.ReportMetric(float64(protected.Milliseconds())/float64(b.N), "protected-ms/op")
	})
}

// cpuTime is the CPU time used so far by this process and its waited-for
// children.
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
