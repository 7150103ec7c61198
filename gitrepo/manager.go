// Package gitrepo is everything latch does with the real git binary on disk
// (no Git implementation in Go): it stores bare repositories by numeric
// repository id, serves upload-pack, receive-pack and upload-archive over
// smart HTTP (--stateless-rpc) and over bidirectional streams (SSH), and runs
// the push seam: Git's pre-receive and post-receive hooks call back into the
// running latch server over a Unix socket, where a PushHandler decides on and
// observes every push.
//
// Git always runs in a clean environment (no system or global configuration,
// nothing from latch's own environment but PATH), one process per request,
// with input and output streamed, never held whole.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch"
)

// ErrBusy is returned by Serve when no git process slot freed up in time
// (see SetLimit).
var ErrBusy = errors.New("gitrepo: too many clones, fetches and pushes at once")

// ErrExists is wrapped by Init when the repository directory already exists.
// It is of kind latch.ErrConflict.
var ErrExists = &latch.Error{Kind: latch.ErrConflict, Message: "The repository already exists on disk."}

// DefaultBranch is the branch HEAD names in a new repository.
const DefaultBranch = "main"

// repoConfig is appended to the configuration git init writes.
//   - denyNonFastForwards=false: force pushes are decided by latch, not git.
//   - advertisePushOptions: `git push -o` reaches the hooks (Serve also
//     passes it on the command line, for repositories made elsewhere).
//   - allowFilter: partial clone (--filter=blob:none). Protocol v2, which
//     every current client speaks, already lets clients want any object id;
//     allowReachableSHA1InWant gives v0 clients the lazy fetches partial
//     clones need without serving unreachable objects (allowAnySHA1InWant
//     would expose objects of force-pushed-away history).
//   - logAllRefUpdates: keep reflogs, so that a bad force push can be undone.
const repoConfig = `[receive]
	denyNonFastForwards = false
	advertisePushOptions = true
[uploadpack]
	allowFilter = true
	allowReachableSHA1InWant = true
[core]
	logAllRefUpdates = true
`

// Temporary entries in the root: repositories being made or removed.
const (
	initPrefix  = ".init-"
	trashPrefix = ".trash-"
	staleAfter  = time.Hour
)

// Manager stores bare repositories under one root directory
// ({data}/repositories), each at {root}/{id}.git so that renaming or moving a
// repository between projects never moves its directory.
type Manager struct {
	root    string
	hooks   *HookServer
	adverts advertCache
	limit   *limiter // nil: no limit (see SetLimit)
}

// NewManager returns a Manager over root, creating it if needed and removing
// what a crash left of repositories being made or removed more than an hour
// ago. hooks runs the push seam for Serve; it may be nil for a Manager that
// never receives pushes.
func NewManager(root string, hooks *HookServer) (*Manager, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: repository root: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("gitrepo: repository root: %w", err)
	}
	m := &Manager{root: abs, hooks: hooks}
	m.removeStale(time.Now().Add(-staleAfter))
	return m, nil
}

// Root returns the absolute root directory.
func (m *Manager) Root() string { return m.root }

// Path returns the directory of repository id: {root}/{id}.git.
func (m *Manager) Path(id int64) string {
	return filepath.Join(m.root, strconv.FormatInt(id, 10)+".git")
}

// Exists reports whether repository id's directory exists.
func (m *Manager) Exists(id int64) bool {
	if id <= 0 {
		return false
	}
	fi, err := os.Stat(m.Path(id))
	return err == nil && fi.IsDir()
}

// Init creates repository id as an empty bare repository whose HEAD names
// main. It builds the repository in a temporary directory inside the root and
// renames it into place, so the final path holds either nothing or a whole
// repository, whatever happens. It fails with an error wrapping ErrExists
// when the directory exists.
func (m *Manager) Init(ctx context.Context, id int64) (err error) {
	if id <= 0 {
		return fmt.Errorf("gitrepo: init: invalid repository id %d", id)
	}
	final := m.Path(id)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("gitrepo: init %d: %w", id, ErrExists)
	}
	git, err := gitPath()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(m.root, initPrefix+strconv.FormatInt(id, 10)+"-")
	if err != nil {
		return fmt.Errorf("gitrepo: init %d: %w", id, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	cmd := exec.CommandContext(ctx, git, "init", "--bare", "--quiet",
		"--initial-branch="+DefaultBranch, "--template=", tmp)
	cmd.Env = baseEnv(m.root)
	cmd.Dir = m.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gitrepo: init %d: git init: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	if err := appendFile(filepath.Join(tmp, "config"), repoConfig); err != nil {
		return fmt.Errorf("gitrepo: init %d: %w", id, err)
	}
	if err := syncTree(tmp); err != nil {
		return fmt.Errorf("gitrepo: init %d: %w", id, err)
	}
	if err := renameNoReplace(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("gitrepo: init %d: %w", id, ErrExists)
		}
		return fmt.Errorf("gitrepo: init %d: %w", id, err)
	}
	if err := syncPath(m.root); err != nil {
		return fmt.Errorf("gitrepo: init %d: %w", id, err)
	}
	return nil
}

