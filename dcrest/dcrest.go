// Package dcrest serves the Bitbucket Data Center REST API under
// /rest/{api}/1.0/ and /rest/{api}/latest/: users, groups, permissions,
// projects and repositories. Handlers only translate: they parse the request,
// call the backend with the request's principal and render the Data Center
// shapes and envelopes.
package dcrest

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/httpx"
)

// Links builds the absolute URLs that responses carry.
type Links struct {
	// BaseURL is the server's public base URL without a trailing slash.
	BaseURL string
	// SSH is the host:port of the public SSH endpoint, "" when SSH is off.
	SSH string
	// SSHHostKey is the SHA-256 fingerprint of the SSH host key as OpenSSH
	// prints it ("SHA256:…"), "" when SSH is off.
	SSHHostKey string
}

// HTTPClone returns the HTTP clone URL of a repository.
func (l Links) HTTPClone(projectKey, slug string) string {
	return l.BaseURL + "/scm/" + strings.ToLower(projectKey) + "/" + slug + ".git"
}

// SSHClone returns the SSH clone URL of a repository, "" when SSH is off.
func (l Links) SSHClone(projectKey, slug string) string {
	if l.SSH == "" {
		return ""
	}
	return "ssh://git@" + l.SSH + "/" + strings.ToLower(projectKey) + "/" + slug + ".git"
}

// API serves the Data Center REST core.
type API struct {
	b     *backend.Backend
	links Links
	log   *slog.Logger
}

// New returns the Data Center REST API over b.
func New(b *backend.Backend, links Links, log *slog.Logger) *API {
	return &API{b: b, links: links, log: log}
}

// Route registers a handler for method and path under /rest/{api}/1.0 and
// /rest/{api}/latest, e.g. Route(mux, "GET", "api", "/projects", h).
func Route(mux *http.ServeMux, method, api, path string, h http.HandlerFunc) {
	for _, p := range Patterns(method, api, path) {
		mux.HandleFunc(p, h)
	}
}

// Patterns returns the http.ServeMux patterns Route registers.
func Patterns(method, api, path string) []string {
	return []string{method + " /rest/" + api + "/1.0" + path, method + " /rest/" + api + "/latest" + path}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	r := func(method, path string, h http.HandlerFunc) { Route(mux, method, "api", path, h) }
	r("POST", "/admin/users", a.createUser)
	r("DELETE", "/admin/users", a.deleteUser)
	r("GET", "/admin/users", a.listUsers)
	r("GET", "/users", a.listUsers)
	r("GET", "/users/{userSlug}", a.getUser)
	r("PUT", "/admin/users/credentials", a.adminSetPassword)
	r("PUT", "/users/credentials", a.changeOwnPassword)
	r("GET", "/admin/groups", a.listGroups)
	r("POST", "/admin/groups", a.createGroup)
	r("DELETE", "/admin/groups", a.deleteGroup)
	r("POST", "/admin/groups/add-users", a.addUsersToGroup)
	r("POST", "/admin/groups/remove-user", a.removeUserFromGroup)
	for _, kind := range []string{"users", "groups"} {
		r("GET", "/admin/permissions/"+kind, a.listPermissions(kind))
		r("PUT", "/admin/permissions/"+kind, a.setPermission(kind))
		r("DELETE", "/admin/permissions/"+kind, a.revokePermission(kind))
		r("GET", "/projects/{projectKey}/permissions/"+kind, a.listPermissions(kind))
		r("PUT", "/projects/{projectKey}/permissions/"+kind, a.setPermission(kind))
		r("DELETE", "/projects/{projectKey}/permissions/"+kind, a.revokePermission(kind))
		r("GET", "/projects/{projectKey}/repos/{repositorySlug}/permissions/"+kind, a.listPermissions(kind))
		r("PUT", "/projects/{projectKey}/repos/{repositorySlug}/permissions/"+kind, a.setPermission(kind))
		r("DELETE", "/projects/{projectKey}/repos/{repositorySlug}/permissions/"+kind, a.revokePermission(kind))
	}
	r("GET", "/projects", a.listProjects)
	r("POST", "/projects", a.createProject)
	r("GET", "/projects/{projectKey}", a.getProject)
	r("PUT", "/projects/{projectKey}", a.updateProject)
	r("DELETE", "/projects/{projectKey}", a.deleteProject)
	r("GET", "/projects/{projectKey}/repos", a.listRepos)
	r("POST", "/projects/{projectKey}/repos", a.createRepo)
	r("GET", "/projects/{projectKey}/repos/{repositorySlug}", a.getRepo)
	r("PUT", "/projects/{projectKey}/repos/{repositorySlug}", a.updateRepo)
	r("DELETE", "/projects/{projectKey}/repos/{repositorySlug}", a.deleteRepo)
	r("GET", "/repos", a.listAllRepos)
	a.registerTokens(mux)
	a.registerKeys(mux)
}

