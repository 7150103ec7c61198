package e2e

// The REST user journey of issue 2: status, users, groups, global
// permissions, projects, repositories and their permissions, on both
// /rest/api/1.0 and /rest/api/latest.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

var apiVersions = []string{"1.0", "latest"}

var userShape = map[string]string{
	"name": "string", "emailAddress": "string", "id": "number", "displayName": "string",
	"active": "bool", "slug": "string", "type": "string", "links": "object", "links.self": "array",
}

var projectShape = map[string]string{
	"key": "string", "id": "number", "name": "string", "public": "bool", "type": "string",
	"links": "object", "links.self": "array",
}

var repoShape = map[string]string{
	"slug": "string", "id": "number", "name": "string", "scmId": "string", "state": "string",
	"forkable": "bool", "project": "object", "project.key": "string", "public": "bool",
	"archived": "bool", "links": "object", "links.clone": "array", "links.self": "array",
}

func TestStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	st, b, _ := s.do(t, http.MethodGet, "/status", "", "", nil)
	mustStatus(t, "GET /status", st, b, http.StatusOK)
	got := decodeJSON[map[string]any](t, b)
	if got["state"] != "RUNNING" {
		t.Errorf("GET /status = %s, want {\"state\":\"RUNNING\"}", b)
	}
}

func findUser(vs []restUser, name string) (restUser, bool) {
	for _, u := range vs {
		if u.Name == name {
			return u, true
		}
	}
	return restUser{}, false
}

func findUserPerm(vs []userPermission, name string) []string {
	var ps []string
	for _, v := range vs {
		if v.User.Name == name {
			ps = append(ps, v.Permission)
		}
	}
	return ps
}

func findGroupPerm(vs []groupPermission, name string) []string {
	var ps []string
	for _, v := range vs {
		if v.Group.Name == name {
			ps = append(ps, v.Permission)
		}
	}
	return ps
}

