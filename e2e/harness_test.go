// Package e2e holds latch's end-to-end tests: they build the real binary once,
// start it on free loopback ports with a fresh data directory, and drive it
// with plain HTTP (the Data Center REST API) and the real git client.
//
// Harness overview (shared by every e2e test file):
//
//   - TestMain builds ./cmd/latch once into a temporary directory (or uses
//     $LATCH_E2E_BIN). A failed build fails every test that starts a server.
//   - startServer(t, opts...) starts `latch serve` and returns a *Server once
//     GET /status answers {"state":"RUNNING"}; it is stopped with SIGTERM when
//     the test ends, and its log is checked for registered secrets.
//   - s.do / s.doBearer / s.request send REST requests; s.rawRequest sends
//     bytes exactly as given. decodeJSON, mustStatus, checkError, checkShape
//     check answers.
//   - s.createUser, s.createGroup, s.createProject, s.createRepo, s.grant,
//     s.grantGroup, s.revoke, s.revokeGroup set up state as the admin.
//   - newGit(t) gives a git client with an isolated HOME; s.gitURL/s.gitURLAs
//     build clone URLs.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchhq/latch/internal/pgtest"
)

// ---------------------------------------------------------------------------
// Binary

var (
	latchBin    string // path of the built binary
	buildFailed string // non-empty when the build failed: the reason
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "latch-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests needs no binary
	}
	if bin := os.Getenv("LATCH_E2E_BIN"); bin != "" {
		latchBin = bin
	} else {
		latchBin = filepath.Join(tmp, "latch")
		if err := buildLatch(latchBin); err != nil {
			buildFailed = err.Error()
			fmt.Fprintln(os.Stderr, "e2e: building ./cmd/latch failed:\n"+buildFailed)
		}
	}
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// moduleRoot finds the directory holding go.mod.
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod)
	}
	abs, _ := filepath.Abs("..")
	return abs
}

func buildLatch(out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/latch")
	cmd.Dir = moduleRoot()
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build -o %s ./cmd/latch (in %s): %v\n%s", out, cmd.Dir, err, b)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Server

// Server is one running `latch serve` process.
type Server struct {
	URL           string // base URL, e.g. http://127.0.0.1:41234 (also --base-url)
	HTTPAddr      string // 127.0.0.1:P
	SSHAddr       string // 127.0.0.1:Q, or "" when SSH is off
	DataDir       string // --data
	AdminPassword string // LATCH_ADMIN_PASSWORD of the bootstrap user "admin"
	LogPath       string // file holding the server's stdout and stderr

	cfg     serverConfig
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stopped bool
	stopMu  sync.Mutex

	client       *http.Client // does not follow redirects
	followClient *http.Client // follows redirects

	secretsMu sync.Mutex
	secrets   []string
}

type serverConfig struct {
	dataDir       string
	adminPassword string
	ssh           bool
	env           []string
	args          []string
	baseURL       func(httpAddr string) string
	sqliteOnly    bool
}

// ServerOption changes how startServer runs latch.
type ServerOption func(*serverConfig)

// WithDataDir reuses a data directory (e.g. to restart a server).
func WithDataDir(dir string) ServerOption { return func(c *serverConfig) { c.dataDir = dir } }

// WithAdminPassword sets LATCH_ADMIN_PASSWORD instead of a random value.
func WithAdminPassword(p string) ServerOption { return func(c *serverConfig) { c.adminPassword = p } }

// WithoutSSH runs latch with --ssh off.
func WithoutSSH() ServerOption { return func(c *serverConfig) { c.ssh = false } }

// e2eDBEnv, set to "postgres", runs every server on a fresh PostgreSQL
// database (scripts/test.sh runs the suite once so, beside the SQLite run).
const e2eDBEnv = "LATCH_E2E_DB"

// WithSQLite keeps the server on SQLite whatever LATCH_E2E_DB says, for
// tests that read the database file itself.
func WithSQLite() ServerOption { return func(c *serverConfig) { c.sqliteOnly = true } }

// WithEnv adds environment variables ("KEY=value") to the server's environment.
func WithEnv(kv ...string) ServerOption {
	return func(c *serverConfig) { c.env = append(c.env, kv...) }
}

// WithArgs appends command-line arguments after the standard ones.
func WithArgs(args ...string) ServerOption {
	return func(c *serverConfig) { c.args = append(c.args, args...) }
}

// WithBaseURL overrides --base-url; f receives the HTTP listen address.
func WithBaseURL(f func(httpAddr string) string) ServerOption {
	return func(c *serverConfig) { c.baseURL = f }
}

const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	gitTimeout   = 2 * time.Minute
)

