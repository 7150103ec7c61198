// Package githttp serves Git's smart HTTP protocol for latch. It resolves the
// repository and the principal, asks the backend's one authorization decision
// and hands the streams to the git binary; it never buffers a pack.
//
// URLs: /scm/{projectKey}/{slug}.git/... (Data Center) and
// /{workspace}/{slug}.git/... (Cloud), each with info/refs,
// git-upload-pack and git-receive-pack.
package githttp

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/httpx"
)

// Service names a git service.
type Service string

// Git services reachable over HTTP.
const (
	UploadPack  Service = "git-upload-pack"
	ReceivePack Service = "git-receive-pack"
)

// Request is one Git service invocation for the runner.
type Request struct {
	Service     Service
	Dir         string
	GitProtocol string // validated GIT_PROTOCOL value, or ""
	Repo        *latch.Repository
	Principal   *latch.Principal
}

// Runner runs git services. AdvertiseRefs writes the reference advertisement
// (git <service> --stateless-rpc --advertise-refs); RPC streams one
// stateless request and its response.
type Runner interface {
	AdvertiseRefs(ctx context.Context, req Request, w io.Writer) error
	RPC(ctx context.Context, req Request, in io.Reader, out io.Writer) error
}

// Resolver is the part of the backend the transport consumes.
type Resolver interface {
	GitRepo(ctx context.Context, p *latch.Principal, projectKey, slug string, write bool) (*latch.Repository, string, error)
}

// Authenticator resolves credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, at auth.Attempt) (*latch.Principal, error)
}

// Handler serves Git over HTTP.
type Handler struct {
	repos       Resolver
	authn       Authenticator
	run         Runner
	log         *slog.Logger
	validProto  func(string) bool
	maxBodySize int64
}

// New returns a Handler. validProtocol checks a Git-Protocol header value
// before it is passed on as GIT_PROTOCOL.
func New(repos Resolver, authn Authenticator, run Runner, validProtocol func(string) bool, log *slog.Logger) *Handler {
	return &Handler{repos: repos, authn: authn, run: run, log: log, validProto: validProtocol}
}

var (
	keyRE  = regexp.MustCompile(`^[A-Za-z~][A-Za-z0-9_]{0,127}$`)
	slugRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// target is what a Git URL names.
type target struct {
	projectKey string
	slug       string
	op         string // "info/refs", "git-upload-pack" or "git-receive-pack"
}

// parsePath parses /scm/{key}/{slug}[.git]/{op} or /{key}/{slug}.git/{op}.
func parsePath(path string) (target, bool) {
	scm := strings.HasPrefix(path, "/scm/")
	rest := strings.TrimPrefix(strings.TrimPrefix(path, "/scm"), "/")
	var t target
	for _, op := range []string{"info/refs", "git-upload-pack", "git-receive-pack"} {
		if base, ok := strings.CutSuffix(rest, "/"+op); ok {
			rest, t.op = base, op
			break
		}
	}
	if t.op == "" {
		return target{}, false
	}
	key, slug, ok := strings.Cut(rest, "/")
	if !ok {
		return target{}, false
	}
	slug, hasGit := strings.CutSuffix(slug, ".git")
	if !scm && !hasGit {
		return target{}, false
	}
	if !keyRE.MatchString(key) || !slugRE.MatchString(slug) || slug == "." || slug == ".." {
		return target{}, false
	}
	t.projectKey, t.slug = key, slug
	return t, true
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := parsePath(r.URL.Path)
	if !ok {
		plain(w, http.StatusNotFound, "Repository not found")
		return
	}
	var svc Service
	switch {
	case t.op == "info/refs" && r.Method == http.MethodGet:
		svc = Service(r.URL.Query().Get("service"))
		if svc != UploadPack && svc != ReceivePack {
			plain(w, http.StatusForbidden, "Only the smart HTTP protocol is supported: use a git client newer than 1.6.6.")
			return
		}
	case t.op != "info/refs" && r.Method == http.MethodPost:
		svc = Service(t.op)
	default:
		plain(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	ctx := r.Context()
	p, err := h.authenticate(r)
	if err != nil {
		challenge(w, "Authentication failed. Check your user name and password or access token.")
		return
	}
	repo, dir, err := h.repos.GitRepo(ctx, p, t.projectKey, t.slug, svc == ReceivePack)
	if err != nil {
		h.deny(w, p, err)
		return
	}
	req := Request{Service: svc, Dir: dir, Repo: repo, Principal: p}
	if proto := r.Header.Get("Git-Protocol"); proto != "" && h.validProto(proto) {
		req.GitProtocol = proto
	}
	w.Header().Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	if t.op == "info/refs" {
		h.infoRefs(w, r, req)
		return
	}
	h.rpc(w, r, req)
}

func (h *Handler) authenticate(r *http.Request) (*latch.Principal, error) {
	creds, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	return h.authn.Authenticate(r.Context(), auth.Attempt{Credentials: creds, Via: auth.ViaGit, Addr: httpx.ClientAddr(r)})
}

// deny answers a refused request: anonymous callers are asked for
// credentials, callers who may not see the repository are told it does not
// exist, and callers who may see it are told which permission they lack.
func (h *Handler) deny(w http.ResponseWriter, p *latch.Principal, err error) {
	d, denied := backend.IsDenied(err)
	switch {
	case p.IsAnonymous() && (denied || errors.Is(err, latch.ErrNotFound)):
		challenge(w, "Authentication required.")
	case errors.Is(err, latch.ErrNotFound):
		plain(w, http.StatusNotFound, "Repository not found")
	case denied:
		plain(w, http.StatusForbidden, fmt.Sprintf("You need %s permission to push to this repository.", d.Required))
	default:
		h.log.Error("git request failed", "err", err)
		plain(w, http.StatusInternalServerError, "Internal error")
	}
}

func (h *Handler) infoRefs(w http.ResponseWriter, r *http.Request, req Request) {
	w.Header().Set("Content-Type", "application/x-"+string(req.Service)+"-advertisement")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, pktLine("# service="+string(req.Service)+"\n")+"0000"); err != nil {
		return
	}
	if err := h.run.AdvertiseRefs(r.Context(), req, w); err != nil {
		h.log.Warn("advertise refs", "service", req.Service, "repo_id", req.Repo.ID, "err", err)
	}
}

func (h *Handler) rpc(w http.ResponseWriter, r *http.Request, req Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-"+string(req.Service)+"-request" {
		plain(w, http.StatusUnsupportedMediaType, "Unexpected content type")
		return
	}
	body := io.Reader(r.Body)
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			plain(w, http.StatusBadRequest, "Malformed gzip request body")
			return
		}
		defer zr.Close()
		body = zr
	default:
		plain(w, http.StatusUnsupportedMediaType, "Unsupported content encoding")
		return
	}
	w.Header().Set("Content-Type", "application/x-"+string(req.Service)+"-result")
	// Git streams the response while it still reads the request.
	_ = http.NewResponseController(w).EnableFullDuplex()
	if err := h.run.RPC(r.Context(), req, body, flushWriter{w}); err != nil {
		h.log.Warn("git rpc", "service", req.Service, "repo_id", req.Repo.ID, "err", err)
	}
}

// flushWriter flushes after every write so that progress reaches the client.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="latch"`)
	plain(w, http.StatusUnauthorized, msg)
}
