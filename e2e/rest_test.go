package e2e

// REST denials, not-found and conflict answers, and paging (§1.1, §1.2).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

func TestRESTDenials(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.createProject(t, "DNY", "Deny")
	s.createRepo(t, "DNY", "Deny Repo")
	nobody := s.createUser(t, "nobody")
	projReader := s.createUser(t, "proj-reader")
	repoReader := s.createUser(t, "repo-reader")
	projAdmin := s.createUser(t, "proj-admin")
	s.grant(t, "DNY", projReader.Name, "PROJECT_READ")
	s.grant(t, "DNY/deny-repo", repoReader.Name, "REPO_READ")
	s.grant(t, "DNY", projAdmin.Name, "PROJECT_ADMIN")

	t.Run("authenticated but not permitted is 401 AuthorisationException", func(t *testing.T) {
		cases := []struct {
			who    testUser
			method string
			path   string
			body   any
		}{
			{nobody, "POST", "/rest/api/1.0/admin/users?name=x&password=y&displayName=x&emailAddress=x%40example.com", nil},
			{nobody, "DELETE", "/rest/api/1.0/admin/users?name=proj-reader", nil},
			{nobody, "POST", "/rest/api/1.0/admin/groups?name=sneaky", nil},
			{nobody, "POST", "/rest/api/1.0/admin/groups/add-users", map[string]any{"group": "x", "users": []string{"nobody"}}},
			{nobody, "GET", "/rest/api/1.0/admin/permissions/users", nil},
			{nobody, "GET", "/rest/api/latest/admin/permissions/groups", nil},
			{nobody, "PUT", "/rest/api/1.0/admin/permissions/users?name=nobody&permission=SYS_ADMIN", nil},
			{nobody, "POST", "/rest/api/1.0/projects", map[string]any{"key": "NOPE", "name": "Nope"}},
			{projReader, "PUT", "/rest/api/1.0/projects/DNY", map[string]any{"name": "Renamed"}},
			{projReader, "DELETE", "/rest/api/1.0/projects/DNY", nil},
			{projReader, "GET", "/rest/api/1.0/projects/DNY/permissions/users", nil},
			{projReader, "PUT", "/rest/api/1.0/projects/DNY/permissions/users?name=proj-reader&permission=PROJECT_ADMIN", nil},
			{projReader, "POST", "/rest/api/1.0/projects/DNY/repos", map[string]any{"name": "Sneaky"}},
			{repoReader, "PUT", "/rest/api/1.0/projects/DNY/repos/deny-repo", map[string]any{"name": "Deny Repo", "description": "x"}},
			{repoReader, "DELETE", "/rest/api/1.0/projects/DNY/repos/deny-repo", nil},
			{repoReader, "GET", "/rest/api/1.0/projects/DNY/repos/deny-repo/permissions/users", nil},
			{repoReader, "PUT", "/rest/api/latest/projects/DNY/repos/deny-repo/permissions/groups?name=g&permission=REPO_ADMIN", nil},
			{projAdmin, "GET", "/rest/api/1.0/admin/permissions/users", nil},
		}
		for _, c := range cases {
			what := c.who.Name + " " + c.method + " " + c.path
			st, b, _ := s.do(t, c.method, c.path, c.who.Name, c.who.Password, c.body)
			if expectStatus(t, what, st, b, http.StatusUnauthorized) {
				errs := checkError(t, what, b, exAuthorisation)
				if len(errs) > 0 && errs[0].Context != nil {
					t.Errorf("%s: context %q, want null", what, *errs[0].Context)
				}
			}
		}
		// Nothing happened.
		mustGet(t, s, "/rest/api/1.0/projects/DNY/repos/deny-repo", adminName, s.AdminPassword)
		p := decodeJSON[restProject](t, mustGet(t, s, "/rest/api/1.0/projects/DNY", adminName, s.AdminPassword))
		if p.Name != "Deny" {
			t.Errorf("a denied PUT changed the project: %+v", p)
		}
		st, b := s.asAdmin(t, http.MethodGet, "/rest/api/1.0/projects/NOPE", nil)
		expectStatus(t, "project from a denied create", st, b, http.StatusNotFound)
		st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/projects/DNY/repos/sneaky", nil)
		expectStatus(t, "repository from a denied create", st, b, http.StatusNotFound)
		gp := allPages[userPermission](t, s, "/rest/api/1.0/admin/permissions/users", adminName, s.AdminPassword)
		if ps := findUserPerm(gp, "nobody"); len(ps) != 0 {
			t.Errorf("a denied PUT gave nobody %v", ps)
		}
	})

	t.Run("positive controls", func(t *testing.T) {
		st, b, _ := s.do(t, http.MethodGet, "/rest/api/1.0/projects/DNY/permissions/users", projAdmin.Name, projAdmin.Password, nil)
		expectStatus(t, "project admin reads project permissions", st, b, http.StatusOK)
		st, b, _ = s.do(t, http.MethodPut, "/rest/api/1.0/projects/DNY/permissions/users?name=nobody&permission=PROJECT_READ",
			projAdmin.Name, projAdmin.Password, nil)
		expectStatus(t, "project admin grants PROJECT_READ", st, b, http.StatusNoContent)
		st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/projects/DNY", projReader.Name, projReader.Password, nil)
		expectStatus(t, "project reader reads the project", st, b, http.StatusOK)
		st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/projects/DNY/repos/deny-repo", repoReader.Name, repoReader.Password, nil)
		expectStatus(t, "repository reader reads the repository", st, b, http.StatusOK)
		s.revoke(t, "DNY", "nobody")
	})

	t.Run("lists show only what the caller may see", func(t *testing.T) {
		// GET /projects lists PROJECT_VIEW-able projects; in Data Center a
		// user who may read one repository of a project may view the project.
		for _, c := range []struct {
			who  testUser
			sees bool
		}{{nobody, false}, {repoReader, true}, {projReader, true}} {
			ps := allPages[restProject](t, s, "/rest/api/1.0/projects", c.who.Name, c.who.Password)
			if got := slices.ContainsFunc(ps, func(p restProject) bool { return p.Key == "DNY" }); got != c.sees {
				t.Errorf("%s sees project DNY in GET /projects: %v, want %v", c.who.Name, got, c.sees)
			}
		}
		rs := allPages[restRepo](t, s, "/rest/api/1.0/repos", nobody.Name, nobody.Password)
		if len(rs) != 0 {
			t.Errorf("nobody sees %d repositories", len(rs))
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"POST", "/rest/api/1.0/projects"},
			{"GET", "/rest/api/1.0/admin/permissions/users"},
			{"POST", "/rest/api/1.0/admin/users?name=anon&password=x&displayName=a&emailAddress=a%40example.com"},
			{"DELETE", "/rest/api/1.0/projects/DNY"},
		} {
			var body any
			if c.path == "/rest/api/1.0/projects" {
				body = map[string]any{"key": "ANON", "name": "Anon"}
			}
			st, b, _ := s.do(t, c.method, c.path, "", "", body)
			if expectStatus(t, "anonymous "+c.method+" "+c.path, st, b, http.StatusUnauthorized) {
				checkError(t, "anonymous "+c.method+" "+c.path, b, "")
			}
		}
	})

	t.Run("wrong password is 401", func(t *testing.T) {
		for _, path := range []string{"/rest/api/1.0/projects", "/rest/api/1.0/users", "/rest/api/1.0/repos"} {
			st, b, _ := s.do(t, http.MethodGet, path, nobody.Name, nobody.Password+"x", nil)
			if expectStatus(t, "wrong password GET "+path, st, b, http.StatusUnauthorized) {
				checkError(t, "wrong password GET "+path, b, exAuthentication)
			}
			st, b, _ = s.do(t, http.MethodGet, path, "no-such-user", "whatever", nil)
			if expectStatus(t, "unknown user GET "+path, st, b, http.StatusUnauthorized) {
				checkError(t, "unknown user GET "+path, b, exAuthentication)
			}
		}
	})

	t.Run("unknown project or repository is 404", func(t *testing.T) {
		for _, c := range []struct{ path, ex string }{
			{"/rest/api/1.0/projects/NOSUCH", exNoSuchProject},
			{"/rest/api/latest/projects/NOSUCH", exNoSuchProject},
			{"/rest/api/1.0/projects/NOSUCH/repos", exNoSuchProject},
			{"/rest/api/1.0/projects/NOSUCH/repos/deny-repo", exNoSuchProject},
			{"/rest/api/1.0/projects/NOSUCH/permissions/users", exNoSuchProject},
			{"/rest/api/1.0/projects/DNY/repos/nosuch", exNoSuchRepo},
			{"/rest/api/latest/projects/DNY/repos/nosuch", exNoSuchRepo},
			{"/rest/api/1.0/projects/DNY/repos/nosuch/permissions/users", exNoSuchRepo},
		} {
			st, b := s.asAdmin(t, http.MethodGet, c.path, nil)
			if expectStatus(t, "GET "+c.path, st, b, http.StatusNotFound) {
				checkError(t, "GET "+c.path, b, c.ex)
			}
		}
		for _, c := range []struct{ method, path, ex string }{
			{"PUT", "/rest/api/1.0/projects/NOSUCH", exNoSuchProject},
			{"DELETE", "/rest/api/1.0/projects/NOSUCH", exNoSuchProject},
			{"PUT", "/rest/api/1.0/projects/DNY/repos/nosuch", exNoSuchRepo},
			{"DELETE", "/rest/api/1.0/projects/DNY/repos/nosuch", exNoSuchRepo},
			{"POST", "/rest/api/1.0/projects/NOSUCH/repos", exNoSuchProject},
		} {
			var body any
			if c.method != "DELETE" {
				body = map[string]any{"name": "Whatever"}
			}
			st, b := s.asAdmin(t, c.method, c.path, body)
			if expectStatus(t, c.method+" "+c.path, st, b, http.StatusNotFound) {
				checkError(t, c.method+" "+c.path, b, c.ex)
			}
		}
	})

	t.Run("duplicates are 409", func(t *testing.T) {
		for _, c := range []struct {
			what, path string
			body       any
		}{
			{"project key", "/rest/api/1.0/projects", map[string]any{"key": "DNY", "name": "Another"}},
			{"project name", "/rest/api/1.0/projects", map[string]any{"key": "DNYTWO", "name": "Deny"}},
			{"project key via latest", "/rest/api/latest/projects", map[string]any{"key": "DNY", "name": "Yet another"}},
			{"repository name", "/rest/api/1.0/projects/DNY/repos", map[string]any{"name": "Deny Repo"}},
			{"repository slug", "/rest/api/1.0/projects/DNY/repos", map[string]any{"name": "deny-repo"}},
		} {
			st, b := s.asAdmin(t, http.MethodPost, c.path, c.body)
			if expectStatus(t, "duplicate "+c.what, st, b, http.StatusConflict) {
				checkError(t, "duplicate "+c.what, b, "")
			}
		}
	})
}