// freeAddr picks a free loopback port for a server to listen on. It takes
// ports below the kernel's ephemeral range, which outgoing connections (the
// tests make thousands) draw their local ports from: a port picked by
// listening on :0 and closing could be taken by one before latch binds it.
// Ports handed out in this process are not handed out again.
func freeAddr(t testing.TB) string {
	t.Helper()
	lo, hi := 20000, ephemeralLow()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		if hi-lo < 1000 {
			break
		}
		port := lo + mathrand.IntN(hi-lo)
		if portsGiven[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return addr
	}
	// No room below the ephemeral range: let the kernel pick.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("picking a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralLow is the lowest port the kernel gives outgoing connections
// (32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// startServer starts latch on free loopback ports with a fresh data directory
// and waits until GET /status answers {"state":"RUNNING"}. The server is
// stopped with SIGTERM when t ends; the test fails if it does not exit
// cleanly within 10 seconds, or if a registered secret appears in its log.
func startServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	if buildFailed != "" {
		t.Fatalf("latch binary did not build:\n%s", buildFailed)
	}
	cfg := serverConfig{ssh: true}
	for _, o := range opts {
		o(&cfg)
	}
	if os.Getenv(e2eDBEnv) == "postgres" && !cfg.sqliteOnly && !slices.Contains(cfg.args, "--db") {
		cfg.args = append(cfg.args, "--db", pgtest.NewDatabase(t))
	}
	if cfg.dataDir == "" {
		cfg.dataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.adminPassword == "" {
		cfg.adminPassword = "adm-" + randomHex(16)
	}
	httpAddr := freeAddr(t)
	sshAddr := ""
	if cfg.ssh {
		sshAddr = freeAddr(t)
	}
	base := "http://" + httpAddr
	if cfg.baseURL != nil {
		base = cfg.baseURL(httpAddr)
	}
	logDir := t.TempDir()
	home := t.TempDir()

	s := &Server{
		URL:           base,
		HTTPAddr:      httpAddr,
		SSHAddr:       sshAddr,
		DataDir:       cfg.dataDir,
		AdminPassword: cfg.adminPassword,
		LogPath:       filepath.Join(logDir, "latch.log"),
		cfg:           cfg,
		done:          make(chan struct{}),
	}
	s.client = &http.Client{
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.followClient = &http.Client{Timeout: 60 * time.Second}
	s.addSecret(cfg.adminPassword)

	logFile, err := os.Create(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	sshFlag := "off"
	if cfg.ssh {
		sshFlag = sshAddr
	}
	args := append([]string{"serve",
		"--data", cfg.dataDir,
		"--http", httpAddr,
		"--ssh", sshFlag,
		"--base-url", base,
	}, cfg.args...)
	cmd := exec.Command(latchBin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(serverEnv(home), "LATCH_ADMIN_PASSWORD="+cfg.adminPassword)
	cmd.Env = append(cmd.Env, cfg.env...)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting latch: %v", err)
	}
	logFile.Close() // the child holds its own descriptor
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })

	if err := s.waitRunning(); err != nil {
		t.Fatalf("latch did not become ready: %v\n--- server log (tail) ---\n%s", err, s.logTail(80))
	}
	return s
}

// serverEnv is the environment for latch: the test's own, minus LATCH_* and
// GIT_* settings, with an isolated HOME so no personal git config leaks in.
func serverEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LATCH_") || strings.HasPrefix(k, "GIT_") ||
			k == "HOME" || k == "XDG_CONFIG_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "GIT_CONFIG_NOSYSTEM=1")
}

