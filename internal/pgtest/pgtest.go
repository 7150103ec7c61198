// Package pgtest starts throwaway PostgreSQL clusters for tests.
//
// A cluster lives in a temporary directory and listens only on a Unix socket
// in that directory, with trust authentication, fsync off and the C locale,
// so that it starts in about a second and leaves nothing behind. The server
// binaries (initdb, postgres) are looked up in $LATCH_PG_BIN, next to
// initdb or pg_config on PATH, then in the usual install directories
// (/usr/lib/postgresql/*/bin, newest first). When the tests run as root,
// the cluster runs as the "postgres" user, or else "nobody", since
// PostgreSQL refuses to run as root.
//
// Without PostgreSQL installed, tests that ask for a database are skipped,
// unless LATCH_REQUIRE_POSTGRES=1, which makes them fail.
//
// Typical use, one cluster per test binary and a fresh database per test:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) { url := pgtest.NewDatabase(t); ... }
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv names the environment variable that, set to 1, turns a missing
// PostgreSQL into a test failure instead of a skip.
const RequireEnv = "LATCH_REQUIRE_POSTGRES"

// BinEnv names the environment variable that may point at the directory of
// the PostgreSQL server binaries.
const BinEnv = "LATCH_PG_BIN"

// ErrNotInstalled reports that no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found; install PostgreSQL (apt-get install -y postgresql) or set " + BinEnv)

const (
	superuser     = "postgres"
	port          = 5432 // only names the socket file; no TCP listener
	startTimeout  = 60 * time.Second
	stopTimeout   = 30 * time.Second
	adminDatabase = "postgres"
)

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	dir    string // temporary directory: data/, the socket, server.log
	bin    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process has exited
	runErr error         // the server's exit status, once exited is closed

	mu    sync.Mutex
	admin *pgx.Conn
	seq   atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// FindBinDir returns the directory holding initdb and postgres, or
// ErrNotInstalled.
func FindBinDir() (string, error) {
	ok := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(BinEnv); d != "" {
		if ok(d) {
			return d, nil
		}
		return "", fmt.Errorf("%w (%s=%s holds none)", ErrNotInstalled, BinEnv, d)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && ok(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if ok(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			if d := strings.TrimSpace(string(out)); ok(d) {
				return d, nil
			}
		}
	}
	var candidates []string
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin", // Debian, Ubuntu
		"/usr/pgsql-*/bin",          // RHEL (PGDG)
		"/usr/local/pgsql/bin",      // source builds
		"/opt/homebrew/opt/postgresql*/bin",
		"/usr/local/opt/postgresql*/bin",
		"/usr/bin",
	} {
		m, _ := filepath.Glob(pattern)
		candidates = append(candidates, sortByVersionDesc(m)...)
	}
	for _, d := range candidates {
		if ok(d) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

var digitsRE = regexp.MustCompile(`\d+`)

// sortByVersionDesc orders paths by the first number in them, highest first.
func sortByVersionDesc(paths []string) []string {
	version := func(p string) int {
		n, _ := strconv.Atoi(digitsRE.FindString(p))
		return n
	}
	slices.SortStableFunc(paths, func(a, b string) int { return version(b) - version(a) })
	return paths
}

// StartCluster initializes and starts a cluster in a new temporary
// directory. The caller must Stop it.
func StartCluster(ctx context.Context) (*Cluster, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	run, err := serverUser()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(run)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, exited: make(chan struct{})}
	if err := c.start(ctx, run); err != nil {
		c.kill()
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) command(ctx context.Context, run *runAs, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = childEnv(c.dir)
	cmd.SysProcAttr = run.sysProcAttr()
	return cmd
}

func (c *Cluster) start(ctx context.Context, run *runAs) error {
	initdb := c.command(ctx, run, "initdb",
		"-D", c.dataDir(), "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}

	logPath := filepath.Join(c.dir, "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("pgtest: create server log: %w", err)
	}
	defer logf.Close()
	// Not CommandContext: the server outlives ctx, until Stop.
	cmd := c.command(context.Background(), run, "postgres",
		"-D", c.dataDir(),
		"-k", c.dir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "log_min_messages=warning",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.cmd = cmd
	go func() {
		c.runErr = cmd.Wait()
		close(c.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.dsn(adminDatabase))
		if err == nil {
			c.admin = conn
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("pgtest: postgres exited during startup (%v):\n%s", c.runErr, tail(logPath))
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready after %v: %w\n%s", startTimeout, err, tail(logPath))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) dsn(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.dir, port, superuser, db)
}

// URL returns the postgres:// URL of database db in the cluster, reaching
// it through the Unix socket (host= names the socket directory).
func (c *Cluster) URL(db string) string {
	q := url.Values{}
	q.Set("host", c.dir)
	q.Set("port", strconv.Itoa(port))
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Dir returns the cluster's directory, which also holds its socket.
func (c *Cluster) Dir() string { return c.dir }

// CreateDatabase creates a new, empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context) (name, dbURL string, err error) {
	name = fmt.Sprintf("latch_test_%d", c.seq.Add(1))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin == nil {
		return "", "", errors.New("pgtest: cluster stopped")
	}
	if _, err := c.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return name, c.URL(name), nil
}

// DropDatabase drops a database, closing any connection still open to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin == nil {
		return nil // the whole cluster is gone
	}
	if _, err := c.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown, then kill after a timeout) and
// deletes its directory. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		if c.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.admin.Close(ctx)
			cancel()
			c.admin = nil
		}
		c.mu.Unlock()
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(os.Interrupt) // fast shutdown
			select {
			case <-c.exited:
			case <-time.After(stopTimeout):
				c.kill()
				c.stopErr = fmt.Errorf("pgtest: postgres did not stop within %v; killed", stopTimeout)
			}
		}
		if err := os.RemoveAll(c.dir); err != nil {
			c.stopErr = errors.Join(c.stopErr, fmt.Errorf("pgtest: remove %s: %w", c.dir, err))
		}
	})
	return c.stopErr
}

func (c *Cluster) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// childEnv is the environment of the server processes: ours without PG*
// variables, which could point them elsewhere.
func childEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "LC_ALL=C")
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// skipOrFail ends a test that cannot get PostgreSQL: a skip when it is not
// installed (unless RequireEnv is set), a failure otherwise.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("%v (set %s=1 to fail instead of skipping)", err, RequireEnv)
	}
	t.Fatal(err)
}

// Start starts a cluster for this test alone, creates a database in it and
// returns its URL; the cluster is stopped and deleted when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	c, err := StartCluster(context.Background())
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	_, u, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// SharedCluster returns the cluster shared by the tests of this binary,
// starting it on first use. Main stops it.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		shared.c, shared.err = StartCluster(context.Background())
	})
	if shared.err != nil {
		skipOrFail(t, shared.err)
	}
	return shared.c
}

// NewDatabase creates a fresh database on the shared cluster and returns
// its URL; the database is dropped when the test ends. Use Main in TestMain
// so that the cluster is stopped after the tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	c := SharedCluster(t)
	name, u, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DropDatabase(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	return u
}

// Main runs the tests and then stops the shared cluster, if one was
// started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// StopShared stops the shared cluster, if one was started: for test mains
// that cannot use Main.
func StopShared() error {
	if shared.c == nil {
		return nil
	}
	return shared.c.Stop()
}
