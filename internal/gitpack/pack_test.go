package gitpack

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// history makes a repository whose files change a little in each of n
// commits, so that a repack stores most blobs as deltas.
func history(t testing.TB, n int) string {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	rng := rand.New(rand.NewPCG(1, 2))
	files := make([][]string, 6)
	for i := range files {
		for j := range 200 {
			files[i] = append(files[i], fmt.Sprintf("line %d of file %d: %x", j, i, rng.Uint64()))
		}
	}
	for c := range n {
		f := c % len(files)
		for range 3 {
			files[f][rng.IntN(len(files[f]))] = fmt.Sprintf("changed in commit %d: %x", c, rng.Uint64())
		}
		if c%7 == 0 {
			files[f] = append(files[f], strings.Repeat("grown ", c))
		}
		sub := filepath.Join(dir, "dir", strconv.Itoa(f%2))
		os.MkdirAll(sub, 0o755)
		os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.txt", f)), []byte(strings.Join(files[f], "\n")), 0o644)
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d", c))
	}
	return dir
}

// catAll returns every object of the repository, as git reads them.
func catAll(t testing.TB, dir string) map[string]Object {
	cmd := exec.Command("git", "-C", dir, "cat-file", "--batch-all-objects", "--batch")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]Object{}
	r := bufio.NewReader(bytes.NewReader(out))
	for {
		hdr, err := r.ReadString('\n')
		if err == io.EOF {
			return objs
		}
		f := strings.Fields(hdr)
		size, _ := strconv.Atoi(f[2])
		data := make([]byte, size+1)
		io.ReadFull(r, data)
		typ := map[string]Type{"commit": Commit, "tree": Tree, "blob": Blob, "tag": Tag}[f[1]]
		id, _ := hex.DecodeString(f[0])
		objs[f[0]] = Object{ID: id, Type: typ, Size: int64(size), Data: data[:size]}
	}
}

