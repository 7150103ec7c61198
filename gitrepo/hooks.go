package gitrepo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchhq/latch"
)

// Environment variables Serve gives receive-pack, and through it the hooks.
const (
	// EnvHookBin is the executable the hook scripts run: `$LATCH_HOOK_BIN hook pre-receive`.
	EnvHookBin = "LATCH_HOOK_BIN"
	// EnvHookSocket is the HookServer's Unix socket.
	EnvHookSocket = "LATCH_HOOK_SOCKET"
	// EnvPushID identifies the push to the HookServer.
	EnvPushID = "LATCH_PUSH_ID"
)

// The hooks latch installs.
const (
	HookPreReceive  = "pre-receive"
	HookPostReceive = "post-receive"
)

// maxSocketPath keeps the socket path well inside sun_path (108 bytes on
// Linux, 104 on BSDs).
const maxSocketPath = 100

const (
	maxHookRequest = 64 << 20
	hookIOTimeout  = time.Minute
)

// PushHandler decides on and observes pushes. The HookServer calls it from
// the pre-receive and post-receive hooks of every push received through
// Serve, while the pusher waits; ctx is the context Serve was called with
// (it ends with the push's request), also cancelled when the HookServer
// closes. Work that may outlive the push must not use ctx.
type PushHandler interface {
	// PreReceive runs after the pushed objects arrived (in quarantine, see
	// Push.ObjectEnv) and before any ref is updated. A non-nil error
	// refuses the whole push: the lines of a MessageError (see Message) are
	// shown to the pusher; any other error is logged and the pusher sees a
	// generic refusal.
	PreReceive(ctx context.Context, p *Push) error
	// PostReceive runs after the refs were updated.
	PostReceive(ctx context.Context, p *Push)
}

// Push is one push as the hooks see it. RepoID, RepoDir and Principal come
// from what Serve registered for the push, never from the hook process.
type Push struct {
	// ID is the random id of this push (one receive-pack run).
	ID string
	// RepoDir is the absolute path of the bare repository.
	RepoDir string
	// RepoID is ServeOptions.RepoID.
	RepoID int64
	// Principal is who pushes: ServeOptions.Principal.
	Principal *latch.Principal
	// Updates are the ref updates, in the order git gives them.
	Updates []RefUpdate
	// Options are the push options (`git push -o`), in order.
	Options []string
	// QuarantineDir is the object directory holding the pushed objects
	// until the push is accepted; empty in post-receive and when the push
	// carried no objects.
	QuarantineDir string
	// ObjectEnv is the environment git needs to read the pushed objects in
	// pre-receive (GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES,
	// GIT_QUARANTINE_PATH); nil when there is no quarantine. Push.Command
	// applies it.
	ObjectEnv []string

	hook    string // HookPreReceive or HookPostReceive
	mu      sync.Mutex
	replies []string
}

// Say adds lines shown to the pusher (as "remote: ...") when the hook ends,
// whether the push is accepted or not: e.g. a link to open a pull request.
// It is safe for concurrent use.
func (p *Push) Say(lines ...string) {
	p.mu.Lock()
	p.replies = append(p.replies, lines...)
	p.mu.Unlock()
}

func (p *Push) said() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.replies...)
}

// RefUpdate is one line of a hook's input: a ref moving from Old to New.
// Old is all zeros when the ref is created, New when it is deleted.
type RefUpdate struct {
	Old string
	New string
	Ref string // full name, e.g. refs/heads/main
}

// IsCreate reports whether the update creates the ref.
func (u RefUpdate) IsCreate() bool { return IsZeroID(u.Old) }

// IsDelete reports whether the update deletes the ref.
func (u RefUpdate) IsDelete() bool { return IsZeroID(u.New) }

// IsZeroID reports whether id is Git's null object id (all zeros, SHA-1 or
// SHA-256 length).
func IsZeroID(id string) bool {
	if len(id) != 40 && len(id) != 64 {
		return false
	}
	return strings.Trim(id, "0") == ""
}