func TestUsersGroupsAndGlobalPermissions(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	// Users are created with query parameters; Data Center answers 204.
	alice := testUser{Name: "alice", Password: "pw-" + randomHex(10), Email: "alice@example.com", DisplayName: "Alice Example"}
	s.addSecret(alice.Password)
	createPath := "/rest/api/1.0/admin/users?" + url.Values{
		"name": {alice.Name}, "password": {alice.Password},
		"displayName": {alice.DisplayName}, "emailAddress": {alice.Email},
	}.Encode()
	st, b := s.asAdmin(t, http.MethodPost, createPath, nil)
	mustStatus(t, "POST admin/users", st, b, http.StatusNoContent)
	if len(bytes.TrimSpace(b)) != 0 {
		t.Errorf("204 with a body: %s", truncate(b, 200))
	}
	st, b = s.asAdmin(t, http.MethodPost, createPath, nil)
	expectStatus(t, "POST admin/users with an existing name", st, b, http.StatusConflict)

	bob := s.createUser(t, "bob")
	carol := s.createUser(t, "Carol.Smith")

	t.Run("list users", func(t *testing.T) {
		for _, api := range apiVersions {
			p := "/rest/api/" + api + "/users"
			st, b, _ := s.do(t, http.MethodGet, p, bob.Name, bob.Password, nil)
			mustStatus(t, "GET "+p+" as a normal user", st, b, http.StatusOK)
			pg := decodeJSON[page[restUser]](t, b)
			for _, name := range []string{"alice", "bob", "Carol.Smith", "admin"} {
				if _, ok := findUser(pg.Values, name); !ok {
					t.Errorf("GET %s: user %s missing from %s", p, name, truncate(b, 500))
				}
			}
			raw := decodeJSON[struct {
				Values []jsonRaw `json:"values"`
			}](t, b)
			for i, v := range raw.Values {
				checkShape(t, fmt.Sprintf("%s values[%d]", p, i), v, userShape)
			}
		}
		pg := getJSON[page[restUser]](t, s, "/rest/api/1.0/users?filter=ali", bob.Name, bob.Password)
		if _, ok := findUser(pg.Values, "alice"); !ok {
			t.Errorf("GET users?filter=ali: alice missing")
		}
		if _, ok := findUser(pg.Values, "bob"); ok {
			t.Errorf("GET users?filter=ali: bob listed")
		}
	})

	t.Run("get user", func(t *testing.T) {
		var ids []int64
		for _, api := range apiVersions {
			p := "/rest/api/" + api + "/users/alice"
			st, b, _ := s.do(t, http.MethodGet, p, bob.Name, bob.Password, nil)
			mustStatus(t, "GET "+p, st, b, http.StatusOK)
			checkShape(t, p, b, userShape)
			u := decodeJSON[restUser](t, b)
			if u.Name != "alice" || u.EmailAddress != alice.Email || u.DisplayName != alice.DisplayName ||
				!u.Active || u.Slug != "alice" || u.Type != "NORMAL" || u.ID <= 0 {
				t.Errorf("GET %s = %+v", p, u)
			}
			if len(u.Links.Self) == 0 || !strings.HasPrefix(u.Links.Self[0].Href, s.URL) ||
				!strings.Contains(u.Links.Self[0].Href, "/users/alice") {
				t.Errorf("GET %s: links.self = %+v, want %s…/users/alice", p, u.Links.Self, s.URL)
			}
			ids = append(ids, u.ID)
		}
		if ids[0] != ids[1] {
			t.Errorf("1.0 and latest disagree on alice's id: %v", ids)
		}
		u := getJSON[restUser](t, s, "/rest/api/1.0/users/carol.smith", bob.Name, bob.Password)
		if u.Name != "Carol.Smith" || u.Slug != "carol.smith" {
			t.Errorf("GET users/carol.smith = name %q slug %q, want Carol.Smith / carol.smith", u.Name, u.Slug)
		}
		st, b, _ := s.do(t, http.MethodGet, "/rest/api/1.0/users/nosuchuser", bob.Name, bob.Password, nil)
		if expectStatus(t, "GET users/nosuchuser", st, b, http.StatusNotFound) {
			checkError(t, "GET users/nosuchuser", b, exNoSuchUser)
		}
	})

	t.Run("groups", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups?name=devs", nil)
		mustStatus(t, "POST admin/groups?name=devs", st, b, http.StatusOK, http.StatusCreated, http.StatusNoContent)
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups?name=devs", nil)
		expectStatus(t, "POST admin/groups?name=devs again", st, b, http.StatusConflict)
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups/add-users",
			map[string]any{"group": "devs", "users": []string{"bob", "Carol.Smith"}})
		mustStatus(t, "POST admin/groups/add-users", st, b, http.StatusOK, http.StatusNoContent)
	})

	t.Run("global permissions", func(t *testing.T) {
		for i, api := range apiVersions {
			users := "/rest/api/" + api + "/admin/permissions/users"
			groups := "/rest/api/" + api + "/admin/permissions/groups"

			all := allPages[userPermission](t, s, users, adminName, s.AdminPassword)
			if ps := findUserPerm(all, "admin"); !slices.Equal(ps, []string{"SYS_ADMIN"}) {
				t.Errorf("GET %s: admin has %v, want [SYS_ADMIN]", users, ps)
			}

			// A user grant: PROJECT_CREATE lets alice create a project.
			key := fmt.Sprintf("ALICE%d", i)
			st, b, _ := s.do(t, http.MethodPost, "/rest/api/"+api+"/projects", alice.Name, alice.Password,
				map[string]any{"key": key, "name": "Alice " + api})
			expectStatus(t, "alice creates a project without PROJECT_CREATE", st, b, http.StatusUnauthorized)

			st, b = s.asAdmin(t, http.MethodPut, users+"?name=alice&permission=PROJECT_CREATE", nil)
			mustStatus(t, "PUT "+users+" PROJECT_CREATE", st, b, http.StatusNoContent)
			all = allPages[userPermission](t, s, users, adminName, s.AdminPassword)
			if ps := findUserPerm(all, "alice"); !slices.Equal(ps, []string{"PROJECT_CREATE"}) {
				t.Errorf("GET %s: alice has %v, want [PROJECT_CREATE]", users, ps)
			}
			raw := decodeJSON[struct {
				Values []struct {
					User       jsonRaw `json:"user"`
					Permission string  `json:"permission"`
				} `json:"values"`
			}](t, mustGet(t, s, users+"?limit=1000", adminName, s.AdminPassword))
			for _, v := range raw.Values {
				checkShape(t, users+" user", v.User, userShape)
			}
			st, b, _ = s.do(t, http.MethodPost, "/rest/api/"+api+"/projects", alice.Name, alice.Password,
				map[string]any{"key": key, "name": "Alice " + api})
			expectStatus(t, "alice creates a project with PROJECT_CREATE", st, b, http.StatusCreated)

			// A second PUT replaces the level.
			st, b = s.asAdmin(t, http.MethodPut, users+"?name=alice&permission=ADMIN", nil)
			mustStatus(t, "PUT "+users+" ADMIN", st, b, http.StatusNoContent)
			all = allPages[userPermission](t, s, users, adminName, s.AdminPassword)
			if ps := findUserPerm(all, "alice"); !slices.Equal(ps, []string{"ADMIN"}) {
				t.Errorf("GET %s: alice has %v, want [ADMIN]", users, ps)
			}
			st, b, _ = s.do(t, http.MethodGet, users, alice.Name, alice.Password, nil)
			expectStatus(t, "ADMIN alice reads global permissions", st, b, http.StatusOK)

			st, b = s.asAdmin(t, http.MethodDelete, users+"?name=alice", nil)
			mustStatus(t, "DELETE "+users, st, b, http.StatusNoContent)
			all = allPages[userPermission](t, s, users, adminName, s.AdminPassword)
			if ps := findUserPerm(all, "alice"); len(ps) != 0 {
				t.Errorf("GET %s after DELETE: alice still has %v", users, ps)
			}
			st, b, _ = s.do(t, http.MethodGet, users, alice.Name, alice.Password, nil)
			if expectStatus(t, "alice reads global permissions after revocation", st, b, http.StatusUnauthorized) {
				checkError(t, "alice reads global permissions", b, exAuthorisation)
			}

			// A group grant: bob is in devs.
			gkey := fmt.Sprintf("DEVS%d", i)
			st, b = s.asAdmin(t, http.MethodPut, groups+"?name=devs&permission=PROJECT_CREATE", nil)
			mustStatus(t, "PUT "+groups+" PROJECT_CREATE", st, b, http.StatusNoContent)
			gall := allPages[groupPermission](t, s, groups, adminName, s.AdminPassword)
			if ps := findGroupPerm(gall, "devs"); !slices.Equal(ps, []string{"PROJECT_CREATE"}) {
				t.Errorf("GET %s: devs has %v, want [PROJECT_CREATE]", groups, ps)
			}
			st, b, _ = s.do(t, http.MethodPost, "/rest/api/"+api+"/projects", bob.Name, bob.Password,
				map[string]any{"key": gkey, "name": "Devs " + api})
			expectStatus(t, "bob (in devs) creates a project", st, b, http.StatusCreated)

			st, b = s.asAdmin(t, http.MethodPut, groups+"?name=devs&permission=LICENSED_USER", nil)
			mustStatus(t, "PUT "+groups+" LICENSED_USER", st, b, http.StatusNoContent)
			gall = allPages[groupPermission](t, s, groups, adminName, s.AdminPassword)
			if ps := findGroupPerm(gall, "devs"); !slices.Equal(ps, []string{"LICENSED_USER"}) {
				t.Errorf("GET %s: devs has %v, want [LICENSED_USER]", groups, ps)
			}
			st, b = s.asAdmin(t, http.MethodDelete, groups+"?name=devs", nil)
			mustStatus(t, "DELETE "+groups, st, b, http.StatusNoContent)
			gall = allPages[groupPermission](t, s, groups, adminName, s.AdminPassword)
			if ps := findGroupPerm(gall, "devs"); len(ps) != 0 {
				t.Errorf("GET %s after DELETE: devs still has %v", groups, ps)
			}
			st, b, _ = s.do(t, http.MethodPost, "/rest/api/"+api+"/projects", bob.Name, bob.Password,
				map[string]any{"key": gkey + "X", "name": "Devs X " + api})
			expectStatus(t, "bob creates a project after the group grant is gone", st, b, http.StatusUnauthorized)
		}
	})

	t.Run("delete user", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/admin/users?name="+url.QueryEscape(carol.Name), nil)
		mustStatus(t, "DELETE admin/users?name=Carol.Smith", st, b, http.StatusOK, http.StatusNoContent)
		st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/users/carol.smith", bob.Name, bob.Password, nil)
		expectStatus(t, "GET a deleted user", st, b, http.StatusNotFound)
		st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/users", carol.Name, carol.Password, nil)
		expectStatus(t, "a deleted user's password", st, b, http.StatusUnauthorized)
		pg := getJSON[page[restUser]](t, s, "/rest/api/1.0/users?limit=1000", bob.Name, bob.Password)
		if _, ok := findUser(pg.Values, "Carol.Smith"); ok {
			t.Errorf("deleted user still listed")
		}
	})
}

