package gitrepo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/gitrepo/internal/gittest"
)

func newManager(t *testing.T) *gitrepo.Manager {
	t.Helper()
	m, err := gitrepo.NewManager(filepath.Join(t.TempDir(), "repositories"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// leftovers lists temporary entries in the root.
func leftovers(t *testing.T, m *gitrepo.Manager) []string {
	t.Helper()
	entries, err := os.ReadDir(m.Root())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestInitRemove(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	if m.Exists(7) {
		t.Fatal("Exists before Init")
	}
	if err := m.Init(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(m.Root(), "7.git"); m.Path(7) != want {
		t.Fatalf("Path = %q, want %q", m.Path(7), want)
	}
	if !m.Exists(7) {
		t.Fatal("not Exists after Init")
	}
	dir := m.Path(7)
	if got := gittest.Git(t, "", "--git-dir="+dir, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Fatalf("bare = %s", got)
	}
	if got := gittest.Git(t, "", "--git-dir="+dir, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Fatalf("HEAD = %s", got)
	}
	for key, want := range map[string]string{
		"receive.denyNonFastForwards":         "false",
		"receive.advertisePushOptions":        "true",
		"uploadpack.allowFilter":              "true",
		"uploadpack.allowReachableSHA1InWant": "true",
		"core.logAllRefUpdates":               "true",
	} {
		if got := gittest.Git(t, "", "--git-dir="+dir, "config", "--get", key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "hooks")); err == nil {
		t.Error("repository has its own hooks directory (templates not disabled)")
	}

	err := m.Init(ctx, 7)
	if !errors.Is(err, gitrepo.ErrExists) || !errors.Is(err, latch.ErrConflict) {
		t.Fatalf("second Init: %v, want ErrExists (conflict)", err)
	}
	if l := leftovers(t, m); len(l) != 0 {
		t.Fatalf("leftovers after Init: %v", l)
	}

	if err := m.Remove(7); err != nil {
		t.Fatal(err)
	}
	if m.Exists(7) {
		t.Fatal("Exists after Remove")
	}
	if err := m.Remove(7); err != nil {
		t.Fatalf("Remove of a missing repository: %v", err)
	}
	if l := leftovers(t, m); len(l) != 0 {
		t.Fatalf("leftovers after Remove: %v", l)
	}
	for _, id := range []int64{0, -1} {
		if err := m.Init(ctx, id); err == nil {
			t.Errorf("Init(%d) succeeded", id)
		}
	}
}

func TestInitAtomic(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "repositories")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: a half-made repository in a temporary directory,
	// one old enough to be cleaned and one that may belong to a running Init.
	stale := filepath.Join(root, ".init-3-123")
	fresh := filepath.Join(root, ".init-4-456")
	trash := filepath.Join(root, ".trash-5-789")
	for _, d := range []string{stale, fresh, trash} {
		if err := os.MkdirAll(filepath.Join(d, "objects"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	os.Chtimes(trash, old, old)

	m, err := gitrepo.NewManager(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{stale, trash} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s not cleaned: %v", d, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary directory removed: %v", err)
	}
	if m.Exists(3) || m.Exists(4) {
		t.Fatal("a half-made repository counts as existing")
	}

	// A failing Init leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Init(cctx, 3); err == nil {
		t.Fatal("Init with a cancelled context succeeded")
	}
	if m.Exists(3) {
		t.Fatal("failed Init left the repository")
	}
	if l := leftovers(t, m); len(l) != 1 || l[0] != ".init-4-456" {
		t.Fatalf("leftovers after failed Init: %v", l)
	}
	if err := m.Init(ctx, 3); err != nil {
		t.Fatal(err)
	}

	// Whatever is at the final path is never replaced, even an empty
	// directory.
	if err := os.Mkdir(m.Path(5), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx, 5); !errors.Is(err, gitrepo.ErrExists) {
		t.Fatalf("Init over an empty directory: %v", err)
	}
	if entries, _ := os.ReadDir(m.Path(5)); len(entries) != 0 {
		t.Fatal("Init wrote into an existing directory")
	}

	// Racing Inits: exactly one wins, the repository is whole.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Init(ctx, 9)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, gitrepo.ErrExists):
			t.Errorf("racing Init: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d racing Inits succeeded, want 1", ok)
	}
	gittest.Git(t, "", "--git-dir="+m.Path(9), "fsck", "--no-progress")
	if l := leftovers(t, m); len(l) != 1 {
		t.Fatalf("leftovers after racing Inits: %v", l)
	}
}