func TestPaging(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.createProject(t, "PAGE", "Paging")
	const n = 30
	var slugs []string
	for i := range n {
		r := s.createRepo(t, "PAGE", fmt.Sprintf("Repo %02d", i))
		slugs = append(slugs, r.Slug)
	}
	slices.Sort(slugs)

	get := func(t *testing.T, path string) (page[restRepo], map[string]json.RawMessage) {
		t.Helper()
		b := mustGet(t, s, path, adminName, s.AdminPassword)
		return decodeJSON[page[restRepo]](t, b), decodeJSON[map[string]json.RawMessage](t, b)
	}
	checkPage := func(t *testing.T, path string, size, limit, start int, last bool, next int) page[restRepo] {
		t.Helper()
		p, raw := get(t, path)
		for _, k := range []string{"size", "limit", "isLastPage", "start", "values"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("GET %s: field %q missing", path, k)
			}
		}
		if string(raw["values"]) == "null" {
			t.Errorf("GET %s: values is null, want an array", path)
		}
		if p.Size != size || p.Limit != limit || p.Start != start || p.IsLastPage != last || len(p.Values) != size {
			t.Errorf("GET %s: size=%d limit=%d start=%d isLastPage=%v len(values)=%d; want size=%d limit=%d start=%d isLastPage=%v",
				path, p.Size, p.Limit, p.Start, p.IsLastPage, len(p.Values), size, limit, start, last)
		}
		if last {
			if v, ok := raw["nextPageStart"]; ok && string(v) != "null" {
				t.Errorf("GET %s: last page has nextPageStart %s", path, v)
			}
		} else if p.NextPageStart == nil || *p.NextPageStart != next {
			t.Errorf("GET %s: nextPageStart %v, want %d", path, p.NextPageStart, next)
		}
		return p
	}

	for _, api := range apiVersions {
		base := "/rest/api/" + api + "/projects/PAGE/repos"
		t.Run(api, func(t *testing.T) {
			p1 := checkPage(t, base, 25, 25, 0, false, 25)
			p2 := checkPage(t, base+"?start=25", 5, 25, 25, true, 0)
			var got []string
			for _, r := range append(p1.Values, p2.Values...) {
				got = append(got, r.Slug)
			}
			slices.Sort(got)
			if !slices.Equal(got, slugs) {
				t.Errorf("two default pages hold %v, want %v", got, slugs)
			}
			checkPage(t, base+"?limit=1000", n, 1000, 0, true, 0)
			checkPage(t, base+"?limit=5000", n, 1000, 0, true, 0)
			checkPage(t, base+"?start=100", 0, 25, 100, true, 0)
			checkPage(t, base+"?start=30", 0, 25, 30, true, 0)
			checkPage(t, base+"?start=29&limit=1", 1, 1, 29, true, 0)
			checkPage(t, base+"?start=10&limit=7", 7, 7, 10, false, 17)
			checkPage(t, base+"?limit=30", 30, 30, 0, true, 0)

			// Walking one at a time visits every repository once, in order.
			var walked []string
			start := 0
			for i := 0; i <= n; i++ {
				p, _ := get(t, base+"?limit=1&start="+strconv.Itoa(start))
				if len(p.Values) != 1 {
					t.Fatalf("start=%d limit=1: %d values", start, len(p.Values))
				}
				walked = append(walked, p.Values[0].Slug)
				if p.IsLastPage {
					break
				}
				if p.NextPageStart == nil {
					t.Fatalf("start=%d: no nextPageStart", start)
				}
				start = *p.NextPageStart
			}
			w := slices.Clone(walked)
			slices.Sort(w)
			if !slices.Equal(w, slugs) {
				t.Errorf("limit=1 walk visited %v, want each of %v once", walked, slugs)
			}
		})
	}

	t.Run("repos across projects", func(t *testing.T) {
		checkPage(t, "/rest/api/1.0/repos?limit=10", 10, 10, 0, false, 10)
		checkPage(t, "/rest/api/1.0/repos?start=20&limit=10", 10, 10, 20, true, 0)
		checkPage(t, "/rest/api/latest/repos?start=25", 5, 25, 25, true, 0)
	})

	t.Run("other lists", func(t *testing.T) {
		for i := range 3 {
			s.createUser(t, fmt.Sprintf("pager%d", i))
		}
		b := mustGet(t, s, "/rest/api/1.0/users?limit=2", adminName, s.AdminPassword)
		p := decodeJSON[page[restUser]](t, b)
		if p.Size != 2 || p.Limit != 2 || p.IsLastPage || p.NextPageStart == nil || *p.NextPageStart != 2 {
			t.Errorf("GET users?limit=2: %s", truncate(b, 300))
		}
		b = mustGet(t, s, "/rest/api/1.0/projects?limit=1", adminName, s.AdminPassword)
		pp := decodeJSON[page[restProject]](t, b)
		if pp.Size != 1 || pp.Limit != 1 || !pp.IsLastPage {
			t.Errorf("GET projects?limit=1 with one project: %s", truncate(b, 300))
		}
	})
}
