package dcrest

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/httpx"
	"github.com/latchhq/latch/store"
)

// registerKeys adds /rest/ssh/{1.0,latest}/keys (user SSH keys) and
// /rest/keys/{1.0,latest}/... (project and repository access keys) to mux.
func (a *API) registerKeys(mux *http.ServeMux) {
	ssh := func(method, path string, h http.HandlerFunc) { Route(mux, method, "ssh", path, h) }
	ssh("GET", "/keys", a.listUserKeys)
	ssh("POST", "/keys", a.addUserKey)
	ssh("DELETE", "/keys", a.deleteUserKeys)
	ssh("GET", "/keys/{keyId}", a.getUserKey)
	ssh("PUT", "/keys/{keyId}", a.updateUserKey)
	ssh("DELETE", "/keys/{keyId}", a.deleteUserKey)
	ssh("GET", "/settings", a.sshSettings)

	keys := func(method, path string, h http.HandlerFunc) { Route(mux, method, "keys", path, h) }
	for _, base := range []string{"/projects/{projectKey}/ssh", "/projects/{projectKey}/repos/{repositorySlug}/ssh"} {
		keys("GET", base, a.listAccessKeys)
		keys("POST", base, a.addAccessKey)
		keys("GET", base+"/{keyId}", a.getAccessKey)
		keys("DELETE", base+"/{keyId}", a.removeAccessKey)
		keys("PUT", base+"/{keyId}/permission/{permission}", a.setAccessKeyPermission)
	}
	keys("DELETE", "/ssh/{keyId}", a.revokeAccessKey)
	keys("PUT", "/ssh/{keyId}", a.updateAccessKey)
	keys("GET", "/ssh/{keyId}/repos", a.accessKeyRepos)
	keys("GET", "/ssh/{keyId}/projects", a.accessKeyProjects)
}

// SSHKey is RestSshKey.
type SSHKey struct {
	ID                int64   `json:"id"`
	Text              string  `json:"text"`
	Label             string  `json:"label"`
	Fingerprint       string  `json:"fingerprint"`
	AlgorithmType     string  `json:"algorithmType"`
	BitLength         int     `json:"bitLength"`
	CreatedDate       int64   `json:"createdDate"`
	ExpiryDays        int     `json:"expiryDays,omitempty"`
	LastAuthenticated *string `json:"lastAuthenticated,omitempty"`
}

// RenderSSHKey renders a key as Data Center does: the fingerprint is the
// unpadded base64 SHA-256 without OpenSSH's "SHA256:" prefix, expiryDays
// the days from createdDate to the expiry (absent for none), and
// lastAuthenticated epoch milliseconds as a string.
func RenderSSHKey(k store.SSHKey) SSHKey {
	fp := k.Fingerprint
	if len(fp) > 7 && fp[:7] == "SHA256:" {
		fp = fp[7:]
	}
	out := SSHKey{ID: k.ID, Text: k.Text, Label: k.Label, Fingerprint: fp, AlgorithmType: k.Algorithm, BitLength: k.Bits, CreatedDate: k.CreatedAt}
	out.ExpiryDays = k.ExpiryDays()
	if k.LastAuthenticated != 0 {
		s := strconv.FormatInt(k.LastAuthenticated, 10)
		out.LastAuthenticated = &s
	}
	return out
}

// AccessKey is RestSshAccessKey.
type AccessKey struct {
	Key        SSHKey      `json:"key"`
	Permission string      `json:"permission"`
	Project    *Project    `json:"project,omitempty"`
	Repository *Repository `json:"repository,omitempty"`
}

// RenderAccessKey renders an access key on one project or repository.
func (l Links) RenderAccessKey(v backend.AccessKeyView) AccessKey {
	out := AccessKey{Key: RenderSSHKey(v.Key), Permission: string(v.Permission)}
	if v.Repo != nil {
		r := *v.Repo
		if r.Project == nil {
			r.Project = v.Project
		}
		rr := l.RenderRepo(r)
		out.Repository = &rr
	} else if v.Project != nil {
		p := l.RenderProject(*v.Project)
		out.Project = &p
	}
	return out
}

// SSHSettings is RestSshSettings: whether SSH is on, and where and with
// which host key it answers.
type SSHSettings struct {
	Enabled           bool            `json:"enabled"`
	AccessKeysEnabled bool            `json:"accessKeysEnabled"`
	BaseURL           string          `json:"baseUrl,omitempty"`
	Port              int             `json:"port,omitempty"`
	Fingerprint       *SSHFingerprint `json:"fingerprint,omitempty"`
}

