package e2e

// Bad input: every malformed request gets the right 4xx (400 validation, 401
// authentication, 404 missing, 405 method, 409 conflict), never a 5xx, and a
// failed create leaves nothing behind, in the database or on disk.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

type badRequest struct {
	name   string
	method string
	path   string
	body   any               // sent as is (string) or as JSON
	auth   string            // Authorization header; "" means the admin's Basic credentials
	anon   bool              // send no Authorization header
	hdr    map[string]string // extra headers
	raw    string            // a whole raw HTTP request, sent byte for byte (method/path/body unused)
	follow bool              // follow redirects (what a client ends up with)
	want   []int
}

const (
	huge = 2 << 20 // 2 MiB
)

func TestMalformedRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.createProject(t, "MAL", "Malformed")
	s.createRepo(t, "MAL", "Mal Repo")
	s.createUser(t, "mal-user")
	s.createGroup(t, "mal-group", "mal-user")
	dirsBefore := s.repoDirs(t)

	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	bigString := strings.Repeat("a", huge)
	long129 := "K" + strings.Repeat("k", 128)
	name129 := strings.Repeat("n", 129)
	adminOnly := "/rest/api/1.0/admin/permissions/users"
	projPerm := "/rest/api/1.0/projects/MAL/permissions/"
	repoPerm := "/rest/api/1.0/projects/MAL/repos/mal-repo/permissions/"
	globPerm := "/rest/api/1.0/admin/permissions/"
	gitRefs := "/scm/mal/mal-repo.git/info/refs?service=git-upload-pack"

	const (
		bad      = http.StatusBadRequest
		unauth   = http.StatusUnauthorized
		notFound = http.StatusNotFound
	)
	cases := []badRequest{
		// Project bodies.
		{name: "project: truncated JSON", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":`, want: []int{bad}},
		{name: "project: JSON array", method: "POST", path: "/rest/api/1.0/projects", body: `[]`, want: []int{bad}},
		{name: "project: empty body", method: "POST", path: "/rest/api/1.0/projects", body: ``, want: []int{bad}},
		{name: "project: null body", method: "POST", path: "/rest/api/1.0/projects", body: `null`, want: []int{bad}},
		{name: "project: not JSON at all", method: "POST", path: "/rest/api/1.0/projects", body: `key=ABC&name=x`, want: []int{bad}},
		{name: "project: key is a number", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":123,"name":"Numbers"}`, want: []int{bad}},
		{name: "project: name is an array", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"TYPES","name":["a"]}`, want: []int{bad}},
		{name: "project: public is a string", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"TYPES2","name":"Types two","public":"yes"}`, want: []int{bad}},
		{name: "project: missing key", method: "POST", path: "/rest/api/1.0/projects", body: `{"name":"No Key"}`, want: []int{bad}},
		{name: "project: missing name", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"NONAME"}`, want: []int{bad}},
		{name: "project: key starts with a digit", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"1ABC","name":"Digit"}`, want: []int{bad}},
		{name: "project: key with a dash", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"A-B","name":"Dash"}`, want: []int{bad}},
		{name: "project: key with a space", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"A B","name":"Space"}`, want: []int{bad}},
		{name: "project: key of 129 characters", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"` + long129 + `","name":"Long"}`, want: []int{bad}},
		{name: "project: empty key", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"","name":"Empty key"}`, want: []int{bad}},
		{name: "project: non-ASCII key", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"ÄBC","name":"Umlaut"}`, want: []int{bad}},
		{name: "project: key with a path", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"../ETC","name":"Traversal"}`, want: []int{bad}},
		{name: "project: NUL in name", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"NUL","name":"bad\u0000name"}`, want: []int{bad}},
		{name: "project: blank name", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"BLANK","name":"   "}`, want: []int{bad}},
		{name: "project: name of 129 characters", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"LONGNAME","name":"` + name129 + `"}`, want: []int{bad}},
		{name: "project: 2 MB name", method: "POST", path: "/rest/api/1.0/projects", body: `{"key":"BIGNAME","name":"` + bigString + `"}`, want: []int{bad, http.StatusRequestEntityTooLarge}},
		{name: "project update: invalid key", method: "PUT", path: "/rest/api/1.0/projects/MAL", body: `{"key":"1BAD"}`, want: []int{bad}},
		{name: "project update: name is a number", method: "PUT", path: "/rest/api/1.0/projects/MAL", body: `{"name":5}`, want: []int{bad}},
		{name: "project update: truncated JSON", method: "PUT", path: "/rest/api/1.0/projects/MAL", body: `{"name":"x`, want: []int{bad}},

		// Repository bodies.
		{name: "repo: truncated JSON", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":`, want: []int{bad}},
		{name: "repo: empty name", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":""}`, want: []int{bad}},
		{name: "repo: name is a number", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":42}`, want: []int{bad}},
		{name: "repo: missing name", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{}`, want: []int{bad}},
		{name: "repo: name without a slug", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":"!!!"}`, want: []int{bad}},
		{name: "repo: name of 129 characters", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":"` + name129 + `"}`, want: []int{bad}},
		{name: "repo: 2 MB name", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":"` + bigString + `"}`, want: []int{bad, http.StatusRequestEntityTooLarge}},
		{name: "repo: forkable is a string", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":"Forky","forkable":"yes"}`, want: []int{bad}},
		{name: "repo: NUL in name", method: "POST", path: "/rest/api/1.0/projects/MAL/repos", body: `{"name":"nul\u0000repo"}`, want: []int{bad}},
		{name: "repo: unknown project", method: "POST", path: "/rest/api/1.0/projects/NOSUCH/repos", body: `{"name":"Orphan"}`, want: []int{notFound}},
		{name: "repo: invalid project key in path", method: "POST", path: "/rest/api/1.0/projects/1BAD/repos", body: `{"name":"Orphan"}`, want: []int{bad, notFound}},
		{name: "repo update: name is a number", method: "PUT", path: "/rest/api/1.0/projects/MAL/repos/mal-repo", body: `{"name":7}`, want: []int{bad}},

		// Permissions.
		{name: "project perm: repository permission", method: "PUT", path: projPerm + "users?name=mal-user&permission=REPO_READ", want: []int{bad}},
		{name: "project perm: unknown permission", method: "PUT", path: projPerm + "users?name=mal-user&permission=BOGUS", want: []int{bad}},
		{name: "project perm: empty permission", method: "PUT", path: projPerm + "users?name=mal-user&permission=", want: []int{bad}},
		{name: "project perm: no permission", method: "PUT", path: projPerm + "users?name=mal-user", want: []int{bad}},
		{name: "project perm: lower-case permission", method: "PUT", path: projPerm + "users?name=mal-user&permission=project_read", want: []int{bad}},
		{name: "project perm: no name", method: "PUT", path: projPerm + "users?permission=PROJECT_READ", want: []int{bad}},
		{name: "project perm: unknown user", method: "PUT", path: projPerm + "users?name=no-such-user&permission=PROJECT_READ", want: []int{notFound}},
		{name: "project perm: unknown group", method: "PUT", path: projPerm + "groups?name=no-such-group&permission=PROJECT_READ", want: []int{notFound}},
		{name: "project perm: delete without name", method: "DELETE", path: projPerm + "users", want: []int{bad}},
		{name: "repo perm: project permission", method: "PUT", path: repoPerm + "users?name=mal-user&permission=PROJECT_READ", want: []int{bad}},
		{name: "repo perm: global permission", method: "PUT", path: repoPerm + "groups?name=mal-group&permission=SYS_ADMIN", want: []int{bad}},
		{name: "repo perm: unknown user", method: "PUT", path: repoPerm + "users?name=no-such-user&permission=REPO_READ", want: []int{notFound}},
		{name: "repo perm: unknown group", method: "PUT", path: repoPerm + "groups?name=no-such-group&permission=REPO_READ", want: []int{notFound}},
		{name: "global perm: repository permission", method: "PUT", path: globPerm + "users?name=mal-user&permission=REPO_READ", want: []int{bad}},
		{name: "global perm: unknown permission", method: "PUT", path: globPerm + "users?name=mal-user&permission=SUPERUSER", want: []int{bad}},
		{name: "global perm: empty permission", method: "PUT", path: globPerm + "groups?name=mal-group&permission=", want: []int{bad}},
		{name: "global perm: unknown user", method: "PUT", path: globPerm + "users?name=no-such-user&permission=ADMIN", want: []int{notFound}},
		{name: "global perm: unknown group", method: "PUT", path: globPerm + "groups?name=no-such-group&permission=ADMIN", want: []int{notFound}},
		{name: "global perm: delete without name", method: "DELETE", path: globPerm + "users", want: []int{bad}},

		// Key ids.
		{name: "key id: zero", method: "GET", path: "/rest/ssh/1.0/keys/0", want: []int{bad}},
		{name: "key id: not a number", method: "DELETE", path: "/rest/ssh/1.0/keys/abc", want: []int{bad}},
		{name: "key id: overflows", method: "GET", path: "/rest/ssh/1.0/keys/99999999999999999999", want: []int{bad}},
		{name: "access key id: negative", method: "DELETE", path: "/rest/keys/1.0/ssh/-1", want: []int{bad}},

		// Paging and filters.
		{name: "paging: negative start", method: "GET", path: "/rest/api/1.0/projects?start=-1", want: []int{bad}},
		{name: "paging: negative limit", method: "GET", path: "/rest/api/1.0/projects?limit=-1", want: []int{bad}},
		{name: "paging: limit not a number", method: "GET", path: "/rest/api/1.0/projects?limit=abc", want: []int{bad}},
		{name: "paging: start not a number", method: "GET", path: "/rest/api/1.0/repos?start=abc", want: []int{bad}},
		{name: "paging: limit overflows", method: "GET", path: "/rest/api/1.0/repos?limit=99999999999999999999", want: []int{bad}},
		{name: "projects: unknown permission filter", method: "GET", path: "/rest/api/1.0/projects?permission=BOGUS", want: []int{bad}},

		// Users and groups.
		{name: "user: delete unknown", method: "DELETE", path: "/rest/api/1.0/admin/users?name=no-such-user", want: []int{notFound}},
		{name: "user: delete without name", method: "DELETE", path: "/rest/api/1.0/admin/users", want: []int{bad}},
		{name: "user: create without name", method: "POST", path: "/rest/api/1.0/admin/users?password=x1234567&displayName=X&emailAddress=x%40example.com", want: []int{bad}},
		{name: "user: create existing", method: "POST", path: "/rest/api/1.0/admin/users?name=mal-user&password=x1234567&displayName=X&emailAddress=x%40example.com", want: []int{http.StatusConflict}},
		{name: "user: get unknown", method: "GET", path: "/rest/api/1.0/users/no-such-user", want: []int{notFound}},
		{name: "group: create with empty name", method: "POST", path: "/rest/api/1.0/admin/groups?name=", want: []int{bad}},
		{name: "group: create without name", method: "POST", path: "/rest/api/1.0/admin/groups", want: []int{bad}},
		{name: "group: create existing", method: "POST", path: "/rest/api/1.0/admin/groups?name=mal-group", want: []int{http.StatusConflict}},
		{name: "group add-users: truncated JSON", method: "POST", path: "/rest/api/1.0/admin/groups/add-users", body: `{"group":`, want: []int{bad}},
		{name: "group add-users: users not an array", method: "POST", path: "/rest/api/1.0/admin/groups/add-users", body: `{"group":"mal-group","users":"mal-user"}`, want: []int{bad}},
		{name: "group add-users: unknown group", method: "POST", path: "/rest/api/1.0/admin/groups/add-users", body: `{"group":"no-such-group","users":["mal-user"]}`, want: []int{notFound}},
		{name: "group add-users: unknown user", method: "POST", path: "/rest/api/1.0/admin/groups/add-users", body: `{"group":"mal-group","users":["no-such-user"]}`, want: []int{notFound}},

		// Unknown things.
		{name: "unknown project", method: "GET", path: "/rest/api/1.0/projects/NOSUCH", want: []int{notFound}},
		{name: "unknown repository", method: "GET", path: "/rest/api/1.0/projects/MAL/repos/nosuch", want: []int{notFound}},
		{name: "unknown REST resource", method: "GET", path: "/rest/api/1.0/no-such-resource", want: []int{notFound}},
		{name: "unknown REST version", method: "GET", path: "/rest/api/2.0/projects", want: []int{notFound}},
		{name: "unsupported method", method: "PATCH", path: "/rest/api/1.0/projects", body: `{}`, want: []int{http.StatusMethodNotAllowed}},

		// Authorization headers (on an admin-only resource).
		{name: "auth: Basic with garbage base64", method: "GET", path: adminOnly, auth: "Basic !!!not-base64!!!", want: []int{unauth}},
		{name: "auth: Basic alone", method: "GET", path: adminOnly, auth: "Basic", want: []int{unauth}},
		{name: "auth: Basic and a space", method: "GET", path: adminOnly, auth: "Basic ", want: []int{unauth}},
		{name: "auth: Bearer alone", method: "GET", path: adminOnly, auth: "Bearer", want: []int{unauth}},
		{name: "auth: Bearer and a space", method: "GET", path: adminOnly, auth: "Bearer ", want: []int{unauth}},
		{name: "auth: Bearer garbage", method: "GET", path: adminOnly, auth: "Bearer not-a-token", want: []int{unauth}},
		{name: "auth: Bearer token-shaped, bad checksum", method: "GET", path: adminOnly, auth: "Bearer latp_" + strings.Repeat("A", 38), want: []int{unauth}},
		{name: "auth: Basic without a colon", method: "GET", path: adminOnly, auth: "Basic " + b64("admin"), want: []int{unauth}},
		{name: "auth: Basic with non-UTF-8 credentials", method: "GET", path: adminOnly, auth: "Basic " + b64("\xff\xfe:\xfd\xfc"), want: []int{unauth}},
		{name: "auth: Basic with an empty password", method: "GET", path: adminOnly, auth: "Basic " + b64("admin:"), want: []int{unauth}},
		{name: "auth: Basic with an empty user", method: "GET", path: adminOnly, auth: "Basic " + b64(":"+s.AdminPassword), want: []int{unauth}},
		{name: "auth: Basic with 8 KB of garbage", method: "GET", path: adminOnly, auth: "Basic " + strings.Repeat("QUJD", 2048), want: []int{unauth}},
		{name: "auth: unknown scheme", method: "GET", path: adminOnly, auth: "Negotiate abc", want: []int{unauth}},
		{name: "auth: non-UTF-8 header bytes", raw: "GET " + adminOnly + " HTTP/1.1\nHost: " + s.HTTPAddr + "\nAuthorization: Basic \xff\xfe\xfd\nConnection: close\n\n", want: []int{bad, unauth}},
		{name: "git auth: Basic with garbage", method: "GET", path: gitRefs, auth: "Basic %%%", want: []int{unauth}},
		{name: "git auth: Bearer alone", method: "GET", path: gitRefs, auth: "Bearer", want: []int{unauth}},

		// Paths that try to leave the repository store.
		{name: "git: ../ in path", method: "GET", path: "/scm/../etc/passwd.git/info/refs?service=git-upload-pack", follow: true, want: []int{bad, notFound}},
		{name: "git: raw ../ in path", raw: "GET /scm/../../etc/passwd.git/info/refs?service=git-upload-pack HTTP/1.1\nHost: " + s.HTTPAddr + "\nAuthorization: " + basicAuth(adminName, s.AdminPassword) + "\nConnection: close\n\n", want: []int{bad, notFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}},
		{name: "git: encoded slashes in slug", method: "GET", path: "/scm/mal/..%2f..%2f..%2fetc%2fpasswd.git/info/refs?service=git-upload-pack", follow: true, want: []int{bad, notFound}},
		{name: "git: encoded dots", method: "GET", path: "/scm/%2e%2e/%2e%2e/etc/passwd.git/info/refs?service=git-upload-pack", follow: true, want: []int{bad, notFound}},
		{name: "git: traversal after the repository", method: "GET", path: "/scm/mal/mal-repo.git/../../../../etc/passwd", follow: true, want: []int{bad, notFound}},
		{name: "git: NUL in slug", method: "GET", path: "/scm/mal/mal-repo%00.git/info/refs?service=git-upload-pack", follow: true, want: []int{bad, notFound}},
		{name: "git: absolute path as key", method: "GET", path: "/scm/%2fetc/passwd.git/info/refs?service=git-upload-pack", follow: true, want: []int{bad, notFound}},
		{name: "git: unknown service", method: "GET", path: "/scm/mal/mal-repo.git/info/refs?service=git-upload-archive", want: []int{bad, http.StatusForbidden, notFound}},
		{name: "git: service is a command", method: "GET", path: "/scm/mal/mal-repo.git/info/refs?service=--help", want: []int{bad, http.StatusForbidden, notFound}},
		{name: "rest: encoded traversal in project key", method: "GET", path: "/rest/api/1.0/projects/..%2f..%2fetc/repos", follow: true, want: []int{bad, notFound}},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d malformed requests", len(cases))
	}

	// Creates that succeeded although they should not have: their results
	// are not "half-created" leftovers, so the check below allows them.
	var wronglyCreated []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var (
				st int
				b  []byte
			)
			switch {
			case c.raw != "":
				st, b, _ = s.rawRequest(t, c.raw)
			default:
				hdr := http.Header{}
				switch {
				case c.anon:
				case c.auth != "":
					hdr.Set("Authorization", c.auth)
				default:
					hdr.Set("Authorization", basicAuth(adminName, s.AdminPassword))
				}
				for k, v := range c.hdr {
					hdr.Set(k, v)
				}
				cl := s.client
				if c.follow {
					cl = s.followClient
				}
				st, b, _ = s.send(t, cl, c.method, c.path, hdr, c.body)
			}
			if st >= 500 {
				t.Fatalf("%s %s: server error %d: %s", c.method, c.path, st, truncate(b, 400))
			}
			if st == http.StatusCreated && c.path == "/rest/api/1.0/projects/MAL/repos" {
				var r restRepo
				if json.Unmarshal(b, &r) == nil {
					wronglyCreated = append(wronglyCreated, r.Slug)
				}
			}
			if !expectStatus(t, c.method+" "+truncate([]byte(c.path), 120), st, b, c.want...) {
				return
			}
			if strings.HasPrefix(c.path, "/rest/api/1.0/") && c.raw == "" &&
				(st == bad || st == unauth || st == http.StatusConflict || (st == notFound && c.name != "unknown REST resource" && !c.follow)) {
				checkError(t, c.name, b, "")
			}
		})
	}

	// Never a 5xx, whatever a git client sends.
	t.Run("git bodies", func(t *testing.T) {
		auth := basicAuth(adminName, s.AdminPassword)
		for _, c := range []struct {
			name string
			hdr  map[string]string
			body string
		}{
			{"garbage upload-pack request", map[string]string{"Content-Type": "application/x-git-upload-pack-request"}, "hello, git"},
			{"truncated pkt-line", map[string]string{"Content-Type": "application/x-git-upload-pack-request"}, "00ffwant"},
			{"gzip header on a plain body", map[string]string{"Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip"}, pkt("command=ls-refs\n") + pktFlush},
			{"unknown protocol version", map[string]string{"Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=99"}, pktFlush},
			{"odd Git-Protocol", map[string]string{"Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=2:--upload-pack=touch /tmp/pwned"}, pkt("command=ls-refs\n") + pktFlush},
		} {
			hdr := http.Header{"Authorization": {auth}}
			for k, v := range c.hdr {
				hdr.Set(k, v)
			}
			st, b, _ := s.request(t, http.MethodPost, "/scm/mal/mal-repo.git/git-upload-pack", hdr, c.body)
			if st >= 500 {
				t.Errorf("%s: server error %d: %s", c.name, st, truncate(b, 300))
			}
		}
		st, b, _ := s.request(t, http.MethodGet, gitRefs, http.Header{"Authorization": {auth}, "Git-Protocol": {"version=2;rm -rf /"}}, nil)
		if st >= 500 {
			t.Errorf("odd Git-Protocol on info/refs: server error %d: %s", st, truncate(b, 300))
		}
	})

	t.Run("nothing half-created", func(t *testing.T) {
		for _, key := range []string{"TYPES", "TYPES2", "NONAME", "NUL", "BLANK", "LONGNAME", "BIGNAME", "1ABC", "A-B"} {
			st, b := s.asAdmin(t, http.MethodGet, "/rest/api/1.0/projects/"+key, nil)
			if st != http.StatusNotFound && st != http.StatusBadRequest {
				t.Errorf("project %s from a failed create: GET answers %d: %s", key, st, truncate(b, 200))
			}
		}
		projects := allPages[restProject](t, s, "/rest/api/1.0/projects", adminName, s.AdminPassword)
		var keys []string
		for _, p := range projects {
			keys = append(keys, p.Key)
		}
		if !slices.Equal(keys, []string{"MAL"}) {
			t.Errorf("projects after the malformed requests: %v, want [MAL]", keys)
		}
		p := decodeJSON[restProject](t, mustGet(t, s, "/rest/api/1.0/projects/MAL", adminName, s.AdminPassword))
		if p.Name != "Malformed" {
			t.Errorf("project MAL changed by a bad update: %+v", p)
		}
		repos := allPages[restRepo](t, s, "/rest/api/1.0/projects/MAL/repos", adminName, s.AdminPassword)
		var slugs []string
		for _, r := range repos {
			slugs = append(slugs, r.Slug)
		}
		slices.Sort(slugs)
		want := append([]string{"mal-repo"}, wronglyCreated...)
		slices.Sort(want)
		if !slices.Equal(slugs, want) {
			t.Errorf("repositories after the malformed requests: %v, want %v", slugs, want)
		}
		if got := s.repoDirs(t); len(got) != len(dirsBefore)+len(wronglyCreated) {
			t.Errorf("{data}/repositories changed: before %v, after %v", dirsBefore, got)
		}
		gp := allPages[userPermission](t, s, projPerm+"users", adminName, s.AdminPassword)
		if ps := findUserPerm(gp, "mal-user"); len(ps) != 0 {
			t.Errorf("a rejected grant left mal-user with %v on MAL", ps)
		}
		s.checkReposMatchDisk(t)
	})
}

// TestConcurrentCreates races creates of the same project, repository and
// user email address: exactly one wins, the others get 409, and database and
// disk agree.
func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const n = 8
	race := func(t *testing.T, what string, path func(i int) string, body func(i int) any, wantStatus int) {
		t.Helper()
		var wg sync.WaitGroup
		codes := make([]int, n)
		bodies := make([][]byte, n)
		errs := make([]error, n)
		hdr := http.Header{"Authorization": {basicAuth(adminName, s.AdminPassword)}}
		for i := range n {
			wg.Go(func() {
				codes[i], bodies[i], _, errs[i] = s.trySend(s.client, http.MethodPost, path(i), hdr, body(i))
			})
		}
		wg.Wait()
		created := 0
		for i, c := range codes {
			if errs[i] != nil {
				t.Errorf("%s #%d: %v", what, i, errs[i])
				continue
			}
			switch c {
			case wantStatus:
				created++
			case http.StatusConflict:
			default:
				t.Errorf("%s #%d: status %d, want %d or 409: %s", what, i, c, wantStatus, truncate(bodies[i], 300))
			}
		}
		if created != 1 {
			t.Errorf("%s: %d creates succeeded (codes %v), want exactly 1", what, created, codes)
		}
	}
	fixed := func(path string) func(int) string { return func(int) string { return path } }
	race(t, "same project key", fixed("/rest/api/1.0/projects"), func(i int) any {
		return map[string]any{"key": "RACE", "name": fmt.Sprintf("Race %d", i)}
	}, http.StatusCreated)
	race(t, "same project name", fixed("/rest/api/1.0/projects"), func(i int) any {
		return map[string]any{"key": fmt.Sprintf("RACE%d", i), "name": "Race by name"}
	}, http.StatusCreated)
	race(t, "same repository name", fixed("/rest/api/1.0/projects/RACE/repos"), func(int) any {
		return map[string]any{"name": "Race Repo"}
	}, http.StatusCreated)
	race(t, "same repository slug", fixed("/rest/api/1.0/projects/RACE/repos"), func(i int) any {
		return map[string]any{"name": []string{"Slug Race", "slug race", "slug-race", "SLUG RACE"}[i%4]}
	}, http.StatusCreated)
	// Email addresses compare case-insensitively.
	race(t, "same email address", func(i int) string {
		return fmt.Sprintf("/rest/api/1.0/admin/users?name=racer%d&password=Secret-Pass-%d&emailAddress=%s", i, i,
			url.QueryEscape([]string{"racer@example.com", "Racer@Example.com"}[i%2]))
	}, func(int) any { return nil }, http.StatusNoContent)
	repos := allPages[restRepo](t, s, "/rest/api/1.0/projects/RACE/repos", adminName, s.AdminPassword)
	if len(repos) != 2 {
		t.Errorf("project RACE holds %d repositories, want 2: %+v", len(repos), repos)
	}
	s.checkReposMatchDisk(t)
}
