package e2e

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procStatus returns a memory field of /proc/pid/status (VmRSS: resident
// now, VmHWM: peak resident), in bytes.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// peakRSS returns the peak resident set size of process pid since the last
// call, and resets the peak (writing 5 to clear_refs sets VmHWM to VmRSS).
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	peak := procStatus(t, pid, "VmHWM")
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	return peak
}

// BenchmarkLargePackMemory measures how much latch's resident memory grows
// while it receives and then serves a large pack (DESIGN.md: less than 32 MB
// for a 1 GB pack: packs are streamed, never held whole). It needs
// LATCH_BENCH_LARGE=1 and moves LATCH_PACK_MB (default 1024) twice.
//
//	LATCH_BENCH_LARGE=1 go test ./e2e -run '^$' -bench LargePackMemory -benchtime 1x -timeout 60m
func BenchmarkLargePackMemory(b *testing.B) {
	if os.Getenv("LATCH_BENCH_LARGE") != "1" {
		b.Skip("set LATCH_BENCH_LARGE=1 to move a 1 GB pack through latch")
	}
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("LATCH_PACK_MB")); err == nil && v > 0 {
		mb = v
	}
	s := startServer(b, WithoutSSH())
	s.createProject(b, "MEM", "Memory")
	s.createRepo(b, "MEM", "big")
	g := newGit(b)
	dir := g.initRepo(b)
	for i := range mb / 16 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("blob-%03d.bin", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, 16<<20); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	long := func(dir string, args ...string) {
		// No timeout: a gigabyte takes its time on a busy machine.
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, g.env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v: %s", args[0], err, out)
		}
	}
	long(dir, "add", ".")
	long(dir, "commit", "-q", "-m", "big")
	url := s.gitURLAs("MEM", "big", "admin", s.AdminPassword)
	pid := s.cmd.Process.Pid

	peakRSS(b, pid) // reset the peak
	base := procStatus(b, pid, "VmRSS")
	b.ResetTimer()
	long(dir, "push", "-q", url, "HEAD:main")
	push := peakRSS(b, pid)
	long("", "clone", "-q", "--bare", url, filepath.Join(b.TempDir(), "clone"))
	fetch := peakRSS(b, pid)
	b.StopTimer()
	b.ReportMetric(float64(push-base)/(1<<20), "MB-growth-receiving")
	b.ReportMetric(float64(fetch-base)/(1<<20), "MB-growth-serving")
	b.Logf("pack of %d MB: resident %d MB before, peak %d MB receiving (+%d MB), peak %d MB serving (+%d MB)",
		mb, base>>20, push>>20, (push-base)>>20, fetch>>20, (fetch-base)>>20)
	if push-base > 32<<20 || fetch-base > 32<<20 {
		b.Errorf("resident memory grew by more than 32 MB")
	}
}
