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
	"strconv"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/gitrepo"
	"github.com/latchhq/latch/httpx"
)

// Runner runs git services on repositories by id; *gitrepo.Manager is one.
type Runner interface {
	AdvertiseRefs(ctx context.Context, svc gitrepo.Service, id int64, opts gitrepo.ServeOptions) error
	Serve(ctx context.Context, svc gitrepo.Service, id int64, opts gitrepo.ServeOptions) error
}

// Resolver is the part of the backend the transport consumes.
type Resolver interface {
	GitRepo(ctx context.Context, p *latch.Principal, projectKey, slug string, write bool) (*latch.Repository, error)
}

// Authenticator resolves credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, at auth.Attempt) (*latch.Principal, error)
}

// Handler serves Git over HTTP.
type Handler struct {
	repos Resolver
	authn Authenticator
	run   Runner
	log   *slog.Logger
}

// New returns a Handler.
func New(repos Resolver, authn Authenticator, run Runner, log *slog.Logger) *Handler {
	return &Handler{repos: repos, authn: authn, run: run, log: log}
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
	var svc gitrepo.Service
	switch {
	case t.op == "info/refs" && r.Method == http.MethodGet:
		svc = gitrepo.Service(r.URL.Query().Get("service"))
		if svc != gitrepo.UploadPack && svc != gitrepo.ReceivePack {
			plain(w, http.StatusForbidden, "Only the smart HTTP protocol is supported: use a git client newer than 1.6.6.")
			return
		}
	case t.op != "info/refs" && r.Method == http.MethodPost:
		svc = gitrepo.Service(t.op)
	default:
		plain(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	ctx := r.Context()
	p, err := h.authenticate(r)
	var limited *auth.RateLimited
	switch {
	case err == nil:
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.Seconds()))
		plain(w, http.StatusTooManyRequests, limited.Error())
		return
	case errors.Is(err, auth.ErrPasswordForGitDisabled):
		challenge(w, auth.ErrPasswordForGitDisabled.Message)
		return
	case errors.Is(err, latch.ErrUnauthorized), errors.Is(err, latch.ErrForbidden):
		challenge(w, "Authentication failed. Check your user name and password or access token.")
		return
	default:
		h.log.Error("git authentication", "err", err)
		plain(w, http.StatusInternalServerError, "Internal error")
		return
	}
	repo, err := h.repos.GitRepo(ctx, p, t.projectKey, t.slug, svc == gitrepo.ReceivePack)
	if err != nil {
		h.deny(w, p, err)
		return
	}
	opts := gitrepo.ServeOptions{GitProtocol: r.Header.Get("Git-Protocol"), Principal: p, ClientAddr: httpx.ClientAddr(r)}
	w.Header().Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	if t.op == "info/refs" {
		w.Header().Set("Content-Type", svc.AdvertisementType())
		out := &countingWriter{w: w}
		opts.Stdout = out
		if err := h.run.AdvertiseRefs(ctx, svc, repo.ID, opts); err != nil {
			h.log.Warn("advertise refs", "service", svc, "repo_id", repo.ID, "err", err)
			if out.n == 0 {
				// Nothing sent yet: answer with an error, not an empty 200.
				w.Header().Del("Content-Type")
				if errors.Is(err, latch.ErrNotFound) {
					plain(w, http.StatusNotFound, "Repository not found")
				} else {
					plain(w, http.StatusInternalServerError, "Internal error")
				}
			}
		}
		return
	}
	h.rpc(w, r, svc, repo.ID, opts)
}

func (h *Handler) authenticate(r *http.Request) (*latch.Principal, error) {
	creds, err := auth.ParseAuthorizations(r.Header.Values("Authorization"))
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

func (h *Handler) rpc(w http.ResponseWriter, r *http.Request, svc gitrepo.Service, repoID int64, opts gitrepo.ServeOptions) {
	if r.Header.Get("Content-Type") != svc.RequestType() {
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
	w.Header().Set("Content-Type", svc.ResultType())
	// Git streams the response while it still reads the request.
	_ = http.NewResponseController(w).EnableFullDuplex()
	opts.Stdin, opts.Stdout, opts.StatelessRPC = body, flushWriter{w}, true
	if err := h.run.Serve(r.Context(), svc, repoID, opts); err != nil {
		if errors.Is(err, gitrepo.ErrBusy) {
			// Nothing was written yet: the client gets a clear refusal.
			w.Header().Set("Retry-After", "30")
			plain(w, http.StatusServiceUnavailable, busyMessage)
			h.log.Warn("git rpc refused: too many at once", "service", svc, "repo_id", repoID)
			return
		}
		h.log.Warn("git rpc", "service", svc, "repo_id", repoID, "err", err)
	}
}

// busyMessage is what a client refused by the git process limit reads.
const busyMessage = "latch is busy: too many clones, fetches and pushes are running at once. Try again in a moment."

// countingWriter counts what was written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
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

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="latch"`)
	plain(w, http.StatusUnauthorized, msg)
}