// ErrorBody is the Data Center error envelope.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// ErrorItem is one entry of the Data Center error envelope.
type ErrorItem struct {
	Context       *string `json:"context"`
	Message       string  `json:"message"`
	ExceptionName *string `json:"exceptionName"`
}

// WriteError renders err in the Data Center error envelope with the status
// it maps to. Unknown errors are logged and answered with a generic 500.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	WriteErrorStatus(w, log, httpx.Status(err), err)
}

// WriteErrorStatus renders err in the Data Center error envelope with the
// given status.
func WriteErrorStatus(w http.ResponseWriter, log *slog.Logger, status int, err error) {
	msg := err.Error()
	var ex string
	var le *latch.Error
	if errors.As(err, &le) {
		msg, ex = le.Message, le.Exception
	}
	if d, ok := backend.IsDenied(err); ok {
		msg = "You are not permitted to access this resource"
		if d.Reason != "" {
			msg = d.Reason
		} else if d.Required != "" {
			msg += ": " + string(d.Required) + " permission required"
		}
		ex = latch.ExAuthorisation
	}
	if ex == "" {
		switch status {
		case http.StatusBadRequest:
			ex = latch.ExValidation
		case http.StatusConflict:
			ex = latch.ExDuplicate
		case http.StatusTooManyRequests:
			ex = latch.ExRateLimited
		}
	}
	if status == http.StatusInternalServerError {
		log.Error("request failed", "err", err)
		msg = "An internal error occurred."
	}
	if status == http.StatusUnauthorized && ex == "" {
		ex = latch.ExAuthentication
	}
	item := ErrorItem{Message: msg}
	if ex != "" {
		item.ExceptionName = &ex
	}
	httpx.WriteJSON(w, status, ErrorBody{Errors: []ErrorItem{item}})
}

func (a *API) fail(w http.ResponseWriter, err error) { WriteError(w, a.log, err) }

// done answers 204 No Content, or err in the envelope.
func (a *API) done(w http.ResponseWriter, err error) {
	if err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reply answers render(*v) with status, or err in the envelope.
func reply[T, U any](a *API, w http.ResponseWriter, status int, v *T, err error, render func(T) U) {
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, status, render(*v))
}

// replyPage answers a page rendered item by item, or err in the envelope.
func replyPage[T, U any](a *API, w http.ResponseWriter, page backend.Page[T], err error, render func(T) U) {
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, RenderPage(page, render))
}

// PageBody is the Data Center paged envelope.
type PageBody[T any] struct {
	Size          int  `json:"size"`
	Limit         int  `json:"limit"`
	IsLastPage    bool `json:"isLastPage"`
	Start         int  `json:"start"`
	NextPageStart *int `json:"nextPageStart,omitempty"`
	Values        []T  `json:"values"`
}

// RenderPage converts a backend page to the envelope, mapping each value.
func RenderPage[T, U any](p backend.Page[T], f func(T) U) PageBody[U] {
	out := PageBody[U]{Size: len(p.Values), Limit: p.Limit, IsLastPage: p.IsLastPage, Start: p.Start, Values: make([]U, 0, len(p.Values))}
	for _, v := range p.Values {
		out.Values = append(out.Values, f(v))
	}
	if !p.IsLastPage {
		n := p.NextPageStart()
		out.NextPageStart = &n
	}
	return out
}

