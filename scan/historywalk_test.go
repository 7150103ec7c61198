package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/scan/scantest"
	"github.com/latchhq/latch/token"
)

// histRepo builds a repository commit by commit with Git's plumbing, so
// that commits can have any parents and dates.
type histRepo struct {
	t    *testing.T
	dir  string
	date int
}

func newHistRepo(t *testing.T) *histRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	r := &histRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *histRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	d := fmt.Sprintf("%d +0200", 1700000000+r.date*600)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com", "GIT_COMMITTER_NAME=Ada",
		"GIT_COMMITTER_EMAIL=ada@example.com", "GIT_AUTHOR_DATE="+d, "GIT_COMMITTER_DATE="+d)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit records the working tree as a commit with parents on ref.
func (r *histRepo) commit(ref string, date int, parents ...string) string {
	r.t.Helper()
	r.date = date
	r.git("add", "-A")
	args := []string{"commit-tree", r.git("write-tree"), "-m", "c"}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	c := r.git(args...)
	r.git("update-ref", ref, c)
	return c
}

func (r *histRepo) write(path, content string, mode os.FileMode) {
	r.t.Helper()
	p := filepath.Join(r.dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	os.RemoveAll(p)
	if mode&os.ModeSymlink != 0 {
		if err := os.Symlink(content, p); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		r.t.Fatal(err)
	}
}

// introduced lists what a history walk names: blob, path and commit, in
// order.
type introduced struct{ blob, path, commit string }

// logWalk lists the blobs `git log --raw` shows first (walkLog).
func logWalk(t *testing.T, dir string) []introduced {
	t.Helper()
	g := &gitRunner{bin: "git", dir: dir}
	cmd := g.command(context.Background(), logCommand()...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []introduced
	_, _, err = walkLog(strings.NewReader(string(out)), map[string]bool{}, func(j blobJob) error {
		got = append(got, introduced{j.id, j.path, j.c.hash})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// packWalk lists the blobs walkHistory names, with trees from the packs as
// scanAll reads them.
func packWalk(t *testing.T, dir string) []introduced {
	t.Helper()
	ctx := context.Background()
	g := &gitRunner{bin: "git", dir: dir}
	packs, err := g.packs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trees := newTreeSource(g, 0)
	defer trees.close()
	for _, p := range packs {
		defer p.Close()
	}
	if fit, err := trees.readPacks(ctx, packs, 2); err != nil || !fit {
		t.Fatal(fit, err)
	}
	revs, err := g.revisions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []introduced
	_, err = walkHistory(ctx, trees, revs, func(j blobJob) error {
		got = append(got, introduced{j.id, j.path, j.c.hash})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkWalks compares the in-process walk with git log's, with the objects
// loose and then packed.
func checkWalks(t *testing.T, r *histRepo, what string) {
	t.Helper()
	want := logWalk(t, r.dir)
	if len(want) == 0 {
		t.Fatalf("%s: git log names no blobs", what)
	}
	for _, layout := range []string{"loose", "packed"} {
		if layout == "packed" {
			r.git("repack", "-q", "-adf")
		}
		if got := packWalk(t, r.dir); !slices.Equal(got, want) {
			for i := range max(len(got), len(want)) {
				var g, w introduced
				if i < len(got) {
					g = got[i]
				}
				if i < len(want) {
					w = want[i]
				}
				if g != w {
					t.Errorf("%s, %s: blob %d: got %+v, git log %+v", what, layout, i, g, w)
					break
				}
			}
			t.Fatalf("%s, %s: %d blobs named, git log names %d", what, layout, len(got), len(want))
		}
	}
}

// TestWalkHistoryCases compares walkHistory with git log on the cases its
// tree comparison could get wrong.
func TestWalkHistoryCases(t *testing.T) {
	// A user's diff.orderFile must not change which of a commit's paths
	// git log names first (the in-process walk takes the tree's order).
	order := filepath.Join(t.TempDir(), "order")
	os.WriteFile(order, []byte("z*\n"), 0o644)
	cfg := filepath.Join(t.TempDir(), "gitconfig")
	os.WriteFile(cfg, []byte("[diff]\n\torderFile = "+order+"\n"), 0o644)
	t.Setenv("GIT_CONFIG_GLOBAL", cfg)

	r := newHistRepo(t)
	r.write("a", "one\n", 0o644)
	r.write("dup", "twelve\n", 0o644)
	r.write("zdup", "twelve\n", 0o644) // one blob at two paths of a commit
	r.write("a.b", "two\n", 0o644)
	r.write("a-b/x", "three\n", 0o644)
	r.write("ab/x", "four\n", 0o644)
	r.write("link", "one\n", os.ModeSymlink) // the same blob as "a", as a symlink
	c1 := r.commit("refs/heads/main", 1)

	// A directory takes the place of a file of the same name, a symlink
	// becomes a file with the same content (a blob seen only as a link
	// before), a mode changes, and a file moves.
	os.Remove(filepath.Join(r.dir, "a"))
	r.write("a/inner", "five\n", 0o644)
	r.write("sym", "six\n", os.ModeSymlink)
	r.write("link", "one\n", 0o644)
	r.write("only-link", "eleven\n", os.ModeSymlink)
	r.write("a.b", "two\n", 0o755)
	os.Rename(filepath.Join(r.dir, "ab", "x"), filepath.Join(r.dir, "ab", "y"))
	c2 := r.commit("refs/heads/main", 2, c1)

	// A side branch, older by its dates, brings content merged later.
	r.git("read-tree", "--reset", "-u", c1)
	r.write("side/new", "seven\n", 0o644)
	r.write("six", "six\n", 0o644) // the symlink's blob as a file, first on the side branch
	s1 := r.commit("refs/heads/side", 3, c1)

	// The merge holds both sides: compared with its first parent only.
	r.git("read-tree", "--reset", "-u", c2)
	r.write("side/new", "seven\n", 0o644)
	r.write("side/merged", "eight\n", 0o644)
	r.write("only-link", "eleven\n", 0o644) // now a file: its blob is new as a file
	c3 := r.commit("refs/heads/main", 4, c2, s1)

	// Back from a directory to a file; a file emptied of content; a
	// second root commit on another ref.
	os.RemoveAll(filepath.Join(r.dir, "a"))
	r.write("a", "nine\n", 0o644)
	r.write("a.b", "", 0o644)
	r.commit("refs/heads/main", 5, c3)
	r.git("read-tree", "--empty")
	for _, e := range []string{"a", "a.b", "a-b", "ab", "link", "sym", "side", "six", "only-link"} {
		os.RemoveAll(filepath.Join(r.dir, e))
	}
	r.write("other/root", "ten\n", 0o644)
	r.write("other/copy", "three\n", 0o644)
	r.commit("refs/tags/orphan", 6)

	checkWalks(t, r, "cases")
}

// TestWalkHistoryRandom compares walkHistory with git log on random
// histories: files written, removed, made executable or symlinks, turned
// into directories and back, on several branches merged into each other,
// with content repeated across paths.
func TestWalkHistoryRandom(t *testing.T) {
	seeds := 4
	if testing.Short() {
		seeds = 1
	}
	names := []string{"a", "a.b", "a-b", "b", "a/b", "a/b.c", "a/b/c", "a/c", "d/e/f", "d/e.f", "d.e"}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		r := newHistRepo(t)
		heads := map[string]string{}
		branches := []string{"main", "b1", "b2"}
		for n := range 40 {
			br := branches[rng.IntN(len(branches))]
			var parents []string
			if h, ok := heads[br]; ok {
				r.git("read-tree", "--reset", "-u", h)
				parents = append(parents, h)
			} else if len(heads) > 0 && rng.IntN(3) > 0 {
				h := heads["main"]
				if h != "" {
					r.git("read-tree", "--reset", "-u", h)
					parents = append(parents, h)
				}
			}
			for range 1 + rng.IntN(3) {
				name := names[rng.IntN(len(names))]
				p := filepath.Join(r.dir, name)
				switch op := rng.IntN(10); {
				case op < 5:
					// Remove whatever is in the way, file or directory,
					// up the path.
					for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
						if fi, err := os.Lstat(filepath.Join(r.dir, d)); err == nil && !fi.IsDir() {
							os.Remove(filepath.Join(r.dir, d))
						}
					}
					mode := os.FileMode(0o644)
					switch rng.IntN(6) {
					case 0:
						mode = 0o755
					case 1:
						mode = os.ModeSymlink
					}
					r.write(name, fmt.Sprintf("content %d\n", rng.IntN(12)), mode)
				case op < 8:
					os.RemoveAll(p)
				default:
					if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
						os.Chmod(p, fi.Mode()^0o111)
					}
				}
			}
			if len(heads) > 1 && rng.IntN(4) == 0 {
				for _, other := range branches {
					if h, ok := heads[other]; ok && other != br && !slices.Contains(parents, h) {
						parents = append(parents, h)
						break
					}
				}
			}
			// Dates go back now and then, as on branches made elsewhere.
			heads[br] = r.commit("refs/heads/"+br, n+rng.IntN(5)-2, parents...)
		}
		checkWalks(t, r, fmt.Sprintf("seed %d", seed))
	}
}

// TestTreeSameCraftedSuffix compares two crafted trees whose common suffix
// does not start at an entry boundary of both: the new tree's last entry,
// "u", lies within the old tree's "1 100644 u" entry, and must not be taken
// for it.
func TestTreeSameCraftedSuffix(t *testing.T) {
	id := func(b byte, tail string) string { return strings.Repeat(string(rune(b)), 20-len(tail)) + tail }
	u := "100644 u\x00" + id('U', "")
	v := "100644 v\x00" + id('V', "1 ") // the ID ends in "1 "
	n := &tree{data: []byte(v + u)}
	o := &tree{data: []byte("40000 t\x00" + id('T', "") + "1 " + u)} // "1 100644 u", mode 1
	if _, _, _, err := emptyTree.same(o, 20); err != nil {
		t.Fatal(err)
	}
	from, nto, oto, err := o.same(n, 20)
	if err != nil {
		t.Fatal(err)
	}
	if o.len() != 2 || n.len() != 2 {
		t.Fatalf("entries: old %d, new %d", o.len(), n.len())
	}
	if from != 0 || nto != 2 || oto != 2 {
		t.Fatalf("entries to compare: new [%d, %d), old [%d, %d); want both [0, 2)", from, nto, from, oto)
	}
	// Versions that do share the suffix at a boundary skip it.
	n2 := &tree{data: []byte("100644 s\x00" + id('S', "") + u)}
	o2 := &tree{data: []byte(v + u)}
	emptyTree.same(o2, 20)
	if from, nto, oto, _ := o2.same(n2, 20); from != 0 || nto != 1 || oto != 1 {
		t.Fatalf("shared last entry: new [%d, %d), old [%d, %d); want both [0, 1)", from, nto, from, oto)
	}
}

// TestScanHistoryTreesOverBound scans a history whose trees do not fit in
// maxTreeBytes: git log walks it instead, with the same report.
func TestScanHistoryTreesOverBound(t *testing.T) {
	r := newHistRepo(t)
	g := scantest.New(21)
	first, second := g.Latch(token.Personal), g.Latch(token.API)
	r.write("conf/app.env", "TOKEN="+first+"\n", 0o644)
	r.write("README", "hello\n", 0o644)
	c1 := r.commit("refs/heads/main", 1)
	r.write("conf/app.env", "TOKEN=${TOKEN}\n", 0o644)
	r.write("src/client.py", "API = '"+second+"'\n", 0o644)
	r.commit("refs/heads/main", 2, c1)
	r.git("repack", "-q", "-adf")

	scanWith := func(bound int64) *Result {
		t.Helper()
		defer func(n int64) { maxTreeBytes = n }(maxTreeBytes)
		maxTreeBytes = bound
		res, err := NewScanner().ScanHistory(context.Background(), r.dir, HistoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	in, logged := scanWith(1<<30), scanWith(100)
	if len(in.Findings) != 2 || in.Stats.Commits != 2 {
		t.Fatalf("in process: %d findings, stats %+v", len(in.Findings), in.Stats)
	}
	if in.Stats != logged.Stats || len(logged.Findings) != len(in.Findings) {
		t.Fatalf("stats %+v, %d findings; through git log %+v, %d", in.Stats, len(in.Findings), logged.Stats, len(logged.Findings))
	}
	for i, f := range in.Findings {
		l := logged.Findings[i]
		if f.Secret != l.Secret || f.Path != l.Path || *f.Origin != *l.Origin || f.Origin.Author != "Ada" {
			t.Errorf("finding %d: %+v %+v; through git log %+v %+v", i, f, f.Origin, l, l.Origin)
		}
	}
}

// TestTreeEntryLongMode reads a mode written with a leading zero, which Git
// accepts (any number of octal digits).
func TestTreeEntryLongMode(t *testing.T) {
	tr := &tree{data: []byte("00100644 x\x00" + strings.Repeat("i", 20))}
	if _, _, _, err := emptyTree.same(tr, 20); err != nil {
		t.Fatal(err)
	}
	e, err := tr.entry(0, 20)
	if err != nil || !e.isRegular() || string(e.name) != "x" {
		t.Fatalf("entry %+v, %v", e, err)
	}
}

// TestScanHistoryReplacedTree scans a history whose tree is replaced (git
// replace): reported as git log shows it, the replacement's content.
func TestScanHistoryReplacedTree(t *testing.T) {
	r := newHistRepo(t)
	g := scantest.New(22)
	shown, hidden := g.Latch(token.Personal), g.Latch(token.API)
	r.write("a.env", "TOKEN="+shown+"\n", 0o644)
	r.git("add", "-A")
	replacement := r.git("write-tree")
	os.Remove(filepath.Join(r.dir, "a.env"))
	r.write("b.env", "TOKEN="+hidden+"\n", 0o644)
	c := r.commit("refs/heads/main", 1)
	r.git("replace", r.git("rev-parse", c+"^{tree}"), replacement)
	r.git("repack", "-q", "-adf")

	res, err := NewScanner().ScanHistory(context.Background(), r.dir, HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Secret != shown || res.Findings[0].Path != "a.env" {
		t.Fatalf("findings %+v", res.Findings)
	}
}

// FuzzTreeSame checks tree.same on arbitrary pairs of trees, the newer made
// from the older by cutting some bytes and inserting others: it indexes the
// newer as a full parse would, fails exactly when that parse fails, and
// every entry it leaves out of the comparison is, byte for byte, the older
// tree's entry at the same place from the start or from the end.
func FuzzTreeSame(f *testing.F) {
	id := strings.Repeat("i", 20)
	entries := "100644 a\x00" + id + "40000 dir\x00" + id + "100755 x y\x00" + id + "120000 z\x00" + id
	f.Add([]byte(entries), uint16(30), []byte("100644 b\x00"+id), uint8(0))
	f.Add([]byte(entries), uint16(40), []byte("1 "), uint8(3))
	f.Add([]byte("40000 t\x00"+strings.Repeat("T", 20)+"1 100644 u\x00"+id), uint16(0),
		[]byte("100644 v\x00"+strings.Repeat("V", 18)+"1 100644 u\x00"+id), uint8(60))
	f.Add([]byte(entries), uint16(0), []byte{}, uint8(255))
	f.Fuzz(func(t *testing.T, oldData []byte, cut uint16, insert []byte, drop uint8) {
		const hs = 20
		c := min(int(cut), len(oldData))
		newData := append(append(slices.Clip(oldData[:c]), insert...), oldData[min(c+int(drop), len(oldData)):]...)
		old := &tree{data: oldData}
		if _, _, _, err := emptyTree.same(old, hs); err != nil {
			if _, ok := parseTreeOffsets(oldData, hs); ok {
				t.Fatalf("old tree refused, but parses: %v", err)
			}
			return
		}
		if want, _ := parseTreeOffsets(oldData, hs); !slices.Equal(old.offs, want) {
			t.Fatalf("old tree indexed at %v, parses at %v", old.offs, want)
		}
		n := &tree{data: newData}
		from, nto, oto, err := old.same(n, hs)
		want, ok := parseTreeOffsets(newData, hs)
		if (err == nil) != ok {
			t.Fatalf("same: %v; a full parse succeeds: %v", err, ok)
		}
		if !ok {
			return
		}
		if !slices.Equal(n.offs, want) {
			t.Fatalf("new tree indexed at %v, parses at %v", n.offs, want)
		}
		if from > nto || from > oto || n.len()-nto != old.len()-oto {
			t.Fatalf("ranges new [%d, %d) of %d, old [%d, %d) of %d", from, nto, n.len(), from, oto, old.len())
		}
		for i := range from {
			if !bytes.Equal(n.raw(i), old.raw(i)) {
				t.Fatalf("entry %d skipped but differs", i)
			}
		}
		for k := range n.len() - nto {
			if !bytes.Equal(n.raw(nto+k), old.raw(oto+k)) {
				t.Fatalf("entry %d (old %d) skipped but differs", nto+k, oto+k)
			}
		}
	})
}

// parseTreeOffsets parses a tree's entry offsets the plain way, as
// tree.same must find them.
func parseTreeOffsets(d []byte, hashSize int) ([]int32, bool) {
	var offs []int32
	i := 0
	for i < len(d) {
		offs = append(offs, int32(i))
		nul := bytes.IndexByte(d[i:], 0)
		if nul < 3 || i+nul+1+hashSize > len(d) {
			return nil, false
		}
		i += nul + 1 + hashSize
	}
	return append(offs, int32(len(d))), true
}

// editHistory returns a repacked repository of n commits: the first adds
// 120 Go files, each later one edits a line in one or two of them, and every
// 300th from the 150th plants a latch token in each file it edits. It skips
// tb without git.
func editHistory(tb testing.TB, n int) string {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git not installed")
	}
	dir := tb.TempDir()
	cmd := exec.Command("git", "init", "-q", "-b", "main", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git init: %v %s", err, out)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	g := scantest.New(23)
	files := make([][]string, 120)
	for i := range files {
		for j := range 80 {
			files[i] = append(files[i], fmt.Sprintf("\tx%d := compute(%d, %#x) // line %d", j, i, rng.Uint64(), j))
		}
	}
	var stream strings.Builder
	data := func(s string) { fmt.Fprintf(&stream, "data %d\n%s\n", len(s), s) }
	for c := range n {
		fmt.Fprintf(&stream, "commit refs/heads/main\ncommitter Ada <ada@example.com> %d +0000\n", 1700000000+c*60)
		data(fmt.Sprintf("commit %d", c))
		changed := []int{rng.IntN(len(files)), rng.IntN(len(files))}
		if c == 0 {
			changed = nil
			for i := range files {
				changed = append(changed, i)
			}
		}
		for _, f := range changed {
			line := fmt.Sprintf("\tv := %#x // commit %d", rng.Uint64(), c)
			if c%300 == 150 {
				line = "\ttoken := \"" + g.Latch(token.Personal) + "\""
			}
			files[f][rng.IntN(len(files[f]))] = line
			fmt.Fprintf(&stream, "M 100644 inline pkg%d/file%d.go\n", f%30, f)
			data("package p\n\nfunc f() {\n" + strings.Join(files[f], "\n") + "\n}\n")
		}
	}
	for _, args := range [][]string{{"fast-import", "--quiet"}, {"repack", "-q", "-adf"}} {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Stdin = strings.NewReader(stream.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dir
}

// TestScanHistoryCancel cancels history scans under way, walked in process
// and by git log: each returns the context's error at once and leaves no git
// process behind.
func TestScanHistoryCancel(t *testing.T) {
	dir := editHistory(t, 1500)
	for _, walk := range []struct {
		name  string
		bound int64
	}{{"in-process", maxTreeBytes}, {"git-log", 0}} {
		t.Run(walk.name, func(t *testing.T) {
			defer func(n int64) { maxTreeBytes = n }(maxTreeBytes)
			maxTreeBytes = walk.bound
			// Whole, the scan finds its tokens: what is cancelled below is
			// a scan that would have succeeded.
			res, err := NewScanner().ScanHistory(context.Background(), dir, HistoryOptions{})
			if err != nil || len(res.Findings) != 10 {
				t.Fatalf("uncancelled: %v, %d findings", err, len(res.Findings))
			}
			for _, after := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
				ctx, cancel := context.WithCancel(context.Background())
				if after == 0 {
					cancel()
				} else {
					time.AfterFunc(after, cancel)
				}
				start := time.Now()
				res, err := NewScanner().ScanHistory(ctx, dir, HistoryOptions{})
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled after %v: %v (%v findings), want context.Canceled", after, err, res != nil)
				}
				// Generous: it is the order of magnitude that matters, on a
				// busy machine (a whole scan takes ~100 ms here).
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("cancelled after %v: returned after %v", after, d)
				}
			}
			if kids := gitChildren(t); len(kids) > 0 {
				t.Errorf("git processes left after cancelled scans: %v", kids)
			}
		})
	}
}

// gitChildren lists this process's child processes that are running git,
// from /proc (every thread's children).
func gitChildren(t *testing.T) []string {
	t.Helper()
	lists, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil || len(lists) == 0 {
		t.Fatalf("cannot list child processes: %v", err)
	}
	var kids []string
	for _, l := range lists {
		pids, err := os.ReadFile(l)
		if err != nil {
			continue // the thread ended
		}
		for _, pid := range strings.Fields(string(pids)) {
			if comm, err := os.ReadFile("/proc/" + pid + "/comm"); err == nil && strings.Contains(string(comm), "git") {
				kids = append(kids, pid+" "+strings.TrimSpace(string(comm)))
			}
		}
	}
	return kids
}

// BenchmarkScanHistory scans a repacked history of 3,000 commits that each
// edit a few lines of one to three of 120 files in 30 directories (the
// shape where every commit brings little new text), walked in process and,
// side by side, by git log (the walk used when the trees do not fit).
func BenchmarkScanHistory(b *testing.B) {
	dir := editHistory(b, 3000)
	for _, walk := range []struct {
		name  string
		bound int64
	}{{"in-process", maxTreeBytes}, {"git-log", 0}} {
		b.Run(walk.name, func(b *testing.B) {
			defer func(n int64) { maxTreeBytes = n }(maxTreeBytes)
			maxTreeBytes = walk.bound
			for b.Loop() {
				res, err := NewScanner().ScanHistory(context.Background(), dir, HistoryOptions{})
				if err != nil || len(res.Findings) != 20 || res.Stats.Commits != 3000 {
					b.Fatalf("%v: %d findings, %+v", err, len(res.Findings), res.Stats)
				}
				b.SetBytes(res.Stats.Bytes)
			}
		})
	}
}
