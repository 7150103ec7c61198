package gitrepo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

const zero = "0000000000000000000000000000000000000000"

func TestPushAndClone(t *testing.T) {
	s := newServer(t, nil) // no handler: everything is accepted
	wt := gittest.NewWorktree(t)
	c1 := gittest.Commit(t, wt, map[string][]byte{"README.md": []byte("hello\n"), "big.bin": bytes.Repeat([]byte("x"), 1<<20)}, "first")
	gittest.Git(t, wt, "push", s.url, "main")
	if got := s.ref(t, "refs/heads/main"); got != c1 {
		t.Fatalf("main = %q, want %q", got, c1)
	}
	c2 := gittest.Commit(t, wt, map[string][]byte{"a/b.txt": []byte("b\n")}, "second")
	gittest.Git(t, wt, "push", s.url, "main", "main:refs/heads/feature")
	if got := s.ref(t, "refs/heads/feature"); got != c2 {
		t.Fatalf("feature = %q, want %q", got, c2)
	}

	for _, proto := range []string{"0", "2"} {
		t.Run("protocol-v"+proto, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "clone")
			gittest.Git(t, "", "-c", "protocol.version="+proto, "clone", "--quiet", s.url, dst)
			if got, want := gittest.Git(t, dst, "rev-parse", "HEAD"), s.ref(t, "main"); got != want {
				t.Fatalf("cloned HEAD = %s, want %s", got, want)
			}
			if b, _ := os.ReadFile(filepath.Join(dst, "a", "b.txt")); string(b) != "b\n" {
				t.Fatalf("a/b.txt = %q", b)
			}
			// Fetch after a new push: incremental negotiation.
			c3 := gittest.Commit(t, wt, map[string][]byte{"c.txt": []byte(proto)}, "third "+proto)
			gittest.Git(t, wt, "push", s.url, "main")
			gittest.Git(t, dst, "-c", "protocol.version="+proto, "pull", "--quiet", "--ff-only")
			if got := gittest.Git(t, dst, "rev-parse", "HEAD"); got != c3 {
				t.Fatalf("fetched HEAD = %s, want %s", got, c3)
			}
		})
	}

	t.Run("partial-clone", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "partial")
		gittest.Git(t, "", "clone", "--quiet", "--filter=blob:none", "--no-checkout", s.url, dst)
		missing := gittest.Git(t, dst, "rev-list", "--objects", "--missing=print", "HEAD")
		if !strings.Contains(missing, "?") {
			t.Fatal("blob:none clone fetched blobs: filter not honoured")
		}
		gittest.Git(t, dst, "checkout", "--quiet", "main") // lazy fetch of the blobs
		if b, _ := os.ReadFile(filepath.Join(dst, "README.md")); string(b) != "hello\n" {
			t.Fatalf("README.md = %q", b)
		}
	})
}

