package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch"
)

// Service is one of the Git programs latch serves.
type Service string

// The services Git clients ask for, named as in smart HTTP's ?service=
// parameter and in SSH commands.
const (
	UploadPack    Service = "git-upload-pack"    // fetch and clone
	ReceivePack   Service = "git-receive-pack"   // push
	UploadArchive Service = "git-upload-archive" // git archive --remote (SSH only)
)

// ParseService maps "git-upload-pack", "git-receive-pack" or
// "git-upload-archive" (with or without the "git-" prefix) to its Service.
func ParseService(s string) (Service, error) {
	if !strings.HasPrefix(s, "git-") {
		s = "git-" + s
	}
	switch Service(s) {
	case UploadPack, ReceivePack, UploadArchive:
		return Service(s), nil
	}
	return "", fmt.Errorf("gitrepo: unknown service %q", s)
}

// Command returns the git subcommand, e.g. "upload-pack".
func (s Service) Command() string { return strings.TrimPrefix(string(s), "git-") }

// AdvertisementType is the Content-Type of the smart-HTTP GET
// info/refs?service=... response.
func (s Service) AdvertisementType() string { return "application/x-" + string(s) + "-advertisement" }

// RequestType is the Content-Type of a smart-HTTP POST request body.
func (s Service) RequestType() string { return "application/x-" + string(s) + "-request" }

// ResultType is the Content-Type of a smart-HTTP POST response.
func (s Service) ResultType() string { return "application/x-" + string(s) + "-result" }

// ServeOptions configures one run of a Git service.
type ServeOptions struct {
	// Stdin is what the client sends: the HTTP request body (already
	// un-gzipped) or the SSH channel. Nil means no input.
	Stdin io.Reader
	// Stdout receives what git answers, streamed as it is produced. An HTTP
	// layer should pass a writer that flushes after every Write.
	Stdout io.Writer
	// Stderr, when set, also receives git's standard error (SSH passes the
	// channel's stderr stream). Errors writing to it are ignored. A bounded
	// tail of standard error is kept for GitError in any case.
	Stderr io.Writer

	// StatelessRPC selects smart HTTP (one request, one response, git run
	// with --stateless-rpc). Without it the service talks to the client
	// both ways over Stdin and Stdout for as long as the protocol needs, as
	// over SSH; Serve then returns when git exits, without waiting for Stdin
	// to reach EOF (close it after Serve returns).
	StatelessRPC bool
	// AdvertiseRefs runs git with --advertise-refs: the smart-HTTP
	// info/refs answer (without its "# service=" preamble, see AdvertiseRefs).
	AdvertiseRefs bool
	// GitProtocol is the client's Git-Protocol header or GIT_PROTOCOL SSH
	// environment variable ("version=2"). A value ValidGitProtocol rejects is
	// dropped, so the client is served protocol v0.
	GitProtocol string

	// Hooks runs the push seam. It is required to receive a push: Serve
	// refuses to run receive-pack (other than for AdvertiseRefs) without it.
	Hooks *HookServer
	// RepoID and Principal identify the push to the PushHandler.
	RepoID    int64
	Principal *latch.Principal
	// ClientAddr is the client's address. With Principal it names whose
	// share of the git process limit (Manager.SetLimit) the run counts
	// towards (see LimitKey); only Manager.Serve reads it.
	ClientAddr netip.Addr
}

// GitError reports that a git process failed. Stderr holds the tail of its
// standard error, for logs; it is never meant for the client.
type GitError struct {
	Service  Service
	ExitCode int    // -1 when git was killed by a signal
	Stderr   string // at most stderrTail bytes
	Err      error
}