func validObjectID(id string) bool {
	if len(id) != 40 && len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validRefName(ref string) bool {
	if !strings.HasPrefix(ref, "refs/") || len(ref) > 4096 {
		return false
	}
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// MessageError refuses a push with lines shown to the pusher.
type MessageError struct {
	Lines []string
}

// Error returns the lines joined by newlines.
func (e *MessageError) Error() string { return strings.Join(e.Lines, "\n") }

// Message returns a *MessageError: return it from PushHandler.PreReceive to
// refuse a push and tell the pusher why, one line each.
func Message(lines ...string) error { return &MessageError{Lines: lines} }

// HookConfig configures a HookServer.
type HookConfig struct {
	// Dir is latch's data directory: the hook scripts go in Dir/hooks, the
	// socket is Dir/hook.sock (or, when that path is too long for a Unix
	// socket, in a directory under os.TempDir).
	Dir string
	// Bin is the executable the hook scripts run as `Bin hook pre-receive`;
	// it must run hookcmd. Default: os.Executable().
	Bin string
	// Handler decides on pushes; nil accepts every push. See SetHandler.
	Handler PushHandler
	// Logger receives refusals caused by errors and protocol problems.
	// Default: slog.Default().
	Logger *slog.Logger
	// PrivateSocket puts the socket in a new directory under os.TempDir
	// instead of Dir: for several latch processes (nodes) sharing one data
	// directory, each of which needs a socket of its own, on the machine it
	// runs on. The hook scripts stay in Dir/hooks, the same for all.
	PrivateSocket bool
}

// HookServer is latch's end of the push seam: it writes the hook scripts,
// listens on a Unix socket for the hook processes git starts, matches each to
// the push Serve registered, and calls the PushHandler.
type HookServer struct {
	hooksDir string
	socket   string
	tmpDir   string // fallback socket directory, removed by Close
	bin      string
	log      *slog.Logger
	ln       *net.UnixListener
	handler  atomic.Pointer[handlerBox]

	mu     sync.Mutex
	pushes map[string]*pushReg

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

type handlerBox struct{ h PushHandler }

type pushReg struct {
	ctx       context.Context
	dir       string // absolute, symlinks resolved
	objects   string // dir/objects, symlinks resolved
	repoID    int64
	principal *latch.Principal
}

// NewHookServer writes (idempotently) the pre-receive and post-receive
// scripts into cfg.Dir/hooks and starts listening on the hook socket. Close it
// when the server stops.
func NewHookServer(cfg HookConfig) (*HookServer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("gitrepo: hook server: no data directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: hook server: %w", err)
	}
	bin := cfg.Bin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("gitrepo: hook server: latch executable: %w", err)
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, fmt.Errorf("gitrepo: hook server: %w", err)
	}
	s := &HookServer{
		hooksDir: filepath.Join(dir, "hooks"),
		bin:      bin,
		log:      cfg.Logger,
		pushes:   make(map[string]*pushReg),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.Handler != nil {
		s.SetHandler(cfg.Handler)
	}
	if err := writeHooks(s.hooksDir); err != nil {
		return nil, err
	}
	s.socket = filepath.Join(dir, "hook.sock")
	if cfg.PrivateSocket || len(s.socket) >= maxSocketPath {
		if s.tmpDir, err = os.MkdirTemp("", "latch-hook-"); err != nil {
			return nil, fmt.Errorf("gitrepo: hook server: socket directory: %w", err)
		}
		s.socket = filepath.Join(s.tmpDir, "hook.sock")
	}
	if s.ln, err = listenUnix(s.socket); err != nil {
		if s.tmpDir != "" {
			os.RemoveAll(s.tmpDir)
		}
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// listenUnix listens on path, replacing a socket file left by a process that
// is gone, but not one a live server answers on.
func listenUnix(path string) (*net.UnixListener, error) {
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("gitrepo: hook server: %s is in use by another latch server", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("gitrepo: hook server: removing stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("gitrepo: hook server: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("gitrepo: hook server: %w", err)
	}
	return ln, nil
}

// hookScript is the whole of a hook: run latch.
func hookScript(name string) string {
	return "#!/bin/sh\n" +
		"# Written by latch at every start: edits are lost.\n" +
		`[ -n "$` + EnvHookBin + `" ] || { echo "latch: this push did not come through latch" >&2; exit 1; }` + "\n" +
		`exec "$` + EnvHookBin + `" hook ` + name + "\n"
}

// writeHooks installs the hook scripts, rewriting them only when they differ.
func writeHooks(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gitrepo: hooks: %w", err)
	}
	for _, name := range []string{HookPreReceive, HookPostReceive} {
		path := filepath.Join(dir, name)
		want := hookScript(name)
		if b, err := os.ReadFile(path); err == nil && string(b) == want {
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o100 != 0 {
				continue
			}
		}
		tmp, err := os.CreateTemp(dir, "."+name+"-")
		if err != nil {
			return fmt.Errorf("gitrepo: hooks: %w", err)
		}
		_, err = tmp.WriteString(want)
		if err == nil {
			err = tmp.Chmod(0o755)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("gitrepo: hooks: %s: %w", name, err)
		}
	}
	return nil
}

// HooksDir is the directory receive-pack runs hooks from (core.hooksPath).
func (s *HookServer) HooksDir() string { return s.hooksDir }

// SocketPath is the Unix socket the hooks connect to.
func (s *HookServer) SocketPath() string { return s.socket }

// SetHandler replaces the PushHandler (nil: accept every push). It is safe
// to call while pushes are running; each hook uses the handler current when
// it connects.
func (s *HookServer) SetHandler(h PushHandler) {
	if h == nil {
		s.handler.Store(nil)
		return
	}
	s.handler.Store(&handlerBox{h})
}

// Close stops listening, cancels the contexts of running handlers, waits for
// them and removes the socket.
func (s *HookServer) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		err = s.ln.Close() // also removes the socket file
		s.wg.Wait()
		if s.tmpDir != "" {
			os.RemoveAll(s.tmpDir)
		}
	})
	if err != nil {
		return fmt.Errorf("gitrepo: hook server: %w", err)
	}
	return nil
}

// register records a push about to run receive-pack in dir and returns its
// id and a function removing it.
func (s *HookServer) register(ctx context.Context, dir string, repoID int64, p *latch.Principal) (string, func(), error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", nil, fmt.Errorf("gitrepo: push: %w", err)
	}
	objects, err := filepath.EvalSymlinks(filepath.Join(resolved, "objects"))
	if err != nil {
		return "", nil, fmt.Errorf("gitrepo: push: %w", err)
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.pushes[id] = &pushReg{ctx: ctx, dir: resolved, objects: objects, repoID: repoID, principal: p}
	s.mu.Unlock()
	return id, func() {
		s.mu.Lock()
		delete(s.pushes, id)
		s.mu.Unlock()
	}, nil
}

func (s *HookServer) lookup(id string) *pushReg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes[id]
}

