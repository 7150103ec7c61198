package e2e

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"os"
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

// TestLargePackMemory measures how much latch's resident memory grows while
// it receives and then serves a large pack (DESIGN.md: less than 32 MB for a
// 1 GB pack: packs are streamed, never held whole). It needs LATCH_BENCH_LARGE=1
// (and LATCH_PACK_MB, default 1024) as it moves a gigabyte twice.
func TestLargePackMemory(t *testing.T) {
	if os.Getenv("LATCH_BENCH_LARGE") != "1" {
		t.Skip("set LATCH_BENCH_LARGE=1 to move a 1 GB pack through latch")
	}
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("LATCH_PACK_MB")); err == nil && v > 0 {
		mb = v
	}
	s := startServer(t, WithoutSSH())
	s.createProject(t, "MEM", "Memory")
	s.createRepo(t, "MEM", "big")
	g := newGit(t)
	dir := g.initRepo(t)
	for i := range mb / 16 {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("blob-%03d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.Reader, 16<<20); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	g.must(t, dir, "add", ".")
	g.must(t, dir, "commit", "-q", "-m", "big")
	url := s.gitURLAs("MEM", "big", "admin", s.AdminPassword)
	pid := s.cmd.Process.Pid

	peakRSS(t, pid) // reset the peak
	base := procStatus(t, pid, "VmRSS")
	g.must(t, dir, "push", "-q", url, "HEAD:main")
	push := peakRSS(t, pid)
	clone := filepath.Join(t.TempDir(), "clone")
	g.must(t, "", "clone", "-q", "--bare", url, clone)
	fetch := peakRSS(t, pid)
	const budget = 32 << 20
	t.Logf("pack of %d MB: resident %d MB before, peak %d MB receiving (+%d MB), peak %d MB serving (+%d MB)",
		mb, base>>20, push>>20, (push-base)>>20, fetch>>20, (fetch-base)>>20)
	if push-base > budget || fetch-base > budget {
		t.Errorf("resident memory grew by more than 32 MB")
	}
}