// jsonRaw is a raw JSON value.
type jsonRaw = json.RawMessage

func mustGet(t testing.TB, s *Server, path, user, pass string) []byte {
	t.Helper()
	st, b, _ := s.do(t, http.MethodGet, path, user, pass, nil)
	mustStatus(t, "GET "+path, st, b, http.StatusOK)
	return b
}

func cloneLinks(r restRepo) map[string]string {
	m := map[string]string{}
	for _, l := range r.Links.Clone {
		m[l.Name] = l.Href
	}
	return m
}

// checkRepo checks a RestRepository against the expected key, slug and name.
func checkRepo(t testing.TB, s *Server, what string, raw []byte, key, slug, name string) restRepo {
	t.Helper()
	checkShape(t, what, raw, repoShape)
	r := decodeJSON[restRepo](t, raw)
	if r.Slug != slug || r.Name != name || r.ScmID != "git" || r.State != "AVAILABLE" ||
		!r.Forkable || r.Public || r.Archived || r.ID <= 0 || r.Project.Key != key {
		t.Errorf("%s: got slug=%q name=%q scmId=%q state=%q forkable=%v public=%v archived=%v id=%d project.key=%q; "+
			"want slug=%q name=%q scmId=git state=AVAILABLE forkable=true public=false archived=false project.key=%q",
			what, r.Slug, r.Name, r.ScmID, r.State, r.Forkable, r.Public, r.Archived, r.ID, r.Project.Key, slug, name, key)
	}
	lower := strings.ToLower(key)
	want := map[string]string{
		"http": s.URL + "/scm/" + lower + "/" + slug + ".git",
		"ssh":  "ssh://git@" + s.SSHAddr + "/" + lower + "/" + slug + ".git",
	}
	if got := cloneLinks(r); len(r.Links.Clone) != 2 || got["http"] != want["http"] || got["ssh"] != want["ssh"] {
		t.Errorf("%s: links.clone = %+v, want %v", what, r.Links.Clone, want)
	}
	if len(r.Links.Self) == 0 || !strings.HasPrefix(r.Links.Self[0].Href, s.URL) ||
		!strings.Contains(r.Links.Self[0].Href, "/projects/"+key+"/repos/"+slug) {
		t.Errorf("%s: links.self = %+v", what, r.Links.Self)
	}
	return r
}

