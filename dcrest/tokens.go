package dcrest

import (
	"net/http"

	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/httpx"
)

// registerTokens adds /rest/access-tokens/{1.0,latest}/... to mux.
func (a *API) registerTokens(mux *http.ServeMux) {
	r := func(method, path string, h http.HandlerFunc) { Route(mux, method, "access-tokens", path, h) }
	for _, base := range []string{"/users/{userSlug}", "/projects/{projectKey}", "/projects/{projectKey}/repos/{repositorySlug}"} {
		r("GET", base, a.listTokens)
		r("PUT", base, a.createToken)
		r("GET", base+"/{tokenId}", a.getToken)
		r("POST", base+"/{tokenId}", a.updateToken)
		r("DELETE", base+"/{tokenId}", a.deleteToken)
	}
}

func tokenOwner(r *http.Request) backend.TokenOwnerRef {
	return backend.TokenOwnerRef{UserSlug: r.PathValue("userSlug"), ProjectKey: r.PathValue("projectKey"), RepoSlug: r.PathValue("repositorySlug")}
}

// tokenBody is RestAccessTokenRequest, plus latch's allowedCidrs.
type tokenBody struct {
	Name         *string   `json:"name"`
	Permissions  *[]string `json:"permissions"`
	ExpiryDays   *int      `json:"expiryDays"`
	AllowedCIDRs *[]string `json:"allowedCidrs"`
}

func (b tokenBody) input() backend.TokenInput {
	return backend.TokenInput{Name: b.Name, Permissions: b.Permissions, ExpiryDays: b.ExpiryDays, AllowedCIDRs: b.AllowedCIDRs}
}

// Token is the Data Center access token shape, with latch's extra fields.
type Token struct {
	ID                       string   `json:"id"`
	CreatedDate              int64    `json:"createdDate"`
	ExpiryDate               *int64   `json:"expiryDate,omitempty"`
	LastAuthenticated        *int64   `json:"lastAuthenticated,omitempty"`
	LastAuthenticatedAddress *string  `json:"lastAuthenticatedAddress,omitempty"`
	Name                     string   `json:"name"`
	Permissions              []string `json:"permissions"`
	AllowedCIDRs             []string `json:"allowedCidrs"`
	User                     User     `json:"user"`
	Token                    string   `json:"token,omitempty"`
}

// RenderToken renders a token; the secret is included only when v carries it.
func (l Links) RenderToken(v backend.TokenView) Token {
	t := Token{
		ID: v.ID, CreatedDate: v.CreatedAt, Name: v.Name, Permissions: backend.PermissionNames(v.Permissions),
		AllowedCIDRs: v.AllowedCIDRs, User: l.RenderUser(v.Owner), Token: v.Secret,
	}
	if t.AllowedCIDRs == nil {
		t.AllowedCIDRs = []string{}
	}
	if v.ExpiresAt != 0 {
		e := v.ExpiresAt
		t.ExpiryDate = &e
	}
	if v.LastAuthenticated != 0 {
		la := v.LastAuthenticated
		t.LastAuthenticated = &la
		if v.LastAddress != "" {
			addr := v.LastAddress
			t.LastAuthenticatedAddress = &addr
		}
	}
	return t
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.ListTokens(r.Context(), principal(r), tokenOwner(r), pg)
	replyPage(a, w, page, err, a.links.RenderToken)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var body tokenBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.CreateToken(r.Context(), principal(r), tokenOwner(r), body.input())
	reply(a, w, http.StatusOK, v, err, a.links.RenderToken)
}

func (a *API) getToken(w http.ResponseWriter, r *http.Request) {
	v, err := a.b.Token(r.Context(), principal(r), tokenOwner(r), r.PathValue("tokenId"))
	reply(a, w, http.StatusOK, v, err, a.links.RenderToken)
}

func (a *API) updateToken(w http.ResponseWriter, r *http.Request) {
	var body tokenBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.UpdateToken(r.Context(), principal(r), tokenOwner(r), r.PathValue("tokenId"), body.input())
	reply(a, w, http.StatusOK, v, err, a.links.RenderToken)
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request) {
	a.done(w, a.b.DeleteToken(r.Context(), principal(r), tokenOwner(r), r.PathValue("tokenId")))
}