func TestPreReceiveRefusal(t *testing.T) {
	h := &recorder{}
	s := newServer(t, h)
	wt := gittest.NewWorktree(t)
	c1 := gittest.Commit(t, wt, map[string][]byte{"a.txt": []byte("a\n")}, "first")
	gittest.Git(t, wt, "push", s.url, "main")

	h.pre = func(ctx context.Context, p *gitrepo.Push) error {
		p.Say("checked by latch")
		return gitrepo.Message("Push refused: it carries a live credential.", "  config.yml:3 latp_…", "evil\x1b[31m\rline")
	}
	c2 := gittest.Commit(t, wt, map[string][]byte{"config.yml": []byte("token: secret\n")}, "leak")
	r := gittest.Run(wt, nil, "push", s.url, "main")
	if r.Err == nil {
		t.Fatal("refused push succeeded")
	}
	for _, want := range []string{
		"remote: checked by latch",
		"remote: Push refused: it carries a live credential.",
		"remote:   config.yml:3 latp_…",
		"remote: evil?[31m?line",
	} {
		if !containsLines(r.Stderr, want) {
			t.Errorf("pusher's output lacks %q:\n%s", want, r.Stderr)
		}
	}
	if !strings.Contains(r.Stderr, "main -> main (pre-receive hook declined)") {
		t.Errorf("git does not report the refusal:\n%s", r.Stderr)
	}
	if strings.Contains(r.Stderr, "\x1b") {
		t.Error("control character reached the pusher")
	}
	if got := s.ref(t, "refs/heads/main"); got != c1 {
		t.Fatalf("main moved to %s on a refused push", got)
	}
	if r := gittest.Run("", nil, "--git-dir="+s.dir, "cat-file", "-e", c2); r.Err == nil {
		t.Fatal("refused commit is in the repository")
	}
	if q, _ := filepath.Glob(filepath.Join(s.dir, "objects", "tmp_objdir-*")); len(q) != 0 {
		t.Fatalf("quarantine left behind: %v", q)
	}
	if _, posts := h.got(); len(posts) != 1 { // only the first push
		t.Fatalf("post-receive ran %d times, want 1", len(posts))
	}

	// A handler failure refuses without telling the pusher the details.
	h.pre = func(context.Context, *gitrepo.Push) error { return errors.New("database is down: secret detail") }
	r = gittest.Run(wt, nil, "push", s.url, "main")
	if r.Err == nil || !strings.Contains(r.Stderr, "remote: latch: push refused: internal error") || strings.Contains(r.Stderr, "secret detail") {
		t.Fatalf("push with failing handler: %v\n%s", r.Err, r.Stderr)
	}
	// So does a panic.
	h.pre = func(context.Context, *gitrepo.Push) error { panic("boom") }
	if r = gittest.Run(wt, nil, "push", s.url, "main"); r.Err == nil {
		t.Fatal("push with panicking handler succeeded")
	}
	if got := s.ref(t, "refs/heads/main"); got != c1 {
		t.Fatalf("main moved to %s", got)
	}

	// Accepting again lets the same push through.
	h.pre = nil
	gittest.Git(t, wt, "push", s.url, "main")
	if got := s.ref(t, "refs/heads/main"); got != c2 {
		t.Fatalf("main = %s, want %s", got, c2)
	}
}