func checkProject(t testing.TB, s *Server, what string, raw []byte, key, name, desc string) restProject {
	t.Helper()
	checkShape(t, what, raw, projectShape)
	p := decodeJSON[restProject](t, raw)
	if p.Key != key || p.Name != name || p.Description != desc || p.Public || p.Type != "NORMAL" || p.ID <= 0 {
		t.Errorf("%s = %+v, want key=%s name=%q description=%q public=false type=NORMAL", what, p, key, name, desc)
	}
	if len(p.Links.Self) == 0 || !strings.HasPrefix(p.Links.Self[0].Href, s.URL) ||
		!strings.Contains(p.Links.Self[0].Href, "/projects/"+key) {
		t.Errorf("%s: links.self = %+v", what, p.Links.Self)
	}
	return p
}

func TestProjectsAndRepositories(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const key = "JRN"

	var proj restProject
	t.Run("create project", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects",
			map[string]any{"key": key, "name": "Journey", "description": "The journey project"})
		mustStatus(t, "POST projects", st, b, http.StatusCreated)
		proj = checkProject(t, s, "POST projects", b, key, "Journey", "The journey project")

		for _, api := range apiVersions {
			p := "/rest/api/" + api + "/projects/" + key
			got := checkProject(t, s, "GET "+p, mustGet(t, s, p, adminName, s.AdminPassword), key, "Journey", "The journey project")
			if got.ID != proj.ID {
				t.Errorf("GET %s: id %d, created %d", p, got.ID, proj.ID)
			}
			list := allPages[restProject](t, s, "/rest/api/"+api+"/projects", adminName, s.AdminPassword)
			if !slices.ContainsFunc(list, func(p restProject) bool { return p.Key == key }) {
				t.Errorf("GET /rest/api/%s/projects does not list %s", api, key)
			}
		}

		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects", map[string]any{"key": key, "name": "Other name"})
		if expectStatus(t, "POST projects with a key in use", st, b, http.StatusConflict) {
			checkError(t, "duplicate project key", b, "")
		}
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects", map[string]any{"key": "JRNTWO", "name": "Journey"})
		if expectStatus(t, "POST projects with a name in use", st, b, http.StatusConflict) {
			checkError(t, "duplicate project name", b, "")
		}
		// 128 characters is the longest valid key.
		long := "L" + strings.Repeat("x", 127)
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects", map[string]any{"key": long, "name": "Long key"})
		expectStatus(t, "POST projects with a 128-character key", st, b, http.StatusCreated)
	})

	t.Run("update project", func(t *testing.T) {
		for i, api := range apiVersions {
			p := "/rest/api/" + api + "/projects/" + key
			name := fmt.Sprintf("Journey %d", i)
			st, b := s.asAdmin(t, http.MethodPut, p, map[string]any{"name": name, "description": "changed " + api})
			mustStatus(t, "PUT "+p, st, b, http.StatusOK, http.StatusCreated)
			checkProject(t, s, "PUT "+p, b, key, name, "changed "+api)
			checkProject(t, s, "GET after PUT", mustGet(t, s, p, adminName, s.AdminPassword), key, name, "changed "+api)
		}
	})

	var repo restRepo
	t.Run("create repository", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects/"+key+"/repos", map[string]any{"name": "Demo Repo"})
		mustStatus(t, "POST repos", st, b, http.StatusCreated)
		repo = checkRepo(t, s, "POST repos", b, key, "demo-repo", "Demo Repo")

		// On disk: {data}/repositories/{id}.git, bare, HEAD on main.
		dir := s.repoDir(repo.ID)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("repository directory %s: %v", dir, err)
		}
		if out, err := exec.Command("git", "--git-dir", dir, "rev-parse", "--is-bare-repository").CombinedOutput(); err != nil ||
			strings.TrimSpace(string(out)) != "true" {
			t.Errorf("%s is not a bare repository: %v %s", dir, err, out)
		}
		if out, err := exec.Command("git", "--git-dir", dir, "symbolic-ref", "HEAD").CombinedOutput(); err != nil ||
			strings.TrimSpace(string(out)) != "refs/heads/main" {
			t.Errorf("%s: HEAD = %q (%v), want refs/heads/main", dir, strings.TrimSpace(string(out)), err)
		}

		for _, api := range apiVersions {
			p := "/rest/api/" + api + "/projects/" + key + "/repos/demo-repo"
			got := checkRepo(t, s, "GET "+p, mustGet(t, s, p, adminName, s.AdminPassword), key, "demo-repo", "Demo Repo")
			if got.ID != repo.ID {
				t.Errorf("GET %s: id %d, created %d", p, got.ID, repo.ID)
			}
			list := allPages[restRepo](t, s, "/rest/api/"+api+"/projects/"+key+"/repos", adminName, s.AdminPassword)
			if !slices.ContainsFunc(list, func(r restRepo) bool { return r.Slug == "demo-repo" }) {
				t.Errorf("GET /rest/api/%s/projects/%s/repos does not list demo-repo", api, key)
			}
		}

		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects/"+key+"/repos", map[string]any{"name": "Demo Repo"})
		if expectStatus(t, "POST repos with a name in use", st, b, http.StatusConflict) {
			checkError(t, "duplicate repository", b, "")
		}
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects/"+key+"/repos", map[string]any{"name": "demo repo"})
		expectStatus(t, "POST repos with a name whose slug is in use", st, b, http.StatusConflict)
	})

	t.Run("repositories across projects", func(t *testing.T) {
		s.createProject(t, "OTH", "Other")
		other := s.createRepo(t, "OTH", "Other Repo")
		checkRepo(t, s, "other repo", mustGet(t, s, "/rest/api/1.0/projects/OTH/repos/other-repo", adminName, s.AdminPassword),
			"OTH", "other-repo", "Other Repo")
		for _, api := range apiVersions {
			list := allPages[restRepo](t, s, "/rest/api/"+api+"/repos", adminName, s.AdminPassword)
			for _, want := range []struct{ key, slug string }{{key, "demo-repo"}, {"OTH", other.Slug}} {
				if !slices.ContainsFunc(list, func(r restRepo) bool { return r.Project.Key == want.key && r.Slug == want.slug }) {
					t.Errorf("GET /rest/api/%s/repos does not list %s/%s", api, want.key, want.slug)
				}
			}
		}
		// Anonymously accessible, but private repositories stay hidden.
		st, b, _ := s.do(t, http.MethodGet, "/rest/api/1.0/repos", "", "", nil)
		mustStatus(t, "anonymous GET /rest/api/1.0/repos", st, b, http.StatusOK)
		if pg := decodeJSON[page[restRepo]](t, b); len(pg.Values) != 0 {
			t.Errorf("anonymous GET /repos lists private repositories: %s", truncate(b, 300))
		}
	})

	t.Run("update repository", func(t *testing.T) {
		for _, api := range apiVersions {
			p := "/rest/api/" + api + "/projects/" + key + "/repos/demo-repo"
			st, b := s.asAdmin(t, http.MethodPut, p, map[string]any{"name": "Demo Repo", "description": "described " + api})
			mustStatus(t, "PUT "+p, st, b, http.StatusOK, http.StatusCreated)
			r := checkRepo(t, s, "PUT "+p, b, key, "demo-repo", "Demo Repo")
			if r.Description != "described "+api {
				t.Errorf("PUT %s: description %q", p, r.Description)
			}
			r = decodeJSON[restRepo](t, mustGet(t, s, p, adminName, s.AdminPassword))
			if r.Description != "described "+api || r.ID != repo.ID {
				t.Errorf("GET after PUT: description %q id %d", r.Description, r.ID)
			}
		}
	})

	t.Run("slugs", func(t *testing.T) {
		s.createProject(t, "SLUG", "Slugs")
		for _, c := range []struct{ name, slug string }{
			{"Demo Repo", "demo-repo"},
			{"UPPER", "upper"},
			{"with_underscore", "with_underscore"},
			{"dots.and-dashes", "dots.and-dashes"},
			{"Two  Spaces", "two-spaces"},
			{"Mixed Case Name 2", "mixed-case-name-2"},
		} {
			st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/projects/SLUG/repos", map[string]any{"name": c.name})
			if !expectStatus(t, "create "+c.name, st, b, http.StatusCreated) {
				continue
			}
			if r := decodeJSON[restRepo](t, b); r.Slug != c.slug || r.Name != c.name {
				t.Errorf("%q: slug %q name %q, want slug %q", c.name, r.Slug, r.Name, c.slug)
			}
			st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/projects/SLUG/repos/"+c.slug, adminName, s.AdminPassword, nil)
			expectStatus(t, "GET by slug "+c.slug, st, b, http.StatusOK)
		}
	})

	t.Run("delete repository", func(t *testing.T) {
		p := "/rest/api/1.0/projects/" + key + "/repos/demo-repo"
		st, b := s.asAdmin(t, http.MethodDelete, p, nil)
		mustStatus(t, "DELETE "+p, st, b, http.StatusAccepted, http.StatusNoContent)
		st, b = s.asAdmin(t, http.MethodGet, p, nil)
		if expectStatus(t, "GET a deleted repository", st, b, http.StatusNotFound) {
			checkError(t, "GET a deleted repository", b, exNoSuchRepo)
		}
		waitGone(t, s.repoDir(repo.ID))
	})

	t.Run("delete project", func(t *testing.T) {
		// A project that still holds repositories is refused (409, as Data
		// Center does) or deleted with them; either way nothing is left half.
		st, b := s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/projects/OTH", nil)
		switch st {
		case http.StatusConflict:
			mustGet(t, s, "/rest/api/1.0/projects/OTH/repos/other-repo", adminName, s.AdminPassword)
			st, b = s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/projects/OTH/repos/other-repo", nil)
			mustStatus(t, "DELETE other-repo", st, b, http.StatusAccepted, http.StatusNoContent)
			// Deletion may be asynchronous (202): wait until the project is empty.
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, b = s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/projects/OTH", nil)
				if st != http.StatusConflict || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			mustStatus(t, "DELETE empty project OTH", st, b, http.StatusNoContent)
		case http.StatusNoContent:
		default:
			t.Fatalf("DELETE project OTH with a repository: status %d, want 409 or 204: %s", st, truncate(b, 300))
		}
		for _, p := range []string{"/rest/api/1.0/projects/OTH", "/rest/api/latest/projects/OTH"} {
			st, b = s.asAdmin(t, http.MethodGet, p, nil)
			if expectStatus(t, "GET a deleted project", st, b, http.StatusNotFound) {
				checkError(t, "GET a deleted project", b, exNoSuchProject)
			}
		}
		st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/projects/OTH/repos/other-repo", nil)
		expectStatus(t, "GET a repository of a deleted project", st, b, http.StatusNotFound)

		// An empty project through latest.
		s.createProject(t, "EMPTY", "Empty")
		st, b = s.asAdmin(t, http.MethodDelete, "/rest/api/latest/projects/EMPTY", nil)
		mustStatus(t, "DELETE latest/projects/EMPTY", st, b, http.StatusNoContent)
		st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/projects/EMPTY", nil)
		expectStatus(t, "GET a deleted project", st, b, http.StatusNotFound)
		s.checkReposMatchDisk(t)
	})
}

