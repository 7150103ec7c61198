package dcrest

import (
	"net/http"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/store"
)

func principal(r *http.Request) *latch.Principal { return httpx.Principal(r.Context()) }

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, err := a.b.CreateUser(r.Context(), principal(r), backend.NewUser{
		Name: q.Get("name"), Password: q.Get("password"), DisplayName: q.Get("displayName"), Email: q.Get("emailAddress"),
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) adminSetPassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name            string `json:"name"`
		Password        string `json:"password"`
		PasswordConfirm string `json:"passwordConfirm"`
	}
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	a.done(w, a.b.SetUserPassword(r.Context(), principal(r), body.Name, body.Password, body.PasswordConfirm))
}

func (a *API) changeOwnPassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Password           string `json:"password"`
		PasswordNew        string `json:"passwordNew"`
		PasswordNewConfirm string `json:"passwordNewConfirm"`
	}
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	a.done(w, a.b.ChangePassword(r.Context(), principal(r), body.Password, body.PasswordNew, body.PasswordNewConfirm))
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.b.DeleteUser(r.Context(), principal(r), r.URL.Query().Get("name"))
	reply(a, w, http.StatusOK, u, err, a.links.RenderUser)
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.ListUsers(r.Context(), principal(r), r.URL.Query().Get("filter"), pg)
	replyPage(a, w, page, err, a.links.RenderUser)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.b.User(r.Context(), principal(r), r.PathValue("userSlug"))
	reply(a, w, http.StatusOK, u, err, a.links.RenderUser)
}

// group is the Data Center shape of a group.
type group struct {
	Name      string `json:"name"`
	Deletable bool   `json:"deletable"`
}

func renderGroup(g latch.Group) group { return group{Name: g.Name, Deletable: true} }

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.ListGroups(r.Context(), principal(r), r.URL.Query().Get("filter"), pg)
	replyPage(a, w, page, err, renderGroup)
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.b.CreateGroup(r.Context(), principal(r), r.URL.Query().Get("name"))
	reply(a, w, http.StatusOK, g, err, renderGroup)
}

func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) {
	g, err := a.b.DeleteGroup(r.Context(), principal(r), r.URL.Query().Get("name"))
	reply(a, w, http.StatusOK, g, err, renderGroup)
}

func (a *API) addUsersToGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Group string   `json:"group"`
		Users []string `json:"users"`
	}
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	a.done(w, a.b.AddUsersToGroup(r.Context(), principal(r), body.Group, body.Users))
}

func (a *API) removeUserFromGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Context  string `json:"context"`
		ItemName string `json:"itemName"`
	}
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	a.done(w, a.b.RemoveUserFromGroup(r.Context(), principal(r), body.Context, body.ItemName))
}

func permTarget(r *http.Request) backend.PermTarget {
	return backend.PermTarget{ProjectKey: r.PathValue("projectKey"), RepoSlug: r.PathValue("repositorySlug")}
}

type userPermission struct {
	User       User   `json:"user"`
	Permission string `json:"permission"`
}

type groupPermission struct {
	Group      group  `json:"group"`
	Permission string `json:"permission"`
}

func (a *API) listPermissions(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		pg, err := httpx.ParsePage(r)
		if err != nil {
			a.fail(w, err)
			return
		}
		filter := r.URL.Query().Get("filter")
		if kind == "groups" {
			page, err := a.b.GroupPermissions(r.Context(), principal(r), permTarget(r), filter, pg)
			if err != nil {
				a.fail(w, err)
				return
			}
			httpx.WriteJSON(w, http.StatusOK, RenderPage(page, func(g store.GroupGrant) groupPermission {
				return groupPermission{Group: renderGroup(g.Group), Permission: string(g.Permission)}
			}))
			return
		}
		page, err := a.b.UserPermissions(r.Context(), principal(r), permTarget(r), filter, pg)
		if err != nil {
			a.fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, RenderPage(page, func(g store.UserGrant) userPermission {
			return userPermission{User: a.links.RenderUser(g.User), Permission: string(g.Permission)}
		}))
	}
}

func subjectKind(kind string) backend.SubjectKind {
	if kind == "groups" {
		return backend.Groups
	}
	return backend.Users
}

