// Package server assembles latch's HTTP surface: /status, /metrics, the REST
// APIs and Git over HTTP, behind shared middleware for authentication,
// request logging, metrics and panic recovery.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/auth"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/settings"
)

// Config is what New needs.
type Config struct {
	Log           *slog.Logger
	Authenticator *auth.Authenticator
	// REST registers REST routes (Data Center, Cloud, latch's own) on a mux
	// whose requests are authenticated with the REST rules.
	REST []interface{ Register(*http.ServeMux) }
	// Git serves Git over HTTP; it authenticates by itself.
	Git      http.Handler
	Registry *prometheus.Registry
	// Network gives the network policy that says how to find a client's
	// address behind trusted proxies; nil trusts no proxy.
	Network func() *settings.NetworkPolicy
	// TrustedOrigins are origins ("https://git.example.com") from which
	// browsers may send state-changing requests besides the request's own
	// host: the public base URL, whose host a reverse proxy may not pass on.
	TrustedOrigins []string
}

// New returns the root handler. It fails only on a malformed trusted
// origin.
func New(cfg Config) (http.Handler, error) {
	rest := http.NewServeMux()
	for _, r := range cfg.REST {
		r.Register(rest)
	}
	rest.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(rest, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			dcrest.WriteError(w, cfg.Log, &latch.Error{Kind: httpx.ErrMethodNotAllowed, Message: "Method " + r.Method + " is not supported here."})
			return
		}
		dcrest.WriteError(w, cfg.Log, httpx.NotFound("No resource found at %s.", r.URL.Path))
	})
	root := http.NewServeMux()
	root.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"state": "RUNNING"})
	})
	if cfg.Registry != nil {
		root.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	}
	root.Handle("/rest/", authenticateREST(cfg.Authenticator, cfg.Log, rest))
	if cfg.Git != nil {
		root.Handle("/scm/", cfg.Git)
		// Cloud-style clone URLs: /{workspace}/{slug}.git/...
		root.Handle("/", gitOrNotFound(cfg.Git, cfg.Log))
	}
	var anySite []string
	for _, r := range cfg.REST {
		if o, ok := r.(anySiteRoutes); ok {
			anySite = append(anySite, o.AnySitePatterns()...)
		}
	}
	guarded, err := refuseCrossSite(cfg.Log, cfg.TrustedOrigins, anySite, root)
	if err != nil {
		return nil, err
	}
	m := newMetrics(cfg.Registry)
	return recoverPanics(cfg.Log, m.observe(cfg.Log, withOrigin(cfg.Network, guarded))), nil
}

// anySiteRoutes is implemented by REST registrars with endpoints that
// browsers may call from any site.
type anySiteRoutes interface {
	// AnySitePatterns returns those endpoints' http.ServeMux patterns.
	AnySitePatterns() []string
}

// refuseCrossSite refuses, with 403, the state-changing requests a browser
// sends to latch on behalf of another origin (cross-site request forgery):
// a browser attaches the Basic credentials it has cached for latch to a
// form or a no-cors fetch that another page starts, so without this check
// a page a user visits could add its SSH key to the user's account or push
// to the user's repositories. Browsers mark such requests (Sec-Fetch-Site,
// Origin); Git, curl and API clients send neither and are not affected.
//
// As Data Center, the header "X-Atlassian-Token: no-check" turns the check
// off. That is safe only because latch grants no CORS: a page on another
// site cannot send a custom header without a preflight latch refuses.
//
// Requests to the anySite patterns pass from any origin, but a cross-origin
// one is served as anonymous (its Authorization header dropped), so that a
// page cannot act there in its visitor's name either.
func refuseCrossSite(log *slog.Logger, trusted, anySite []string, next http.Handler) (http.Handler, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("server: trusted origin %q: %w", o, err)
		}
	}
	open := http.NewServeMux()
	for _, p := range anySite {
		open.Handle(p, http.NotFoundHandler())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if optedOut(r.Header.Get("X-Atlassian-Token")) || cop.Check(r) == nil {
			next.ServeHTTP(w, r)
			return
		}
		if _, pattern := open.Handler(r); pattern != "" {
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
			next.ServeHTTP(w, r)
			return
		}
		err := &latch.Error{Kind: latch.ErrForbidden, Message: "XSRF check failed: a cross-site browser request cannot change anything here.", Exception: latch.ExAuthorisation}
		if strings.HasPrefix(r.URL.Path, "/rest/") {
			dcrest.WriteError(w, log, err)
			return
		}
		http.Error(w, err.Message, http.StatusForbidden)
	}), nil
}