func (s *Server) waitRunning() error {
	deadline := time.Now().Add(startTimeout)
	c := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("latch exited before it was ready: %v", s.waitErr)
		default:
		}
		resp, err := c.Get("http://" + s.HTTPAddr + "/status")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var st struct {
				State string `json:"state"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &st) == nil && st.State == "RUNNING" {
				return nil
			}
			last = fmt.Sprintf("GET /status: %d %s", resp.StatusCode, truncate(b, 200))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("timed out after %v; last answer: %s", startTimeout, last)
}

// stop sends SIGTERM and waits up to 10 seconds. It is idempotent; startServer
// registers it as a cleanup.
func (s *Server) stop(t testing.TB) {
	t.Helper()
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	select {
	case <-s.done:
		t.Errorf("latch exited on its own before the test ended: %v", s.waitErr)
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			if s.waitErr != nil {
				t.Errorf("latch did not shut down cleanly on SIGTERM: %v", s.waitErr)
			}
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("latch did not exit within %v of SIGTERM (killed)", stopTimeout)
		}
	}
	s.checkLogForSecrets(t)
	if t.Failed() {
		t.Logf("--- latch log %s (tail) ---\n%s", s.LogPath, s.logTail(60))
	}
}

// restart stops s and starts a new server on the same data directory.
func (s *Server) restart(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	s.stop(t)
	opts = append([]ServerOption{WithDataDir(s.DataDir), WithAdminPassword(s.AdminPassword)}, opts...)
	// The same database: a PostgreSQL one is named by --db.
	if i := slices.Index(s.cfg.args, "--db"); i >= 0 && i+1 < len(s.cfg.args) {
		opts = append(opts, WithArgs("--db", s.cfg.args[i+1]))
	}
	if s.cfg.sqliteOnly {
		opts = append(opts, WithSQLite())
	}
	if !s.cfg.ssh {
		opts = append(opts, WithoutSSH())
	}
	return startServer(t, opts...)
}

// addSecret registers a value that must never appear in the server log.
func (s *Server) addSecret(v string) {
	if v == "" {
		return
	}
	s.secretsMu.Lock()
	s.secrets = append(s.secrets, v)
	s.secretsMu.Unlock()
}

// Log returns the whole server log so far.
func (s *Server) Log(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatalf("reading server log: %v", err)
	}
	return string(b)
}

func (s *Server) checkLogForSecrets(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Errorf("reading server log: %v", err)
		return
	}
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	for _, sec := range s.secrets {
		if bytes.Contains(b, []byte(sec)) {
			t.Errorf("server log %s contains a secret (%s…): secrets must never be logged", s.LogPath, sec[:min(4, len(sec))])
		}
	}
}

func (s *Server) logTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SSHHostPort returns the SSH host and port.
func (s *Server) SSHHostPort() (string, string) {
	h, p, _ := net.SplitHostPort(s.SSHAddr)
	return h, p
}

// ---------------------------------------------------------------------------
// REST

const adminName = "admin"

// request sends method path (relative to s.URL, may carry a query) with the
// given headers and body, and returns status, body and headers. It does not
// follow redirects. body: nil (none), []byte or string (sent as is, with
// Content-Type application/json), io.Reader (as is), anything else is
// marshalled to JSON.
func (s *Server) request(t testing.TB, method, path string, hdr http.Header, body any) (int, []byte, http.Header) {
	t.Helper()
	return s.send(t, s.client, method, path, hdr, body)
}

func (s *Server) send(t testing.TB, c *http.Client, method, path string, hdr http.Header, body any) (int, []byte, http.Header) {
	t.Helper()
	st, b, h, err := s.trySend(c, method, path, hdr, body)
	if err != nil {
		t.Fatal(err)
	}
	return st, b, h
}

// trySend is send without a testing.TB, for use from other goroutines.
func (s *Server) trySend(c *http.Client, method, path string, hdr http.Header, body any) (int, []byte, http.Header, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("marshalling request body: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("building request %s %s: %v", method, truncate([]byte(path), 200), err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %v", method, truncate([]byte(path), 200), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: reading body: %v", method, truncate([]byte(path), 200), err)
	}
	return resp.StatusCode, b, resp.Header, nil
}

// do sends a request with HTTP Basic credentials (none when user is "").
func (s *Server) do(t testing.TB, method, path, user, pass string, body any) (int, []byte, http.Header) {
	t.Helper()
	hdr := http.Header{}
	if user != "" || pass != "" {
		hdr.Set("Authorization", basicAuth(user, pass))
	}
	return s.request(t, method, path, hdr, body)
}

// doBearer sends a request with "Authorization: Bearer token".
func (s *Server) doBearer(t testing.TB, method, path, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	return s.request(t, method, path, http.Header{"Authorization": {"Bearer " + token}}, body)
}

// asAdmin sends a request as the bootstrap admin.
func (s *Server) asAdmin(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	st, b, _ := s.do(t, method, path, adminName, s.AdminPassword, body)
	return st, b
}

// rawRequest writes req (a complete HTTP/1.1 request; "\n" is turned into
// "\r\n") to the server's socket byte for byte and returns the response.
func (s *Server) rawRequest(t testing.TB, req string) (int, []byte, http.Header) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req = strings.ReplaceAll(strings.ReplaceAll(req, "\r\n", "\n"), "\n", "\r\n")
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("raw write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request %q: reading response: %v", firstLine(req), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// mustStatus fails the test unless got is one of want.
func mustStatus(t testing.TB, what string, got int, body []byte, want ...int) {
	t.Helper()
	if !slices.Contains(want, got) {
		t.Fatalf("%s: status %d, want %v; body: %s", what, got, want, truncate(body, 600))
	}
}

// expectStatus reports (without stopping the test) unless got is one of want.
func expectStatus(t testing.TB, what string, got int, body []byte, want ...int) bool {
	t.Helper()
	if !slices.Contains(want, got) {
		t.Errorf("%s: status %d, want %v; body: %s", what, got, want, truncate(body, 600))
		return false
	}
	return true
}

// decodeJSON decodes b into a T, failing the test on error.
func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %T from %s: %v", v, truncate(b, 400), err)
	}
	return v
}

// getJSON GETs path with Basic credentials, requires 200 and decodes a T.
func getJSON[T any](t testing.TB, s *Server, path, user, pass string) T {
	t.Helper()
	st, b, _ := s.do(t, http.MethodGet, path, user, pass, nil)
	mustStatus(t, "GET "+path, st, b, http.StatusOK)
	return decodeJSON[T](t, b)
}

// jsonType names a decoded JSON value's type: string, number, bool, object,
// array or null.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// checkShape checks that the JSON object in raw has each field with the given
// JSON type ("string", "number", "bool", "object", "array"). Fields may be
// dotted to reach into objects ("links.self").
func checkShape(t testing.TB, what string, raw []byte, fields map[string]string) {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Errorf("%s: not a JSON object: %v: %s", what, err, truncate(raw, 300))
		return
	}
	checkShapeObj(t, what, obj, fields)
}

func checkShapeObj(t testing.TB, what string, obj map[string]any, fields map[string]string) {
	t.Helper()
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		want := fields[f]
		var cur any = obj
		found := true
		for _, part := range strings.Split(f, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				found = false
				break
			}
			cur, ok = m[part]
			if !ok {
				found = false
				break
			}
		}
		if !found {
			t.Errorf("%s: field %q missing", what, f)
			continue
		}
		if got := jsonType(cur); got != want {
			t.Errorf("%s: field %q is %s (%v), want %s", what, f, got, cur, want)
		}
	}
}

// restError is one entry of the Data Center error envelope.
type restError struct {
	Context       *string `json:"context"`
	Message       string  `json:"message"`
	ExceptionName string  `json:"exceptionName"`
}

// checkError checks the Data Center error envelope
// {"errors":[{"context":…,"message":"…","exceptionName":"…"}]}; exception,
// when not empty, must be the first error's exceptionName.
func checkError(t testing.TB, what string, body []byte, exception string) []restError {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		t.Errorf("%s: error body is not JSON: %v: %s", what, err, truncate(body, 300))
		return nil
	}
	var errs []map[string]any
	if err := json.Unmarshal(env["errors"], &errs); err != nil || len(errs) == 0 {
		t.Errorf("%s: want a non-empty \"errors\" array, got %s", what, truncate(body, 300))
		return nil
	}
	out := make([]restError, 0, len(errs))
	for i, e := range errs {
		if _, ok := e["context"]; !ok {
			t.Errorf("%s: errors[%d] has no \"context\" field: %s", what, i, truncate(body, 300))
		}
		if m, _ := e["message"].(string); m == "" {
			t.Errorf("%s: errors[%d] has no message: %s", what, i, truncate(body, 300))
		}
		if _, ok := e["exceptionName"]; !ok {
			t.Errorf("%s: errors[%d] has no \"exceptionName\" field: %s", what, i, truncate(body, 300))
		}
		var re restError
		b, _ := json.Marshal(e)
		_ = json.Unmarshal(b, &re)
		out = append(out, re)
	}
	if exception != "" && out[0].ExceptionName != exception {
		t.Errorf("%s: exceptionName %q, want %q", what, out[0].ExceptionName, exception)
	}
	return out
}

// Data Center exception names.
const (
	exAuthorisation  = "com.atlassian.bitbucket.AuthorisationException"
	exAuthentication = "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"
	exNoSuchProject  = "com.atlassian.bitbucket.project.NoSuchProjectException"
	exNoSuchRepo     = "com.atlassian.bitbucket.repository.NoSuchRepositoryException"
	exNoSuchUser     = "com.atlassian.bitbucket.user.NoSuchUserException"
)

// ---------------------------------------------------------------------------
// REST shapes

type link struct {
	Href string `json:"href"`
	Name string `json:"name,omitempty"`
}

type restUser struct {
	Name         string `json:"name"`
	EmailAddress string `json:"emailAddress"`
	ID           int64  `json:"id"`
	DisplayName  string `json:"displayName"`
	Active       bool   `json:"active"`
	Slug         string `json:"slug"`
	Type         string `json:"type"`
	Links        struct {
		Self []link `json:"self"`
	} `json:"links"`
}

type restGroup struct {
	Name string `json:"name"`
}

type restProject struct {
	Key         string `json:"key"`
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Public      bool   `json:"public"`
	Type        string `json:"type"`
	Links       struct {
		Self []link `json:"self"`
	} `json:"links"`
}

type restRepo struct {
	Slug          string      `json:"slug"`
	ID            int64       `json:"id"`
	Name          string      `json:"name"`
	Description   string      `json:"description"`
	HierarchyID   string      `json:"hierarchyId"`
	ScmID         string      `json:"scmId"`
	State         string      `json:"state"`
	StatusMessage string      `json:"statusMessage"`
	Forkable      bool        `json:"forkable"`
	Project       restProject `json:"project"`
	Public        bool        `json:"public"`
	Archived      bool        `json:"archived"`
	Links         struct {
		Clone []link `json:"clone"`
		Self  []link `json:"self"`
	} `json:"links"`
}

type userPermission struct {
	User       restUser `json:"user"`
	Permission string   `json:"permission"`
}

type groupPermission struct {
	Group      restGroup `json:"group"`
	Permission string    `json:"permission"`
}

// page is the Data Center paged envelope.
type page[T any] struct {
	Size          int  `json:"size"`
	Limit         int  `json:"limit"`
	IsLastPage    bool `json:"isLastPage"`
	Start         int  `json:"start"`
	NextPageStart *int `json:"nextPageStart"`
	Values        []T  `json:"values"`
}

// allPages follows nextPageStart from start 0 and returns every value.
func allPages[T any](t testing.TB, s *Server, path, user, pass string) []T {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var out []T
	start := 0
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("GET %s: more than 1000 pages", path)
		}
		p := getJSON[page[T]](t, s, fmt.Sprintf("%s%sstart=%d&limit=1000", path, sep, start), user, pass)
		out = append(out, p.Values...)
		if p.IsLastPage {
			return out
		}
		if p.NextPageStart == nil || *p.NextPageStart <= start {
			t.Fatalf("GET %s: isLastPage false but nextPageStart %v (start %d)", path, p.NextPageStart, start)
		}
		start = *p.NextPageStart
	}
}

// ---------------------------------------------------------------------------
// Setup helpers (as the admin)

// testUser is a user created by createUser, with its password.
type testUser struct {
	Name        string
	Password    string
	Email       string
	DisplayName string
}

// createUser creates a user with a random password, email name@example.com
// (lower-cased) and display name "name (e2e)".
func (s *Server) createUser(t testing.TB, name string) testUser {
	t.Helper()
	u := testUser{
		Name:        name,
		Password:    "pw-" + randomHex(12),
		Email:       strings.ToLower(name) + "@example.com",
		DisplayName: name + " (e2e)",
	}
	s.addSecret(u.Password)
	st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/users?"+url.Values{
		"name":         {u.Name},
		"password":     {u.Password},
		"displayName":  {u.DisplayName},
		"emailAddress": {u.Email},
	}.Encode(), nil)
	mustStatus(t, "create user "+name, st, b, http.StatusOK, http.StatusCreated, http.StatusNoContent)
	return u
}

// createGroup creates a group and adds members to it.
func (s *Server) createGroup(t testing.TB, name string, members ...string) {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups?name="+url.QueryEscape(name), nil)
	mustStatus(t, "create group "+name, st, b, http.StatusOK, http.StatusCreated, http.StatusNoContent)
	if len(members) > 0 {
		s.addToGroup(t, name, members...)
	}
}

// addToGroup adds users to a group.
func (s *Server) addToGroup(t testing.TB, group string, users ...string) {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups/add-users",
		map[string]any{"group": group, "users": users})
	mustStatus(t, "add users to group "+group, st, b, http.StatusOK, http.StatusNoContent)
}

// createProject creates a project as the admin.
func (s *Server) createProject(t testing.TB, key, name string) restProject {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects", map[string]any{"key": key, "name": name})
	mustStatus(t, "create project "+key, st, b, http.StatusCreated)
	return decodeJSON[restProject](t, b)
}

// createRepo creates a repository in project key as the admin.
func (s *Server) createRepo(t testing.TB, key, name string) restRepo {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects/"+key+"/repos", map[string]any{"name": name})
	mustStatus(t, "create repo "+key+"/"+name, st, b, http.StatusCreated)
	return decodeJSON[restRepo](t, b)
}

// permPath returns the permissions collection for resource: "" is global
// (admin/permissions), "KEY" a project, "KEY/slug" a repository; kind is
// "users" or "groups"; api is "1.0" or "latest".
func permPath(api, resource, kind string) string {
	switch key, slug, isRepo := strings.Cut(resource, "/"); {
	case resource == "":
		return "/rest/api/" + api + "/admin/permissions/" + kind
	case isRepo:
		return "/rest/api/" + api + "/projects/" + key + "/repos/" + slug + "/permissions/" + kind
	default:
		return "/rest/api/" + api + "/projects/" + key + "/permissions/" + kind
	}
}

// grant gives user name permission perm on resource ("" global, "KEY",
// "KEY/slug").
func (s *Server) grant(t testing.TB, resource, name, perm string) {
	t.Helper()
	s.setPermission(t, resource, "users", name, perm)
}

// grantGroup gives group name permission perm on resource.
func (s *Server) grantGroup(t testing.TB, resource, name, perm string) {
	t.Helper()
	s.setPermission(t, resource, "groups", name, perm)
}

// revoke removes user name's permission on resource.
func (s *Server) revoke(t testing.TB, resource, name string) {
	t.Helper()
	p := permPath("1.0", resource, "users") + "?name=" + url.QueryEscape(name)
	st, b := s.asAdmin(t, http.MethodDelete, p, nil)
	mustStatus(t, "DELETE "+p, st, b, http.StatusNoContent)
}

// revokeGroup removes group name's permission on resource.
func (s *Server) revokeGroup(t testing.TB, resource, name string) {
	t.Helper()
	p := permPath("1.0", resource, "groups") + "?name=" + url.QueryEscape(name)
	st, b := s.asAdmin(t, http.MethodDelete, p, nil)
	mustStatus(t, "DELETE "+p, st, b, http.StatusNoContent)
}

func (s *Server) setPermission(t testing.TB, resource, kind, name, perm string) {
	t.Helper()
	p := permPath("1.0", resource, kind) + "?" + url.Values{"name": {name}, "permission": {perm}}.Encode()
	st, b := s.asAdmin(t, http.MethodPut, p, nil)
	mustStatus(t, "PUT "+p, st, b, http.StatusNoContent)
}

// repoDir is where latch keeps repository id on disk.
func (s *Server) repoDir(id int64) string {
	return filepath.Join(s.DataDir, "repositories", fmt.Sprintf("%d.git", id))
}

// repoDirs lists the entries of {data}/repositories.
func (s *Server) repoDirs(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.DataDir, "repositories"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// checkReposMatchDisk checks that the repositories the admin sees and the
// directories under {data}/repositories are the same set ({id}.git each),
// waiting up to 10 seconds for asynchronous deletions to settle.
func (s *Server) checkReposMatchDisk(t testing.TB) {
	t.Helper()
	var want, got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		repos := allPages[restRepo](t, s, "/rest/api/1.0/repos", adminName, s.AdminPassword)
		want = want[:0]
		for _, r := range repos {
			want = append(want, fmt.Sprintf("%d.git", r.ID))
		}
		slices.Sort(want)
		got = s.repoDirs(t)
		if slices.Equal(want, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(want, got) {
		t.Errorf("repositories in the database %v and on disk %v differ", want, got)
	}
}

// ---------------------------------------------------------------------------
// Git

// gitURL is the HTTP clone URL of key/slug without credentials.
func (s *Server) gitURL(key, slug string) string {
	return s.URL + "/scm/" + strings.ToLower(key) + "/" + slug + ".git"
}

// gitURLAs is the HTTP clone URL of key/slug with user:pass in it (escaped).
func (s *Server) gitURLAs(key, slug, user, pass string) string {
	u, err := url.Parse(s.gitURL(key, slug))
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// sshURL is the SSH clone URL of key/slug.
func (s *Server) sshURL(key, slug string) string {
	return "ssh://git@" + s.SSHAddr + "/" + strings.ToLower(key) + "/" + slug + ".git"
}

// gitClient runs the real git with an isolated environment: its own HOME
// (holding ~/.gitconfig, so credential helpers can be configured globally),
// no system config, no terminal prompts and a fixed identity. A client may be
// shared by subtests: the methods that can fail take the current t.
type gitClient struct {
	Home string
	env  []string
}

func newGit(t testing.TB) *gitClient {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git not found: %v", err)
	}
	home := t.TempDir()
	g := &gitClient{Home: home}
	g.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"LANG=C", "LC_ALL=C",
		"TMPDIR=" + os.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Latch E2E", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=Latch E2E", "GIT_COMMITTER_EMAIL=e2e@example.com",
	}
	if runtime.GOOS == "windows" {
		g.env = append(g.env, "SYSTEMROOT="+os.Getenv("SYSTEMROOT"))
	}
	cfg := "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

// withEnv returns a copy of g with extra environment variables.
func (g *gitClient) withEnv(kv ...string) *gitClient {
	c := *g
	c.env = append(slices.Clone(g.env), kv...)
	return &c
}

// run runs git in dir ("" for the current directory) and returns its combined
// output and error.
func (g *gitClient) run(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", gitTimeout, err)
	}
	return string(out), err
}

// must runs git and fails t on error; it returns the trimmed output.
func (g *gitClient) must(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := g.run(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(redactArgs(args), " "), err, out)
	}
	return strings.TrimSpace(out)
}

// redactArgs hides passwords in URLs for messages.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if u, err := url.Parse(a); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				out[i] = u.String()
			}
		}
	}
	return out
}

// initRepo creates a non-bare repository with branch main in a new
// temporary directory.
func (g *gitClient) initRepo(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	g.must(t, "", "init", "-q", "-b", "main", dir)
	return dir
}

// commitFile writes name with content in dir and commits it; it returns the
// new commit id.
func (g *gitClient) commitFile(t testing.TB, dir, name, content, msg string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	g.must(t, dir, "add", "--", name)
	g.must(t, dir, "commit", "-q", "-m", msg)
	return g.must(t, dir, "rev-parse", "HEAD")
}

// lsRemote returns ref name → object id as listed by `git ls-remote url`.
func (g *gitClient) lsRemote(t testing.TB, url string) map[string]string {
	t.Helper()
	out := g.must(t, "", "ls-remote", url)
	return parseRefs(out)
}

func parseRefs(out string) map[string]string {
	refs := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if oid, ref, ok := strings.Cut(strings.TrimSpace(l), "\t"); ok && len(oid) >= 40 {
			refs[ref] = oid
		}
	}
	return refs
}