// SSHFingerprint is the fingerprint of the SSH host key: algorithm "SHA256"
// and the unpadded base64 digest, as RestSshKey fingerprints are written.
type SSHFingerprint struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

// sshSettings answers GET /rest/ssh/1.0/settings. Like ssh-keyscan, it tells
// anyone where SSH listens and which host key to expect, so it needs no
// authentication. baseUrl is "ssh://git@{host}:{port}": a repository's SSH
// clone URL is baseUrl + "/{project}/{slug}.git".
func (a *API) sshSettings(w http.ResponseWriter, r *http.Request) {
	out := SSHSettings{}
	if _, port, err := net.SplitHostPort(a.links.SSH); err == nil {
		out.Enabled, out.AccessKeysEnabled = true, true
		out.BaseURL = "ssh://git@" + a.links.SSH
		out.Port, _ = strconv.Atoi(port)
		if fp, ok := strings.CutPrefix(a.links.SSHHostKey, "SHA256:"); ok {
			out.Fingerprint = &SSHFingerprint{Algorithm: "SHA256", Value: fp}
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// keyBody is a RestSshKey request.
type keyBody struct {
	Text       *string `json:"text"`
	Label      *string `json:"label"`
	ExpiryDays *int    `json:"expiryDays"`
}

// accessKeyBody is a RestSshAccessKey request.
type accessKeyBody struct {
	Key        *keyBody `json:"key"`
	Permission string   `json:"permission"`
}

func keyID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("keyId"), 10, 64)
	if err != nil || id <= 0 {
		return 0, latch.Invalidf("The key id %q is not a positive whole number.", r.PathValue("keyId"))
	}
	return id, nil
}

// keyUserParam is the user whose keys a request names: ?user= or ?userName=.
func keyUserParam(r *http.Request) string {
	q := r.URL.Query()
	if u := q.Get("user"); u != "" {
		return u
	}
	return q.Get("userName")
}

func renderKeyView(v backend.KeyView) SSHKey { return RenderSSHKey(v.SSHKey) }

func (a *API) listUserKeys(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	page, err := a.b.ListUserKeys(r.Context(), principal(r), keyUserParam(r), r.URL.Query().Get("filter"), pg)
	replyPage(a, w, page, err, renderKeyView)
}

func (a *API) addUserKey(w http.ResponseWriter, r *http.Request) {
	var body keyBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.AddUserKey(r.Context(), principal(r), keyUserParam(r), backend.KeyInput{Text: body.Text, Label: body.Label, ExpiryDays: body.ExpiryDays, From: httpx.ClientAddr(r)})
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, RenderSSHKey(v.SSHKey))
}

func (a *API) deleteUserKeys(w http.ResponseWriter, r *http.Request) {
	a.done(w, a.b.DeleteUserKeys(r.Context(), principal(r), keyUserParam(r)))
}

func (a *API) getUserKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.UserKey(r.Context(), principal(r), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, RenderSSHKey(v.SSHKey))
}

// labelChange reads a label change of key {keyId}: the key text never
// changes. It answers the error itself and reports false on bad input.
func (a *API) labelChange(w http.ResponseWriter, r *http.Request, removeVerb string) (int64, string, bool) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return 0, "", false
	}
	var body keyBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return 0, "", false
	}
	if body.Text != nil {
		a.fail(w, latch.Invalidf("The text of an SSH key cannot be changed: add a new key and %s this one.", removeVerb))
		return 0, "", false
	}
	if body.ExpiryDays != nil {
		a.fail(w, latch.Invalidf("The expiry of an SSH key cannot be changed: add a new key and %s this one.", removeVerb))
		return 0, "", false
	}
	if body.Label == nil {
		a.fail(w, latch.Invalidf("A label is required."))
		return 0, "", false
	}
	return id, *body.Label, true
}

// updateUserKey changes a user key's label (latch extension: the key text
// itself never changes).
func (a *API) updateUserKey(w http.ResponseWriter, r *http.Request) {
	id, label, ok := a.labelChange(w, r, "delete")
	if !ok {
		return
	}
	v, err := a.b.UpdateUserKeyLabel(r.Context(), principal(r), id, label)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, RenderSSHKey(v.SSHKey))
}