// Error describes the failure with the tail of git's standard error.
func (e *GitError) Error() string {
	msg := fmt.Sprintf("gitrepo: %s: %v", e.Service, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Unwrap returns the underlying error (usually an *exec.ExitError).
func (e *GitError) Unwrap() error { return e.Err }

// ErrNoHooks is returned by Serve for a push when ServeOptions.Hooks is nil.
var ErrNoHooks = errors.New("gitrepo: receive-pack needs a HookServer")

const (
	stderrTail = 16 << 10
	copyBuf    = 64 << 10
	// killGrace is how long git gets to exit after SIGTERM (which lets it
	// remove its lock files and quarantine) before it is killed.
	killGrace = 5 * time.Second
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// Serve runs one Git service on the bare repository dir. It execs the git
// binary once, in a clean environment, streaming opts.Stdin to it and its
// output to opts.Stdout; nothing is buffered whole. Cancelling ctx stops git
// (SIGTERM to its process group, SIGKILL after a grace period). A push
// (ReceivePack) is registered with opts.Hooks for the duration of the run so
// that the pre-receive and post-receive hooks reach the PushHandler.
//
// Serve returns nil when git exits successfully, a *GitError when it fails,
// and a wrapped context or write error when the run was cut short.
func Serve(ctx context.Context, svc Service, dir string, opts ServeOptions) error {
	switch svc {
	case UploadPack, ReceivePack:
	case UploadArchive:
		if opts.StatelessRPC || opts.AdvertiseRefs {
			return fmt.Errorf("gitrepo: %s does not support smart HTTP", svc)
		}
	default:
		return fmt.Errorf("gitrepo: unknown service %q", svc)
	}
	git, err := gitPath()
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("gitrepo: %s: %w", svc, err)
	}

	env := baseEnv(dir)
	if opts.GitProtocol != "" && ValidGitProtocol(opts.GitProtocol) {
		env = append(env, "GIT_PROTOCOL="+opts.GitProtocol)
	}
	var args []string
	if svc == ReceivePack {
		args = append(args, "-c", "receive.advertisePushOptions=true")
		if opts.Hooks != nil {
			args = append(args, "-c", "core.hooksPath="+opts.Hooks.HooksDir())
		}
		if !opts.AdvertiseRefs {
			if opts.Hooks == nil {
				return ErrNoHooks
			}
			id, done, err := opts.Hooks.register(ctx, dir, opts.RepoID, opts.Principal)
			if err != nil {
				return err
			}
			defer done()
			env = append(env,
				EnvHookBin+"="+opts.Hooks.bin,
				EnvHookSocket+"="+opts.Hooks.socket,
				EnvPushID+"="+id)
		}
	}
	args = append(args, svc.Command())
	if opts.StatelessRPC {
		args = append(args, "--stateless-rpc")
	}
	if opts.AdvertiseRefs {
		args = append(args, "--advertise-refs")
	}
	args = append(args, dir)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(runCtx, git, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = killGrace
	configureProcess(cmd)

	tail := &tailWriter{max: stderrTail, tee: opts.Stderr}
	cmd.Stderr = tail

	// Standard input. An *os.File is handed to git as is. Smart HTTP bodies
	// are finite: exec copies them and Wait waits for the copy. A
	// bidirectional stream (SSH) may never reach EOF, so it is copied by a
	// goroutine that Serve does not wait for.
	var stdinW *os.File
	switch in := opts.Stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		if opts.StatelessRPC {
			cmd.Stdin = in
		} else {
			pr, pw, err := os.Pipe()
			if err != nil {
				return fmt.Errorf("gitrepo: %s: %w", svc, err)
			}
			defer pr.Close()
			cmd.Stdin = pr
			stdinW = pw
		}
	}

	// Standard output: an *os.File is handed to git; anything else is fed
	// from a pipe copied by this goroutine. (A larger pipe buffer, via
	// F_SETPIPE_SZ, saves only ~1% of a clone's time and would eat into the
	// per-user pipe memory limit under many concurrent clones.)
	var stdout, stdoutW *os.File
	if f, ok := opts.Stdout.(*os.File); ok {
		cmd.Stdout = f
	} else if opts.Stdout != nil {
		stdout, stdoutW, err = os.Pipe()
		if err != nil {
			if stdinW != nil {
				stdinW.Close()
			}
			return fmt.Errorf("gitrepo: %s: %w", svc, err)
		}
		defer stdout.Close()
		cmd.Stdout = stdoutW
	}

	err = cmd.Start()
	if stdoutW != nil {
		stdoutW.Close() // git holds its own copy: EOF when git and its children exit
	}
	if err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return fmt.Errorf("gitrepo: starting %s: %w", svc, err)
	}
	if stdinW != nil {
		cmd.Stdin.(*os.File).Close() // git holds its own copy
		in := opts.Stdin
		go func() {
			// Ends at EOF of the client's stream, or with EPIPE once git
			// has exited, or when the pipe is closed below.
			io.Copy(stdinW, in)
			stdinW.Close()
		}()
		defer stdinW.Close()
	}

	var writeErr error
	if stdout != nil {
		writeErr = copyOut(opts.Stdout, stdout)
		if writeErr != nil {
			// The client is gone: stop git, then drain what is left so
			// that nothing blocks on a full pipe.
			cancel()
			io.Copy(io.Discard, stdout)
		}
	}
	waitErr := cmd.Wait()

	switch {
	case writeErr != nil:
		return fmt.Errorf("gitrepo: %s: writing output: %w", svc, writeErr)
	case waitErr == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("gitrepo: %s: %w", svc, context.Cause(ctx))
	default:
		return &GitError{Service: svc, ExitCode: exitCode(waitErr), Stderr: tail.String(), Err: waitErr}
	}
}

// copyOut streams src to dst with a pooled buffer, returning the first write
// error (read errors end the copy: git closed its output).
func copyOut(dst io.Writer, src io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// AdvertiseRefs writes the complete smart-HTTP answer to GET
// info/refs?service=svc: the "# service=" preamble (omitted for protocol v2
// upload-pack, as git-http-backend does) followed by git's advertisement.
// The caller sets Content-Type to svc.AdvertisementType() and
// Cache-Control: no-cache before calling it. opts.StatelessRPC and
// opts.AdvertiseRefs are set by AdvertiseRefs.
func AdvertiseRefs(ctx context.Context, svc Service, dir string, opts ServeOptions) error {
	if svc != UploadPack && svc != ReceivePack {
		return fmt.Errorf("gitrepo: %s does not support smart HTTP", svc)
	}
	if opts.Stdout == nil {
		return errors.New("gitrepo: AdvertiseRefs needs ServeOptions.Stdout")
	}
	if svc != UploadPack || !isV2(opts.GitProtocol) {
		if _, err := opts.Stdout.Write(ServicePreamble(svc)); err != nil {
			return fmt.Errorf("gitrepo: %s: writing preamble: %w", svc, err)
		}
	}
	opts.StatelessRPC = true
	opts.AdvertiseRefs = true
	opts.Stdin = nil
	return Serve(ctx, svc, dir, opts)
}

func isV2(proto string) bool {
	if !ValidGitProtocol(proto) {
		return false
	}
	for _, kv := range strings.Split(proto, ":") {
		if kv == "version=2" {
			return true
		}
	}
	return false
}

// ValidGitProtocol reports whether s is safe to pass to git as GIT_PROTOCOL:
// one or more ':'-separated "key" or "key=value" items whose keys and values
// consist of ASCII letters, digits, '.', '_' and '-' ("version=2"), at most
// 256 bytes in all.
func ValidGitProtocol(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, item := range strings.Split(s, ":") {
		k, v, hasValue := strings.Cut(item, "=")
		if !protoToken(k) || (hasValue && !protoToken(v)) {
			return false
		}
	}
	return true
}

func protoToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// PktFlush is the pkt-line flush packet.
const PktFlush = "0000"

// maxPktPayload is the largest payload one pkt-line carries.
const maxPktPayload = 65516

// PktLine encodes s as one pkt-line: four hex digits giving the length
// (including themselves) followed by s. It panics if s is longer than a
// pkt-line may carry (65516 bytes).
func PktLine(s string) []byte {
	if len(s) > maxPktPayload {
		panic("gitrepo: pkt-line payload too long")
	}
	b := make([]byte, 0, 4+len(s))
	b = fmt.Appendf(b, "%04x", 4+len(s))
	return append(b, s...)
}

// ServicePreamble is the start of a smart-HTTP info/refs answer:
// PktLine("# service=git-upload-pack\n") followed by a flush packet.
func ServicePreamble(svc Service) []byte {
	return append(PktLine("# service="+string(svc)+"\n"), PktFlush...)
}

// tailWriter keeps the last max bytes written to it and copies writes to tee
// until tee fails. It never returns an error, so that git never blocks on its
// standard error.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
	tee io.Writer
	cut bool
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tee != nil {
		if _, err := w.tee.Write(p); err != nil {
			w.tee = nil
		}
	}
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
		w.cut = true
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cut {
		return "…" + string(w.buf)
	}
	return string(w.buf)
}

var gitPath = sync.OnceValues(func() (string, error) {
	p, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("gitrepo: git binary: %w", err)
	}
	return p, nil
})

// baseEnv is the whole environment git runs in: nothing of latch's own
// environment leaks in but PATH, and no system or global configuration or
// attributes are read. home is an existing directory nobody can write Git
// configuration into (the repository itself will do).
func baseEnv(home string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ATTR_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
	}
}