func (a *API) setPermission(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := a.b.SetPermission(r.Context(), principal(r), permTarget(r), subjectKind(kind), q["name"], q.Get("permission")); err != nil {
			a.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *API) revokePermission(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.b.RevokePermission(r.Context(), principal(r), permTarget(r), subjectKind(kind), r.URL.Query().Get("name")); err != nil {
			a.fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

type projectBody struct {
	Key         *string `json:"key"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Public      *bool   `json:"public"`
}

func (p projectBody) input() backend.ProjectInput {
	return backend.ProjectInput{Key: p.Key, Name: p.Name, Description: p.Description, Public: p.Public}
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var perm latch.Permission
	if s := r.URL.Query().Get("permission"); s != "" {
		if perm, err = latch.ParsePermission(s, latch.ScopeProject); err != nil {
			a.fail(w, err)
			return
		}
	}
	page, err := a.b.ListProjects(r.Context(), principal(r), r.URL.Query().Get("name"), perm, pg)
	replyPage(a, w, page, err, a.links.RenderProject)
}

func (a *API) createProject(w http.ResponseWriter, r *http.Request) {
	var body projectBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	p, err := a.b.CreateProject(r.Context(), principal(r), body.input())
	reply(a, w, http.StatusCreated, p, err, a.links.RenderProject)
}

func (a *API) getProject(w http.ResponseWriter, r *http.Request) {
	p, err := a.b.Project(r.Context(), principal(r), r.PathValue("projectKey"))
	reply(a, w, http.StatusOK, p, err, a.links.RenderProject)
}

func (a *API) updateProject(w http.ResponseWriter, r *http.Request) {
	var body projectBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	p, err := a.b.UpdateProject(r.Context(), principal(r), r.PathValue("projectKey"), body.input())
	reply(a, w, http.StatusOK, p, err, a.links.RenderProject)
}

func (a *API) deleteProject(w http.ResponseWriter, r *http.Request) {
	a.done(w, a.b.DeleteProject(r.Context(), principal(r), r.PathValue("projectKey")))
}

type repoBody struct {
	Name          *string `json:"name"`
	Description   *string `json:"description"`
	Public        *bool   `json:"public"`
	DefaultBranch *string `json:"defaultBranch"`
	ScmID         *string `json:"scmId"`
	// Forkable is accepted for compatibility; latch has no forks, so
	// repositories always report forkable true.
	Forkable *bool `json:"forkable"`
}

func (b repoBody) input() (backend.RepoInput, error) {
	if b.ScmID != nil && *b.ScmID != "git" {
		return backend.RepoInput{}, latch.Invalidf("Only the git SCM is supported.")
	}
	return backend.RepoInput{Name: b.Name, Description: b.Description, Public: b.Public, DefaultBranch: b.DefaultBranch}, nil
}

func (a *API) listRepos(w http.ResponseWriter, r *http.Request) {
	a.repoList(w, r, r.PathValue("projectKey"))
}

func (a *API) listAllRepos(w http.ResponseWriter, r *http.Request) {
	a.repoList(w, r, r.URL.Query().Get("projectkey"))
}

func (a *API) repoList(w http.ResponseWriter, r *http.Request, projectKey string) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var perm latch.Permission
	if s := r.URL.Query().Get("permission"); s != "" {
		if perm, err = latch.ParsePermission(s, latch.ScopeRepo); err != nil {
			a.fail(w, err)
			return
		}
	}
	page, err := a.b.ListRepos(r.Context(), principal(r), projectKey, r.URL.Query().Get("name"), perm, pg)
	replyPage(a, w, page, err, a.links.RenderRepo)
}

func (a *API) createRepo(w http.ResponseWriter, r *http.Request) {
	var body repoBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	in, err := body.input()
	if err != nil {
		a.fail(w, err)
		return
	}
	repo, err := a.b.CreateRepo(r.Context(), principal(r), r.PathValue("projectKey"), in)
	reply(a, w, http.StatusCreated, repo, err, a.links.RenderRepo)
}

func (a *API) getRepo(w http.ResponseWriter, r *http.Request) {
	repo, err := a.b.Repo(r.Context(), principal(r), r.PathValue("projectKey"), r.PathValue("repositorySlug"))
	reply(a, w, http.StatusOK, repo, err, a.links.RenderRepo)
}

func (a *API) updateRepo(w http.ResponseWriter, r *http.Request) {
	var body repoBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	in, err := body.input()
	if err != nil {
		a.fail(w, err)
		return
	}
	repo, err := a.b.UpdateRepo(r.Context(), principal(r), r.PathValue("projectKey"), r.PathValue("repositorySlug"), in)
	reply(a, w, http.StatusOK, repo, err, a.links.RenderRepo)
}

func (a *API) deleteRepo(w http.ResponseWriter, r *http.Request) {
	if err := a.b.DeleteRepo(r.Context(), principal(r), r.PathValue("projectKey"), r.PathValue("repositorySlug")); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