func walkAll(t testing.TB, dir string, opt WalkOptions) map[string]Object {
	t.Helper()
	packs, err := Glob(filepath.Join(dir, ".git", "objects"), 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	got := map[string]Object{}
	var mu sync.Mutex
	for _, p := range packs {
		defer p.Close()
		err := p.Walk(opt, func(o Object) error {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := got[o.Hex()]; dup {
				return fmt.Errorf("%s handed over twice", o.Hex())
			}
			if opt.ReuseBlobData {
				o.Data = bytes.Clone(o.Data) // reused once fn returns
			}
			got[o.Hex()] = o
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func deltas(t testing.TB, dir, kind string) int {
	idx, _ := filepath.Glob(filepath.Join(dir, ".git", "objects", "pack", "*.idx"))
	n := 0
	for _, l := range strings.Split(git(t, dir, append([]string{"verify-pack", "-v"}, idx...)...), "\n") {
		if f := strings.Fields(l); len(f) >= 7 && f[1] == kind {
			n++
		}
	}
	return n
}

// entries counts the pack entries of type typ.
func entries(t testing.TB, dir string, typ Type) int {
	packs, err := Glob(filepath.Join(dir, ".git", "objects"), 20)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range packs {
		for _, off := range p.offsets {
			if e, err := p.entryAt(off); err == nil && e.typ == typ {
				n++
			}
		}
		p.Close()
	}
	return n
}

func TestWalkMatchesGit(t *testing.T) {
	dir := history(t, 60)
	for _, tc := range []struct {
		name   string
		repack []string
		delta  Type
		opt    WalkOptions
	}{
		{"ofs-deltas", []string{"repack", "-q", "-adf"}, ofsDelta, WalkOptions{}},
		{"ref-deltas", []string{"-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-adf"}, refDelta, WalkOptions{}},
		{"no cache", []string{"repack", "-q", "-adf", "--depth=20"}, ofsDelta, WalkOptions{CacheBytes: 1}},
		{"blobs", []string{"repack", "-q", "-adf"}, ofsDelta, WalkOptions{Type: Blob}},
		{"workers", []string{"repack", "-q", "-adf"}, ofsDelta, WalkOptions{Workers: 2}},
		{"release", []string{"repack", "-q", "-adf"}, ofsDelta, WalkOptions{Workers: 2, CacheBytes: 1}},
		{"workers, ref-deltas, no cache", []string{"-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-adf"}, refDelta,
			WalkOptions{Type: Blob, Workers: 3, CacheBytes: 1}},
		// Blobs' memory reused: whatever the cache keeps or drops, no
		// buffer is handed over while another object still uses it.
		{"reuse", []string{"repack", "-q", "-adf", "--depth=20"}, ofsDelta, WalkOptions{ReuseBlobData: true}},
		{"reuse, small cache", []string{"repack", "-q", "-adf", "--depth=20"}, ofsDelta, WalkOptions{ReuseBlobData: true, CacheBytes: 3000}},
		{"reuse, no cache, ref-deltas", []string{"-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-adf"}, refDelta,
			WalkOptions{ReuseBlobData: true, Workers: 2, CacheBytes: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "release" {
				// Let go of the pages read after every page.
				defer func(n int) { releaseEvery = n }(releaseEvery)
				releaseEvery = 1
			}
			git(t, dir, tc.repack...)
			if n := deltas(t, dir, "blob"); n < 40 {
				t.Fatalf("only %d blob deltas: the test history does not exercise deltas", n)
			}
			if n := entries(t, dir, tc.delta); n < 40 {
				t.Fatalf("only %d entries of %s", n, tc.delta)
			}
			want := catAll(t, dir)
			got := walkAll(t, dir, tc.opt)
			n := 0
			for id, w := range want {
				if tc.opt.Type != 0 && w.Type != tc.opt.Type {
					if _, ok := got[id]; ok {
						t.Errorf("%s (%s) handed over with Type %s", id, w.Type, tc.opt.Type)
					}
					continue
				}
				n++
				g, ok := got[id]
				if !ok {
					t.Errorf("%s (%s) missing", id, w.Type)
					continue
				}
				if g.Type != w.Type || g.Size != w.Size || !bytes.Equal(g.Data, w.Data) {
					t.Errorf("%s: got %s of %d bytes, want %s of %d bytes", id, g.Type, g.Size, w.Type, w.Size)
				}
			}
			if len(got) != n {
				t.Errorf("walked %d objects, git has %d", len(got), n)
			}
		})
	}
}

// TestWalkReuseFanOut walks, reusing blobs' memory, a pack in which blobs
// are deltas of one base version each other blob also derives from, so that
// bases serve several deltas while buffers are being reused around them.
func TestWalkReuseFanOut(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	rng := rand.New(rand.NewPCG(3, 4))
	base := make([]string, 300)
	for i := range base {
		base[i] = fmt.Sprintf("line %d: %x", i, rng.Uint64())
	}
	for c := range 80 {
		// Each version is the base with a few lines of its own, in one of
		// a few files, so that many versions share a base.
		lines := slices.Clone(base)
		for range 2 {
			lines[rng.IntN(len(lines))] = fmt.Sprintf("version %d: %x", c, rng.Uint64())
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.txt", c%4)), []byte(strings.Join(lines, "\n")), 0o644)
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d", c))
	}
	git(t, dir, "repack", "-q", "-adf", "--window=100")
	packs, err := Glob(filepath.Join(dir, ".git", "objects"), 20)
	if err != nil || len(packs) != 1 {
		t.Fatal(len(packs), err)
	}
	l, err := packs[0].layout()
	packs[0].Close()
	if err != nil {
		t.Fatal(err)
	}
	children := map[int32]int{}
	for pos, b := range l.bases {
		if b >= 0 && l.types[pos] == Blob {
			children[b]++
		}
	}
	shared := 0
	for _, n := range children {
		if n > 1 {
			shared++
		}
	}
	if shared < 5 {
		t.Fatalf("only %d blobs are the base of more than one delta: the test does not exercise it", shared)
	}
	want := catAll(t, dir)
	for _, opt := range []WalkOptions{
		{ReuseBlobData: true},
		{ReuseBlobData: true, CacheBytes: 20000}, // room for a few versions
		{ReuseBlobData: true, CacheBytes: 1, Workers: 2},
	} {
		for id, g := range walkAll(t, dir, opt) {
			if w := want[id]; g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
				t.Errorf("%+v: %s: got %s of %d bytes, want %s of %d bytes", opt, id, g.Type, len(g.Data), w.Type, w.Size)
			}
		}
	}
}

// TestWalkCacheBound walks, reusing blobs' memory, with a cache bound that
// holds a few versions, and checks after each object that the cache holds no
// more than the bound in memory, not only in content: pooled buffers are
// larger than what they hold.
func TestWalkCacheBound(t *testing.T) {
	dir := history(t, 40)
	git(t, dir, "repack", "-q", "-adf")
	const limit = 20000
	checked, peak := 0, int64(0)
	testHookDone = func(w *walker) {
		var held int64
		for _, data := range w.cache {
			held += int64(cap(data))
		}
		if held != w.cached || held > w.limit {
			t.Errorf("cache holds %d bytes, counts %d, bound %d", held, w.cached, w.limit)
		}
		checked++
		peak = max(peak, held)
	}
	defer func() { testHookDone = nil }()
	walkAll(t, dir, WalkOptions{ReuseBlobData: true, CacheBytes: limit})
	if checked == 0 || peak < limit/4 {
		t.Fatalf("%d objects checked, cache at most %d bytes: the test does not exercise the bound", checked, peak)
	}
}

func TestWalkMaxSize(t *testing.T) {
	dir := history(t, 20)
	git(t, dir, "repack", "-q", "-adf")
	want := catAll(t, dir)
	// The limit is for blobs only: commits and trees come whole.
	const limit = 150
	got := walkAll(t, dir, WalkOptions{MaxSize: limit})
	big, bigTrees := 0, 0
	for id, g := range got {
		w := want[id]
		if g.Size != w.Size {
			t.Errorf("%s: size %d, want %d", id, g.Size, w.Size)
		}
		if w.Size > limit && g.Type == Blob {
			big++
			if g.Data != nil {
				t.Errorf("%s: %d bytes handed over despite MaxSize", id, w.Size)
			}
			continue
		}
		if w.Size > limit {
			bigTrees++
		}
		if !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s (%v): wrong content", id, g.Type)
		}
	}
	if big == 0 || bigTrees == 0 {
		t.Fatalf("%d blobs and %d other objects over the limit: the test does not exercise it", big, bigTrees)
	}
}

func TestWalkStopsAtError(t *testing.T) {
	dir := history(t, 30)
	git(t, dir, "repack", "-q", "-adf")
	packs, err := Glob(filepath.Join(dir, ".git", "objects"), 20)
	if err != nil {
		t.Fatal(err)
	}
	defer packs[0].Close()
	errStop := errors.New("stop")
	for _, workers := range []int{1, 2} {
		var mu sync.Mutex
		n := 0
		err := packs[0].Walk(WalkOptions{Workers: workers}, func(Object) error {
			mu.Lock()
			defer mu.Unlock()
			n++
			return errStop
		})
		if err != errStop || n > workers {
			t.Errorf("workers %d: err %v after %d objects", workers, err, n)
		}
	}
}

func TestCorruptPack(t *testing.T) {
	dir := history(t, 10)
	git(t, dir, "repack", "-q", "-adf")
	packs, _ := filepath.Glob(filepath.Join(dir, ".git", "objects", "pack", "*.pack"))
	data, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		bad := bytes.Clone(data)
		for range 1 + i%4 {
			bad[12+rng.IntN(len(bad)-32)] ^= byte(1 + rng.IntN(255))
		}
		os.Chmod(packs[0], 0o644)
		if err := os.WriteFile(packs[0], bad, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Open(packs[0], 20)
		if err != nil {
			continue
		}
		// Any outcome but a panic is fine; errors must say what broke.
		err = p.Walk(WalkOptions{}, func(Object) error { return nil })
		if err != nil && !errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), "gitpack:") {
			t.Errorf("unexpected error %v", err)
		}
		p.Close()
	}
}

// TestSHA256 walks the pack of a SHA-256 repository, the hash size taken
// from the pack's name.
func TestSHA256(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "--object-format=sha256", "-b", "main")
	for c := range 5 {
		os.WriteFile(filepath.Join(dir, "f.txt"), []byte(strings.Repeat(fmt.Sprintf("line %d\n", c), 200+c)), 0o644)
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d", c))
	}
	git(t, dir, "repack", "-q", "-adf")
	packs, err := Glob(filepath.Join(dir, ".git", "objects"), 0)
	if err != nil || len(packs) != 1 {
		t.Fatal(len(packs), err)
	}
	defer packs[0].Close()
	if hs := NameHashSize(packs[0].path); hs != 32 {
		t.Fatalf("hash size %d from %s", hs, packs[0].path)
	}
	want := catAll(t, dir)
	n := 0
	err = packs[0].Walk(WalkOptions{}, func(o Object) error {
		n++
		if w, ok := want[o.Hex()]; !ok || w.Type != o.Type || !bytes.Equal(w.Data, o.Data) {
			return fmt.Errorf("%s (%s) differs from git's", o.Hex(), o.Type)
		}
		return nil
	})
	if err != nil || n != len(want) {
		t.Fatalf("walked %d of %d objects: %v", n, len(want), err)
	}
	for name, hs := range map[string]int{
		"pack-" + strings.Repeat("ab", 20) + ".pack": 20, "pack-" + strings.Repeat("0", 64) + ".pack": 32,
		"pack-x.pack": 0, "pack-" + strings.Repeat("g", 40) + ".pack": 0, strings.Repeat("a", 40) + ".pack": 0,
	} {
		if got := NameHashSize(filepath.Join("objects", "pack", name)); got != hs {
			t.Errorf("NameHashSize(%s) = %d, want %d", name, got, hs)
		}
	}
}