// LinkSet is a Data Center "links" object. A struct, not a map: it encodes
// in the same order ("clone" before "self") without sorting keys per request.
type LinkSet struct {
	Clone []Link `json:"clone,omitempty"`
	Self  []Link `json:"self"`
}

// Link is a Data Center link object.
type Link struct {
	Href string `json:"href"`
	Name string `json:"name,omitempty"`
}

// User is RestApplicationUser.
type User struct {
	Name         string  `json:"name"`
	EmailAddress *string `json:"emailAddress"`
	ID           int64   `json:"id"`
	DisplayName  string  `json:"displayName"`
	Active       bool    `json:"active"`
	Slug         string  `json:"slug"`
	Type         string  `json:"type"`
	Links        LinkSet `json:"links"`
}

// RenderUser renders a user as Data Center does.
func (l Links) RenderUser(u latch.User) User {
	var email *string
	if u.Email != "" {
		e := u.Email
		email = &e
	}
	return User{
		Name: u.Name, EmailAddress: email, ID: u.ID, DisplayName: u.DisplayName, Active: u.Active,
		Slug: u.Slug, Type: string(u.Type),
		Links: LinkSet{Self: []Link{{Href: l.BaseURL + "/users/" + url.PathEscape(u.Slug)}}},
	}
}

// Project is RestProject.
type Project struct {
	Key         string  `json:"key"`
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Public      bool    `json:"public"`
	Type        string  `json:"type"`
	Links       LinkSet `json:"links"`
}

// RenderProject renders a project as Data Center does.
func (l Links) RenderProject(p latch.Project) Project {
	return Project{
		Key: p.Key, ID: p.ID, Name: p.Name, Description: p.Description, Public: p.Public, Type: "NORMAL",
		Links: LinkSet{Self: []Link{{Href: l.BaseURL + "/projects/" + p.Key}}},
	}
}

// Repository is RestRepository.
type Repository struct {
	Slug          string  `json:"slug"`
	ID            int64   `json:"id"`
	Name          string  `json:"name"`
	Description   string  `json:"description,omitempty"`
	HierarchyID   string  `json:"hierarchyId"`
	ScmID         string  `json:"scmId"`
	State         string  `json:"state"`
	StatusMessage string  `json:"statusMessage"`
	Forkable      bool    `json:"forkable"`
	Project       Project `json:"project"`
	Public        bool    `json:"public"`
	Archived      bool    `json:"archived"`
	DefaultBranch string  `json:"defaultBranch,omitempty"`
	Links         LinkSet `json:"links"`
}

// RenderRepo renders a repository (with its Project set) as Data Center does.
func (l Links) RenderRepo(r latch.Repository) Repository {
	var proj latch.Project
	if r.Project != nil {
		proj = *r.Project
	}
	clone := []Link{{Href: l.HTTPClone(proj.Key, r.Slug), Name: "http"}}
	if s := l.SSHClone(proj.Key, r.Slug); s != "" {
		clone = append(clone, Link{Href: s, Name: "ssh"})
	}
	return Repository{
		Slug: r.Slug, ID: r.ID, Name: r.Name, Description: r.Description,
		HierarchyID: hierarchyID(r.ID), ScmID: "git", State: "AVAILABLE", StatusMessage: "Available",
		Forkable: true, Project: l.RenderProject(proj), Public: r.Public, DefaultBranch: r.DefaultBranch,
		Links: LinkSet{
			Clone: clone,
			Self:  []Link{{Href: l.BaseURL + "/projects/" + proj.Key + "/repos/" + r.Slug + "/browse"}},
		},
	}
}

// hierarchyID derives a stable 20-hex-digit id from the repository id, the
// shape Data Center uses.
func hierarchyID(id int64) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 20)
	v := uint64(id)*0x9E3779B97F4A7C15 ^ 0x5bd1e995
	for i := range b {
		b[i] = hex[v&15]
		v = v>>4 | v<<60
	}
	return string(b)
}