// waitGone waits up to 10 seconds for path to disappear.
func waitGone(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(path)
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still exists 10s after deletion (err %v)", path, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestProjectAndRepositoryPermissions(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u1 := s.createUser(t, "perm-one")
	u2 := s.createUser(t, "perm-two")
	s.createGroup(t, "perm-group", u1.Name)

	for i, api := range apiVersions {
		t.Run(api, func(t *testing.T) {
			key := fmt.Sprintf("PERM%d", i)
			s.createProject(t, key, "Permissions "+api)
			s.createRepo(t, key, "Perm Repo")

			for _, target := range []struct {
				resource          string
				read, write, admn string
			}{
				{key, "PROJECT_READ", "PROJECT_WRITE", "PROJECT_ADMIN"},
				{key + "/perm-repo", "REPO_READ", "REPO_WRITE", "REPO_ADMIN"},
			} {
				users := permPath(api, target.resource, "users")
				groups := permPath(api, target.resource, "groups")

				listUsers := func() []userPermission {
					return allPages[userPermission](t, s, users, adminName, s.AdminPassword)
				}
				listGroups := func() []groupPermission {
					return allPages[groupPermission](t, s, groups, adminName, s.AdminPassword)
				}

				st, b := s.asAdmin(t, http.MethodPut, users+"?name=perm-one&permission="+target.read, nil)
				mustStatus(t, "PUT "+users+" "+target.read, st, b, http.StatusNoContent)
				if ps := findUserPerm(listUsers(), "perm-one"); !slices.Equal(ps, []string{target.read}) {
					t.Errorf("GET %s: perm-one has %v, want [%s]", users, ps, target.read)
				}
				raw := decodeJSON[struct {
					Values []struct {
						User       jsonRaw `json:"user"`
						Permission string  `json:"permission"`
					} `json:"values"`
				}](t, mustGet(t, s, users, adminName, s.AdminPassword))
				for _, v := range raw.Values {
					checkShape(t, users+" user", v.User, userShape)
				}

				// Several names at once; perm-one's level is replaced, not added.
				st, b = s.asAdmin(t, http.MethodPut, users+"?name=perm-one&name=perm-two&permission="+target.write, nil)
				mustStatus(t, "PUT "+users+" two names", st, b, http.StatusNoContent)
				all := listUsers()
				for _, n := range []string{"perm-one", "perm-two"} {
					if ps := findUserPerm(all, n); !slices.Equal(ps, []string{target.write}) {
						t.Errorf("GET %s: %s has %v, want [%s]", users, n, ps, target.write)
					}
				}

				st, b = s.asAdmin(t, http.MethodDelete, users+"?name=perm-one", nil)
				mustStatus(t, "DELETE "+users, st, b, http.StatusNoContent)
				all = listUsers()
				if ps := findUserPerm(all, "perm-one"); len(ps) != 0 {
					t.Errorf("GET %s after DELETE: perm-one has %v", users, ps)
				}
				if ps := findUserPerm(all, "perm-two"); !slices.Equal(ps, []string{target.write}) {
					t.Errorf("GET %s after deleting perm-one: perm-two has %v", users, ps)
				}

				st, b = s.asAdmin(t, http.MethodPut, groups+"?name=perm-group&permission="+target.admn, nil)
				mustStatus(t, "PUT "+groups, st, b, http.StatusNoContent)
				if ps := findGroupPerm(listGroups(), "perm-group"); !slices.Equal(ps, []string{target.admn}) {
					t.Errorf("GET %s: perm-group has %v, want [%s]", groups, ps, target.admn)
				}
				// perm-one now administers through the group: may read the
				// permission lists.
				st, b, _ = s.do(t, http.MethodGet, users, u1.Name, u1.Password, nil)
				expectStatus(t, "group admin reads "+users, st, b, http.StatusOK)
				st, b, _ = s.do(t, http.MethodGet, users, u2.Name, u2.Password, nil)
				if expectStatus(t, "writer reads "+users, st, b, http.StatusUnauthorized) {
					checkError(t, "writer reads "+users, b, exAuthorisation)
				}

				st, b = s.asAdmin(t, http.MethodDelete, groups+"?name=perm-group", nil)
				mustStatus(t, "DELETE "+groups, st, b, http.StatusNoContent)
				if ps := findGroupPerm(listGroups(), "perm-group"); len(ps) != 0 {
					t.Errorf("GET %s after DELETE: perm-group has %v", groups, ps)
				}
				s.revoke(t, target.resource, "perm-two")
			}
		})
	}
}