// withOrigin records where the request came from (the client address, read
// through trusted proxies by the network policy, and the user agent) for
// authentication, rate limits and the audit trail.
func withOrigin(network func() *settings.NetworkPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := httpx.PeerAddr(r)
		if network != nil {
			addr = network().ClientAddr(addr, r.Header.Values)
		}
		ctx := audit.WithOrigin(r.Context(), audit.Origin{Addr: addr, UserAgent: r.UserAgent()})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// optedOut reports whether an X-Atlassian-Token header value turns the
// XSRF check off: "no-check", or "nocheck" as older Atlassian clients send,
// in any case.
func optedOut(v string) bool {
	return strings.EqualFold(v, "no-check") || strings.EqualFold(v, "nocheck")
}

// allowedMethods lists the methods mux serves r's path with, other than its
// catch-all: the mux's own 405 cannot coexist with a catch-all route.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

func gitOrNotFound(git http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, ".git/") || strings.HasSuffix(r.URL.Path, ".git") {
			git.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

// authenticateREST resolves the request's principal from its Authorization
// header with the REST rules; bad credentials end the request with 401 in
// the Data Center envelope.
func authenticateREST(a *auth.Authenticator, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creds, err := auth.ParseAuthorizations(r.Header.Values("Authorization"))
		if err != nil {
			dcrest.WriteError(w, log, err)
			return
		}
		p, err := a.Authenticate(r.Context(), auth.Attempt{Credentials: creds, Via: auth.ViaREST, Addr: httpx.ClientAddr(r)})
		var limited *auth.RateLimited
		switch {
		case err == nil:
		case errors.As(err, &limited):
			w.Header().Set("Retry-After", strconv.Itoa(limited.Seconds()))
			dcrest.WriteErrorStatus(w, log, http.StatusTooManyRequests, err)
			return
		case errors.Is(err, auth.ErrBasicDisabled):
			// Data Center answers this one outside its error envelope.
			httpx.WriteJSON(w, http.StatusForbidden, map[string]string{"message": auth.ErrBasicDisabled.Message})
			return
		default:
			dcrest.WriteError(w, log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(httpx.WithPrincipal(r.Context(), p)))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers (Git) flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "path", r.URL.Path, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_http_requests_total", Help: "HTTP requests by route class and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latch_http_request_duration_seconds", Help: "HTTP request duration by route class.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func routeClass(path string) string {
	switch {
	case path == "/status":
		return "status"
	case strings.HasPrefix(path, "/rest/"):
		return "rest"
	case strings.HasPrefix(path, "/2.0/"):
		return "cloud"
	case strings.Contains(path, ".git"):
		return "git"
	}
	return "other"
}

// observe counts and times every request and logs it at debug level:
// method, path (never the query, which may carry a password on user
// creation), status, size and duration.
func (m *metrics) observe(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		class := routeClass(r.URL.Path)
		m.requests.WithLabelValues(class, strconv.Itoa(rec.status)).Inc()
		m.duration.WithLabelValues(class).Observe(elapsed.Seconds())
		if class != "status" && log.Enabled(r.Context(), slog.LevelDebug) {
			log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.status, "bytes", rec.bytes,
				"duration_ms", elapsed.Milliseconds(), "remote", r.RemoteAddr)
		}
	})
}
