package leaks

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/scan"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/token"
)

// The endpoints' paths under /rest/latch/{version}.
const (
	checkPath  = "/credentials/check"
	revokePath = "/credentials/revoke"
)

// Register adds the check and revoke endpoints to mux (a REST mux whose
// requests carry their principal, anonymous when unauthenticated).
func (s *Service) Register(mux *http.ServeMux) {
	dcrest.Route(mux, http.MethodPost, "latch", checkPath, s.check)
	dcrest.Route(mux, http.MethodPost, "latch", revokePath, s.revoke)
}

// AnySitePatterns returns the patterns of the endpoints a browser may call
// from any site: check and revoke act only on the credentials in the body,
// so anyone who finds a leak may report it from wherever they are.
func (s *Service) AnySitePatterns() []string {
	return append(dcrest.Patterns(http.MethodPost, "latch", checkPath), dcrest.Patterns(http.MethodPost, "latch", revokePath)...)
}

// credentialsBody is the body of both endpoints.
type credentialsBody struct {
	Credentials *[]string `json:"credentials"`
	Source      string    `json:"source"`
}

// CheckResult is one answer of the check endpoint.
type CheckResult struct {
	// ID is the token's non-secret id when latch knows the secret, else "".
	ID string `json:"id"`
	// Kind is the token kind (its prefix, e.g. "latp") of a well-formed
	// latch token, else "".
	Kind string `json:"kind"`
	// Status is "active", "revoked", "expired" or "unknown".
	Status string `json:"status"`
	// Owner is the user the token acts as; only for system administrators.
	Owner *dcrest.User `json:"owner,omitempty"`
}

// CheckResponse is the body of the check endpoint's answer.
type CheckResponse struct {
	Results []CheckResult `json:"results"`
}

func (s *Service) fail(w http.ResponseWriter, err error) { dcrest.WriteError(w, s.log, err) }

// limited answers 429 with Retry-After when addr's bucket is empty.
func (s *Service) limited(w http.ResponseWriter, r *http.Request, l *limiter) bool {
	ok, wait := l.allow(httpx.ClientAddr(r), s.now())
	if ok {
		return false
	}
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	ex := latch.ExRateLimited
	httpx.WriteJSON(w, http.StatusTooManyRequests, dcrest.ErrorBody{Errors: []dcrest.ErrorItem{{
		Message:       fmt.Sprintf("Too many requests from your address. Try again in %d seconds.", secs),
		ExceptionName: &ex,
	}}})
	return true
}

// readCredentials decodes the body and checks the number of credentials.
func readCredentials(w http.ResponseWriter, r *http.Request, max int) (*credentialsBody, error) {
	var body credentialsBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		return nil, err
	}
	if body.Credentials == nil {
		return nil, latch.Invalidf(`The request must name the credentials: {"credentials":["…"]}.`)
	}
	if n := len(*body.Credentials); n > max {
		return nil, latch.Invalidf("At most %d credentials may be sent in one request; this one has %d.", max, n)
	}
	return &body, nil
}