func (a *API) deleteUserKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.done(w, a.b.DeleteUserKey(r.Context(), principal(r), id))
}

func keyResourceRef(r *http.Request) backend.KeyResourceRef {
	return backend.KeyResourceRef{ProjectKey: r.PathValue("projectKey"), RepoSlug: r.PathValue("repositorySlug")}
}

func (a *API) listAccessKeys(w http.ResponseWriter, r *http.Request) {
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	q := r.URL.Query()
	f := backend.AccessKeyFilter{Label: q.Get("filter"), Effective: q.Get("effective") == "true",
		Permission: q.Get("permission"), MinPermission: q.Get("minimumPermission")}
	page, err := a.b.ListAccessKeys(r.Context(), principal(r), keyResourceRef(r), f, pg)
	replyPage(a, w, page, err, a.links.RenderAccessKey)
}

func (a *API) addAccessKey(w http.ResponseWriter, r *http.Request) {
	var body accessKeyBody
	if err := httpx.DecodeJSON(w, r, &body, false); err != nil {
		a.fail(w, err)
		return
	}
	in := backend.KeyInput{Permission: body.Permission, From: httpx.ClientAddr(r)}
	if body.Key != nil {
		in.Text, in.Label, in.ExpiryDays = body.Key.Text, body.Key.Label, body.Key.ExpiryDays
	}
	v, err := a.b.AddAccessKey(r.Context(), principal(r), keyResourceRef(r), in)
	reply(a, w, http.StatusCreated, v, err, a.links.RenderAccessKey)
}

func (a *API) getAccessKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.AccessKey(r.Context(), principal(r), keyResourceRef(r), id)
	reply(a, w, http.StatusOK, v, err, a.links.RenderAccessKey)
}

func (a *API) removeAccessKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.done(w, a.b.RemoveAccessKey(r.Context(), principal(r), keyResourceRef(r), id))
}

func (a *API) setAccessKeyPermission(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	v, err := a.b.SetAccessKeyPermission(r.Context(), principal(r), keyResourceRef(r), id, r.PathValue("permission"))
	reply(a, w, http.StatusOK, v, err, a.links.RenderAccessKey)
}

// revokeBody is the body of DELETE /rest/keys/1.0/ssh/{keyId}.
type revokeBody struct {
	Projects []struct {
		Key string `json:"key"`
	} `json:"projects"`
	Repositories []struct {
		Slug    string `json:"slug"`
		Project struct {
			Key string `json:"key"`
		} `json:"project"`
	} `json:"repositories"`
}

func (a *API) revokeAccessKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var body revokeBody
	if err := httpx.DecodeJSON(w, r, &body, true); err != nil {
		a.fail(w, err)
		return
	}
	var where backend.KeyResources
	for _, p := range body.Projects {
		if p.Key == "" {
			a.fail(w, latch.Invalidf("Each project needs its key."))
			return
		}
		where.Projects = append(where.Projects, p.Key)
	}
	for _, repo := range body.Repositories {
		where.Repos = append(where.Repos, backend.KeyResourceRef{ProjectKey: repo.Project.Key, RepoSlug: repo.Slug})
	}
	a.done(w, a.b.RevokeAccessKey(r.Context(), principal(r), id, where))
}

// updateAccessKey changes an access key's label everywhere it is used
// (latch extension).
func (a *API) updateAccessKey(w http.ResponseWriter, r *http.Request) {
	id, label, ok := a.labelChange(w, r, "remove")
	if !ok {
		return
	}
	v, err := a.b.UpdateAccessKeyLabel(r.Context(), principal(r), id, label)
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, RenderSSHKey(v.SSHKey))
}

func (a *API) accessKeyUsages(w http.ResponseWriter, r *http.Request, projects bool) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	pg, err := httpx.ParsePage(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var page backend.Page[backend.AccessKeyView]
	if projects {
		page, err = a.b.AccessKeyProjects(r.Context(), principal(r), id, pg)
	} else {
		page, err = a.b.AccessKeyRepos(r.Context(), principal(r), id, pg)
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, RenderPage(page, a.links.RenderAccessKey))
}

func (a *API) accessKeyRepos(w http.ResponseWriter, r *http.Request) { a.accessKeyUsages(w, r, false) }
func (a *API) accessKeyProjects(w http.ResponseWriter, r *http.Request) {
	a.accessKeyUsages(w, r, true)
}