// Remove deletes repository id. The directory is first renamed out of the
// way, so a crash midway never leaves a partial repository at its path. It
// is not an error if the repository does not exist.
func (m *Manager) Remove(id int64) error {
	if id <= 0 {
		return fmt.Errorf("gitrepo: remove: invalid repository id %d", id)
	}
	trash, err := os.MkdirTemp(m.root, trashPrefix+strconv.FormatInt(id, 10)+"-")
	if err != nil {
		return fmt.Errorf("gitrepo: remove %d: %w", id, err)
	}
	moved := filepath.Join(trash, "repo.git")
	if err := os.Rename(m.Path(id), moved); err != nil {
		os.Remove(trash)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("gitrepo: remove %d: %w", id, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("gitrepo: remove %d: %w", id, err)
	}
	return nil
}

// Serve runs svc on repository id; see the package-level Serve. It fills in
// opts.RepoID and, when nil, opts.Hooks with the Manager's HookServer, and
// fails with a latch.ErrNotFound error if the repository does not exist,
// and with ErrBusy when the limit set by SetLimit left no slot in time.
func (m *Manager) Serve(ctx context.Context, svc Service, id int64, opts ServeOptions) error {
	if !m.Exists(id) {
		return fmt.Errorf("gitrepo: %s %d: %w", svc, id, latch.Errorf(latch.ErrNotFound, "repository %d is not on disk", id))
	}
	release, err := m.acquire(ctx, LimitKey(opts.Principal, opts.ClientAddr))
	if err != nil {
		return fmt.Errorf("gitrepo: %s %d: %w", svc, id, err)
	}
	defer release()
	opts.RepoID = id
	if opts.Hooks == nil {
		opts.Hooks = m.hooks
	}
	return Serve(ctx, svc, m.Path(id), opts)
}

// AdvertiseRefs answers smart HTTP's GET info/refs for repository id; see the
// package-level AdvertiseRefs.
//
// A protocol v2 upload-pack advertisement lists capabilities, not refs: it
// depends only on the git binary, the repository's configuration (system and
// global configuration are never read) and the requested protocol. The
// Manager caches it on those, so that most fetches' first request (every
// current client speaks v2) spawns no process at all.
func (m *Manager) AdvertiseRefs(ctx context.Context, svc Service, id int64, opts ServeOptions) error {
	if !m.Exists(id) {
		return fmt.Errorf("gitrepo: %s %d: %w", svc, id, latch.Errorf(latch.ErrNotFound, "repository %d is not on disk", id))
	}
	opts.RepoID = id
	if opts.Hooks == nil {
		opts.Hooks = m.hooks
	}
	dir := m.Path(id)
	if svc != UploadPack || !isV2(opts.GitProtocol) || opts.Stdout == nil {
		return AdvertiseRefs(ctx, svc, dir, opts)
	}
	key, ok := v2Key(dir, opts.GitProtocol)
	if !ok {
		return AdvertiseRefs(ctx, svc, dir, opts)
	}
	if adv, ok := m.adverts.get(key); ok {
		if _, err := opts.Stdout.Write(adv); err != nil {
			return fmt.Errorf("gitrepo: %s %d: writing advertisement: %w", svc, id, err)
		}
		return nil
	}
	out := opts.Stdout
	var buf limitedBuffer
	opts.Stdout = &buf
	if err := AdvertiseRefs(ctx, svc, dir, opts); err != nil {
		return err
	}
	if buf.full {
		return fmt.Errorf("gitrepo: %s %d: advertisement too long", svc, id)
	}
	m.adverts.put(key, buf.b)
	if _, err := out.Write(buf.b); err != nil {
		return fmt.Errorf("gitrepo: %s %d: writing advertisement: %w", svc, id, err)
	}
	return nil
}

// v2Key identifies what a v2 capability advertisement depends on: the git
// binary (path, size, time), the repository configuration's content and the
// protocol requested.
func v2Key(dir, proto string) (string, bool) {
	git, err := gitPath()
	if err != nil {
		return "", false
	}
	fi, err := os.Stat(git)
	if err != nil {
		return "", false
	}
	config, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil || len(config) > 64<<10 {
		return "", false
	}
	return fmt.Sprintf("%s\x00%d\x00%d\x00%s\x00%s", git, fi.Size(), fi.ModTime().UnixNano(), proto, config), true
}

// advertCache holds v2 advertisements. Repositories latch makes share one
// configuration, so it holds a handful of entries; it is bounded anyway.
type advertCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

const maxAdverts = 256

func (c *advertCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[key]
	return b, ok
}

func (c *advertCache) put(key string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxAdverts {
		c.m = make(map[string][]byte)
	}
	c.m[key] = b
}

// limitedBuffer keeps up to 64 KiB and notes whether more was written.
type limitedBuffer struct {
	b    []byte
	full bool
}

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > 64<<10 {
		w.full = true
		return len(p), nil
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// removeStale deletes temporary entries last modified before cutoff.
func (m *Manager) removeStale(cutoff time.Time) {
	entries, err := os.ReadDir(m.root)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, initPrefix) && !strings.HasPrefix(name, trashPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(m.root, name))
		}
	}
}

func appendFile(name, text string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncTree flushes every file and directory under dir to stable storage.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		return syncPath(path)
	})
}

// syncPath fsyncs one file or directory.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// renameCheck renames oldpath to newpath unless newpath exists.
func renameCheck(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: os.ErrExist}
	}
	return os.Rename(oldpath, newpath)
}