// check answers POST /rest/latch/1.0/credentials/check.
func (s *Service) check(w http.ResponseWriter, r *http.Request) {
	if s.limited(w, r, s.checkLim) {
		return
	}
	body, err := readCredentials(w, r, MaxCheck)
	if err != nil {
		s.fail(w, err)
		return
	}
	checks, err := s.b.CheckCredentials(r.Context(), httpx.Principal(r.Context()), *body.Credentials)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := CheckResponse{Results: make([]CheckResult, len(checks))}
	for i, c := range checks {
		out.Results[i] = CheckResult{ID: c.ID, Kind: string(c.Kind), Status: c.Status}
		if c.Owner != nil {
			u := s.links.RenderUser(*c.Owner)
			out.Results[i].Owner = &u
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// revoke answers POST /rest/latch/1.0/credentials/revoke: 202 whatever the
// credentials were, after every live one was revoked.
func (s *Service) revoke(w http.ResponseWriter, r *http.Request) {
	if s.limited(w, r, s.revLim) {
		return
	}
	body, err := readCredentials(w, r, MaxRevoke)
	if err != nil {
		s.fail(w, err)
		return
	}
	// A reporter going away must not leave a report half done.
	ctx := context.WithoutCancel(r.Context())
	rep := report{
		source: cleanSource(body.Source),
		addr:   httpx.ClientAddr(r),
		at:     s.now(),
	}
	if o := audit.OriginFrom(ctx); !o.Addr.IsValid() {
		ctx = audit.WithOrigin(ctx, audit.Origin{Addr: rep.addr, UserAgent: r.UserAgent()})
	}
	reporter := httpx.Principal(r.Context())
	seen := make(map[string]bool, len(*body.Credentials))
	var failed error
	for _, secret := range *body.Credentials {
		if seen[secret] {
			continue
		}
		seen[secret] = true
		if _, err := token.Parse(secret); err != nil {
			continue // not a latch credential: nothing to revoke, no query
		}
		leak, err := s.b.RevokeLeakedCredential(ctx, secret, func(l *backend.LeakedToken) []store.Mail {
			return s.notice(l, secret, rep)
		})
		if err != nil {
			s.log.Error("revoke a reported credential", "err", err)
			failed = err
			continue
		}
		if leak == nil {
			continue
		}
		s.recordLeak(ctx, reporter, leak, rep)
	}
	if failed != nil {
		s.fail(w, failed)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// report is where and when a leak was reported.
type report struct {
	source string
	addr   netip.Addr
	at     time.Time
}

func (r report) from() string {
	if r.addr.IsValid() {
		return r.addr.String()
	}
	return "an unknown address"
}

// sourceScanner finds credentials of every kind in a reporter's source
// text, which is often the very line that leaked.
var sourceScanner = scan.NewScanner().IgnoringAllowMarkers()

// cleanSource keeps a printable, bounded form of the reporter's source,
// with any credential in it redacted: the source goes into mail and the
// audit trail.
func cleanSource(s string) string {
	for _, f := range sourceScanner.Scan([]byte(s), "") {
		if f.Secret != "" {
			s = strings.ReplaceAll(s, f.Secret, f.Redacted())
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > maxSource {
		cut := maxSource
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func (r report) sourceOrUnknown() string {
	if r.source == "" {
		return "not given"
	}
	return r.source
}

func (s *Service) recordLeak(ctx context.Context, reporter *latch.Principal, leak *backend.LeakedToken, rep report) {
	e := audit.Actor(reporter)
	e.Type = audit.CredentialLeaked
	e.Target = "token:" + leak.Token.ID
	owner := ""
	if leak.Owner != nil {
		owner = leak.Owner.Name
	}
	e.Detail = fmt.Sprintf("%s %q of %s revoked on a leak report; source: %s", leak.Token.Kind, leak.Token.Name, owner, rep.sourceOrUnknown())
	s.audit.Record(ctx, e)
}

// notice writes the mail telling the owner (or, for a project or
// repository token, its creator) that the token was revoked: which token,
// where it was found, when and from which address it was reported.
func (s *Service) notice(leak *backend.LeakedToken, secret string, rep report) []store.Mail {
	t := leak.Token
	if leak.Notify == nil || leak.Notify.Email == "" {
		s.log.Warn("leaked token revoked; nobody to tell by mail", "token_id", t.ID)
		return nil
	}
	what := "Your personal access token"
	switch t.Kind {
	case latch.CredProjectToken, latch.CredRepoToken:
		scope := "project"
		name := ""
		if leak.Project != nil {
			name = leak.Project.Key
		}
		if leak.Repo != nil {
			scope = "repository"
			name += "/" + leak.Repo.Slug
		}
		what = fmt.Sprintf("The %s access token you created for %s %s", scope, scope, name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q (id %s, %s) was revoked at %s because its secret was reported as leaked.\n\n",
		what, t.Name, t.ID, token.Redact(secret), rep.at.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "Where it was found: %s\n", rep.sourceOrUnknown())
	fmt.Fprintf(&b, "Reported from: %s\n", rep.from())
	fmt.Fprintf(&b, "Server: %s\n\n", s.links.BaseURL)
	b.WriteString("The token no longer works, and never will again. If something still needs access, create a new\n")
	b.WriteString("token for it, keep it out of source code, logs and chat, and check the audit trail for uses of\n")
	b.WriteString("the old one you do not recognise.\n\n-- latch\n")
	return []store.Mail{{
		To:      []string{leak.Notify.Email},
		Subject: fmt.Sprintf("[latch] Access token %q revoked: it leaked", t.Name),
		Body:    b.String(),
	}}
}