func TestPostReceive(t *testing.T) {
	h := &recorder{}
	s := newServer(t, h)
	h.post = func(_ context.Context, p *gitrepo.Push) {
		p.Say("Create pull request for feature:", "  http://example.com/pr")
	}
	wt := gittest.NewWorktree(t)
	c1 := gittest.Commit(t, wt, map[string][]byte{"a.txt": []byte("a\n")}, "first")
	gittest.Git(t, wt, "push", s.url, "main")
	c2 := gittest.Commit(t, wt, map[string][]byte{"a.txt": []byte("b\n")}, "second")
	gittest.Git(t, wt, "tag", "v1", c1)
	r := gittest.Run(wt, nil, "push", s.url, "main", "main:refs/heads/feature", "v1")
	if r.Err != nil {
		t.Fatal(r.Err, r.Stderr)
	}
	if !containsLines(r.Stderr, "remote: Create pull request for feature:", "remote:   http://example.com/pr") {
		t.Errorf("post-receive message not shown:\n%s", r.Stderr)
	}
	gittest.Git(t, wt, "push", s.url, ":refs/heads/feature")

	pres, posts := h.got()
	if len(pres) != 3 || len(posts) != 3 {
		t.Fatalf("%d pre-receive, %d post-receive calls, want 3 and 3", len(pres), len(posts))
	}
	want := [][]gitrepo.RefUpdate{
		{{Old: zero, New: c1, Ref: "refs/heads/main"}},
		{{Old: c1, New: c2, Ref: "refs/heads/main"}, {Old: zero, New: c2, Ref: "refs/heads/feature"}, {Old: zero, New: c1, Ref: "refs/tags/v1"}},
		{{Old: c2, New: zero, Ref: "refs/heads/feature"}},
	}
	for i, p := range posts {
		got := slices.Clone(p.Updates)
		w := slices.Clone(want[i])
		cmp := func(a, b gitrepo.RefUpdate) int { return strings.Compare(a.Ref, b.Ref) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(w, cmp)
		if !slices.Equal(got, w) {
			t.Errorf("push %d: updates = %+v, want %+v", i, got, w)
		}
		if !slices.Equal(pres[i].Updates, p.Updates) {
			t.Errorf("push %d: pre-receive saw %+v, post-receive %+v", i, pres[i].Updates, p.Updates)
		}
		if p.RepoID != s.id || p.Principal != s.principal || p.ID == "" || p.ID != pres[i].ID {
			t.Errorf("push %d: repo %d principal %p id %q (pre %q)", i, p.RepoID, p.Principal, p.ID, pres[i].ID)
		}
		if p.QuarantineDir != "" || p.ObjectEnv != nil {
			t.Errorf("push %d: post-receive has a quarantine", i)
		}
		if real, _ := filepath.EvalSymlinks(s.dir); p.RepoDir != real {
			t.Errorf("push %d: RepoDir %q, want %q", i, p.RepoDir, real)
		}
	}
	if pres[0].ID == pres[1].ID {
		t.Error("two pushes share an id")
	}
	if !posts[2].Updates[0].IsDelete() || !posts[0].Updates[0].IsCreate() || posts[1].Updates[0].IsCreate() {
		t.Error("IsCreate/IsDelete wrong")
	}
	// Pushes with objects are quarantined; a pure deletion carries none.
	if q := pres[0].QuarantineDir; !strings.HasPrefix(filepath.Base(q), "tmp_objdir-incoming-") || filepath.Dir(q) != filepath.Join(pres[0].RepoDir, "objects") {
		t.Errorf("quarantine = %q", q)
	}
	if len(pres[0].ObjectEnv) != 3 {
		t.Errorf("ObjectEnv = %q", pres[0].ObjectEnv)
	}
	if pres[2].QuarantineDir != "" {
		t.Errorf("deletion has quarantine %q", pres[2].QuarantineDir)
	}
}

func TestPushOptions(t *testing.T) {
	h := &recorder{}
	s := newServer(t, h)
	wt := gittest.NewWorktree(t)
	gittest.Commit(t, wt, nil, "first")
	gittest.Git(t, wt, "push", "-o", "ci.skip", "-o", "reviewer=bob smith", s.url, "main")
	gittest.Commit(t, wt, nil, "second")
	gittest.Git(t, wt, "push", s.url, "main")
	pres, posts := h.got()
	if len(pres) != 2 || len(posts) != 2 {
		t.Fatalf("%d/%d hook calls", len(pres), len(posts))
	}
	want := []string{"ci.skip", "reviewer=bob smith"}
	if !slices.Equal(pres[0].Options, want) || !slices.Equal(posts[0].Options, want) {
		t.Fatalf("options = %q / %q, want %q", pres[0].Options, posts[0].Options, want)
	}
	if len(pres[1].Options) != 0 || len(posts[1].Options) != 0 {
		t.Fatalf("push without options got %q", pres[1].Options)
	}
}

func TestNewBlobs(t *testing.T) {
	h := &recorder{}
	s := newServer(t, h)
	wt := gittest.NewWorktree(t)
	gittest.Commit(t, wt, map[string][]byte{"a.txt": []byte("a v1\n"), "shared.txt": []byte("shared\n")}, "base")
	gittest.Git(t, wt, "push", s.url, "main")

	// The push: a new file, a changed file, a file in a subdirectory, a copy
	// of content the server has (not new), a deletion, on two branches, and
	// a tag pointing at a blob.
	gittest.Commit(t, wt, map[string][]byte{
		"a.txt":          []byte("a v2\n"),
		"dir/new.bin":    {0, 1, 2, 3, 255},
		"copy.txt":       []byte("shared\n"),
		"shared.txt":     nil,
		"dir/sub/n2.txt": []byte("n2\n"),
	}, "second")
	gittest.Git(t, wt, "checkout", "--quiet", "-b", "other")
	gittest.Commit(t, wt, map[string][]byte{"other.txt": []byte("other\n")}, "other")
	blobID := strings.TrimSpace(runStdin(t, wt, "loose blob\n", "hash-object", "-w", "--stdin"))
	gittest.Git(t, wt, "tag", "blobtag", blobID)

	want := map[string]gitrepo.Blob{}
	content := map[string]string{}
	for _, path := range []string{"a.txt", "dir/new.bin", "dir/sub/n2.txt"} {
		id := gittest.Git(t, wt, "rev-parse", "main:"+path)
		b, _ := os.ReadFile(filepath.Join(wt, filepath.FromSlash(path)))
		want[id] = gitrepo.Blob{ID: id, Size: int64(len(b)), Path: path}
		content[id] = string(b)
	}
	id := gittest.Git(t, wt, "rev-parse", "other:other.txt")
	want[id] = gitrepo.Blob{ID: id, Size: 6, Path: "other.txt"}
	content[id] = "other\n"
	want[blobID] = gitrepo.Blob{ID: blobID, Size: 11}
	content[blobID] = "loose blob\n"

	collect := func(ctx context.Context, p *gitrepo.Push) (map[string]gitrepo.Blob, error) {
		got := map[string]gitrepo.Blob{}
		for b, err := range p.NewBlobs(ctx) {
			if err != nil {
				return nil, err
			}
			if _, dup := got[b.ID]; dup {
				return nil, fmt.Errorf("blob %s listed twice", b.ID)
			}
			got[b.ID] = b
		}
		return got, nil
	}
	var preBlobs, postBlobs map[string]gitrepo.Blob
	var scanned map[string]string
	var early int
	var errs []error
	var mu sync.Mutex // the handler runs on the hook server's goroutines
	h.pre = func(ctx context.Context, p *gitrepo.Push) error {
		mu.Lock()
		defer mu.Unlock()
		var err error
		if preBlobs, err = collect(ctx, p); err != nil {
			errs = append(errs, err)
		}
		scanned = map[string]string{}
		err = p.ScanBlobs(ctx, func(b gitrepo.Blob, r io.Reader) error {
			if b.Size > 3 { // read only some of the blobs
				c, err := io.ReadAll(r)
				scanned[b.ID] = string(c)
				return err
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		for range p.NewBlobs(ctx) { // stopping early must not hang
			early++
			break
		}
		stop := errors.New("stop")
		if err := p.ScanBlobs(ctx, func(gitrepo.Blob, io.Reader) error { return stop }); len(preBlobs) > 0 && err != stop {
			errs = append(errs, fmt.Errorf("ScanBlobs returned %v, want fn's error", err))
		}
		return nil
	}
	h.post = func(ctx context.Context, p *gitrepo.Push) {
		mu.Lock()
		defer mu.Unlock()
		var err error
		if postBlobs, err = collect(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	gittest.Git(t, wt, "push", s.url, "main", "other", "blobtag")
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !maps.Equal(preBlobs, want) {
		t.Errorf("pre-receive NewBlobs:\n got %v\nwant %v", preBlobs, want)
	}
	if !maps.Equal(postBlobs, want) {
		t.Errorf("post-receive NewBlobs:\n got %v\nwant %v", postBlobs, want)
	}
	for id, c := range content {
		if len(c) > 3 && scanned[id] != c {
			t.Errorf("ScanBlobs content of %s = %q, want %q", id, scanned[id], c)
		}
	}
	if early != 1 {
		t.Errorf("early stop yielded %d", early)
	}

	// A push of known objects only (a new branch at an existing commit)
	// adds no blob.
	preBlobs = nil
	mu.Unlock()
	gittest.Git(t, wt, "push", s.url, "main:refs/heads/again")
	mu.Lock()
	if len(errs) > 0 || len(preBlobs) != 0 {
		t.Fatalf("new branch on old commit: blobs %v, errors %v", preBlobs, errs)
	}
}

// containsLines reports whether out has the lines in sequence (git pads
// remote lines with spaces, so trailing blanks are ignored).
func containsLines(out string, lines ...string) bool {
	var trimmed []string
	for _, l := range strings.Split(out, "\n") {
		trimmed = append(trimmed, strings.TrimRight(l, " "))
	}
	for i := range trimmed {
		if len(trimmed)-i >= len(lines) && slices.Equal(trimmed[i:i+len(lines)], lines) {
			return true
		}
	}
	return false
}

func runStdin(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := execGit(dir, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}
