// Package latchrest serves latch's own REST API under /rest/latch/1.0/ (and
// /latest/): administrator settings, the audit trail and token rotation,
// with the Data Center error and paging envelopes.
package latchrest

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/store"
)

// API serves /rest/latch/1.0/.
type API struct {
	b        *backend.Backend
	settings backend.SettingsUpdater
	links    dcrest.Links
	log      *slog.Logger
}

// New returns the API.
func New(b *backend.Backend, settings backend.SettingsUpdater, links dcrest.Links, log *slog.Logger) *API {
	return &API{b: b, settings: settings, links: links, log: log}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	r := func(method, path string, h http.HandlerFunc) { dcrest.Route(mux, method, "latch", path, h) }
	r("GET", "/admin/settings", a.getSettings)
	r("PUT", "/admin/settings", a.putSettings)
	r("GET", "/admin/audit", a.listAudit)
	r("POST", "/access-tokens/{tokenId}/rotate", a.rotate)
	r("PUT", "/admin/users/{userSlug}/active", a.setActive)
}

func (a *API) setActive(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Active *bool `json:"active"`
	}
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	if body.Active == nil {
		a.fail(w, httpx.Invalid("The active field is required."))
		return
	}
	u, err := a.b.SetUserActive(r.Context(), httpx.Principal(r.Context()), r.PathValue("userSlug"), *body.Active)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, a.links.RenderUser(*u))
}

func (a *API) fail(w http.ResponseWriter, err error) { dcrest.WriteError(w, a.log, err) }

func (a *API) getSettings(w http.ResponseWriter, r *http.Request) {
	s, err := a.b.Settings(r.Context(), httpx.Principal(r.Context()))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s)
}

func (a *API) putSettings(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		a.fail(w, httpx.TooLarge())
		return
	}
	s, err := a.b.UpdateSettings(r.Context(), httpx.Principal(r.Context()), a.settings, body)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, s)
}

// event is the REST shape of an audit event.
type event struct {
	ID             int64  `json:"id"`
	Timestamp      int64  `json:"timestamp"`
	Type           string `json:"type"`
	Actor          *actor `json:"actor,omitempty"`
	CredentialKind string `json:"credentialKind,omitempty"`
	CredentialID   string `json:"credentialId,omitempty"`
	Target         string `json:"target,omitempty"`
	Address        string `json:"address,omitempty"`
	UserAgent      string `json:"userAgent,omitempty"`
	Outcome        string `json:"outcome"`
	Detail         string `json:"detail,omitempty"`
}

type actor struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func renderEvent(e store.AuditEvent) event {
	out := event{ID: e.ID, Timestamp: e.Time, Type: e.Type, CredentialKind: e.CredentialKind, CredentialID: e.CredentialID,
		Target: e.Target, Address: e.Address, UserAgent: e.UserAgent, Outcome: e.Outcome, Detail: e.Detail}
	if e.ActorID != 0 || e.ActorName != "" {
		out.Actor = &actor{ID: e.ActorID, Name: e.ActorName}
	}
	return out
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	q := r.URL.Query()
	f := store.AuditFilter{Type: q.Get("type"), Actor: q.Get("actor")}
	for name, dst := range map[string]*int64{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				a.fail(w, httpx.Invalid("The %s parameter must be epoch milliseconds.", name))
				return
			}
			*dst = n
		}
	}
	page, err := a.b.Audit(r.Context(), httpx.Principal(r.Context()), f, pg)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, dcrest.RenderPage(page, renderEvent))
}

func (a *API) rotate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GraceSeconds int `json:"graceSeconds"`
	}
	if err := httpx.DecodeJSON(w, r, &body, true); err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.RotateToken(r.Context(), httpx.Principal(r.Context()), r.PathValue("tokenId"), body.GraceSeconds)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, a.links.RenderToken(*v))
}