func (s *HookServer) accept() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("gitrepo: hook server: accept", "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// hookRequest is what a hook process sends: one JSON object.
type hookRequest struct {
	Hook       string      `json:"hook"`
	PushID     string      `json:"push_id"`
	Updates    [][3]string `json:"updates"` // old, new, ref
	Options    []string    `json:"options,omitempty"`
	Quarantine string      `json:"quarantine,omitempty"`
}

// hookResponse is the server's answer: one JSON object.
type hookResponse struct {
	OK    bool     `json:"ok"`
	Lines []string `json:"lines,omitempty"`
}

func (s *HookServer) serveConn(conn *net.UnixConn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(hookIOTimeout))
	var req hookRequest
	if err := json.NewDecoder(io.LimitReader(conn, maxHookRequest)).Decode(&req); err != nil {
		s.log.Warn("gitrepo: hook server: bad request", "err", err)
		return
	}
	conn.SetReadDeadline(time.Time{})
	resp := s.dispatch(&req)
	conn.SetWriteDeadline(time.Now().Add(hookIOTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		s.log.Warn("gitrepo: hook server: writing answer", "push", req.PushID, "err", err)
	}
}

func refuse(lines ...string) hookResponse { return hookResponse{Lines: lines} }

func (s *HookServer) dispatch(req *hookRequest) hookResponse {
	reg := s.lookup(req.PushID)
	if reg == nil {
		s.log.Warn("gitrepo: hook for unknown push", "hook", req.Hook, "push", req.PushID)
		return refuse("latch: push refused: the server does not know this push.")
	}
	p := &Push{ID: req.PushID, RepoDir: reg.dir, RepoID: reg.repoID, Principal: reg.principal, Options: req.Options, hook: req.Hook}
	p.Updates = make([]RefUpdate, 0, len(req.Updates))
	for _, u := range req.Updates {
		if !validObjectID(u[0]) || !validObjectID(u[1]) || !validRefName(u[2]) {
			s.log.Warn("gitrepo: hook: malformed ref update", "push", p.ID, "update", u)
			return refuse("latch: push refused: malformed ref update.")
		}
		p.Updates = append(p.Updates, RefUpdate{Old: u[0], New: u[1], Ref: u[2]})
	}

	ctx, cancel := context.WithCancel(reg.ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	var h PushHandler
	if b := s.handler.Load(); b != nil {
		h = b.h
	}

	switch req.Hook {
	case HookPreReceive:
		if req.Quarantine != "" {
			q, ok := quarantineDir(reg.objects, req.Quarantine)
			if !ok {
				s.log.Warn("gitrepo: hook: quarantine outside the repository", "push", p.ID, "quarantine", req.Quarantine)
				return refuse("latch: push refused: unexpected object directory.")
			}
			p.QuarantineDir = q
			p.ObjectEnv = []string{
				"GIT_QUARANTINE_PATH=" + q,
				"GIT_OBJECT_DIRECTORY=" + q,
				"GIT_ALTERNATE_OBJECT_DIRECTORIES=" + reg.objects,
			}
		}
		var err error
		if h != nil {
			err = s.callPre(ctx, h, p)
		}
		lines := p.said()
		if err == nil {
			return hookResponse{OK: true, Lines: lines}
		}
		var msg *MessageError
		if errors.As(err, &msg) {
			return refuse(append(lines, msg.Lines...)...)
		}
		s.log.Error("gitrepo: pre-receive failed", "push", p.ID, "repo", p.RepoID, "err", err)
		return refuse(append(lines, "latch: push refused: internal error (push "+p.ID+").")...)
	case HookPostReceive:
		if h != nil {
			s.callPost(ctx, h, p)
		}
		return hookResponse{OK: true, Lines: p.said()}
	}
	s.log.Warn("gitrepo: unknown hook", "hook", req.Hook, "push", p.ID)
	return refuse("latch: unknown hook.")
}

func (s *HookServer) callPre(ctx context.Context, h PushHandler, p *Push) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gitrepo: PreReceive panicked: %v", r)
		}
	}()
	return h.PreReceive(ctx, p)
}

func (s *HookServer) callPost(ctx context.Context, h PushHandler, p *Push) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("gitrepo: PostReceive panicked", "push", p.ID, "panic", r)
		}
	}()
	h.PostReceive(ctx, p)
}

// quarantineDir accepts only git's own quarantine directory inside the
// registered repository's object directory: {objects}/tmp_objdir-incoming-*.
func quarantineDir(objects, q string) (string, bool) {
	if !filepath.IsAbs(q) {
		return "", false
	}
	base := filepath.Base(q)
	if !strings.HasPrefix(base, "tmp_objdir-incoming-") {
		return "", false
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(filepath.Clean(q)))
	if err != nil || parent != objects {
		return "", false
	}
	dir := filepath.Join(objects, base)
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return "", false
	}
	return dir, true
}
