package e2e

import (
	"net/http"
	"slices"
	"testing"
)

// The permission filter of the repository and project listings keeps what
// the caller holds at least that permission on, as Data Center does.
func TestListingsFilterByPermission(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "FA", "Filter A")
	s.createProject(t, "FB", "Filter B")
	s.createRepo(t, "FA", "read")
	s.createRepo(t, "FA", "write")
	s.createRepo(t, "FB", "admin")
	u := s.createUser(t, "filt")
	s.grant(t, "FA/read", u.Name, "REPO_READ")
	s.grant(t, "FA/write", u.Name, "REPO_WRITE")
	s.grant(t, "FB", u.Name, "PROJECT_ADMIN")

	repos := func(query string) []string {
		t.Helper()
		var out []string
		for _, r := range allPages[restRepo](t, s, "/rest/api/1.0/repos"+query, u.Name, u.Password) {
			out = append(out, r.Project.Key+"/"+r.Slug)
		}
		slices.Sort(out)
		return out
	}
	for query, want := range map[string][]string{
		"":                               {"FA/read", "FA/write", "FB/admin"},
		"?permission=REPO_READ":          {"FA/read", "FA/write", "FB/admin"},
		"?permission=REPO_WRITE":         {"FA/write", "FB/admin"},
		"?permission=REPO_ADMIN":         {"FB/admin"},
		"?permission=REPO_WRITE&limit=1": {"FA/write", "FB/admin"},
	} {
		if got := repos(query); !slices.Equal(got, want) {
			t.Errorf("/repos%s = %v, want %v", query, got, want)
		}
	}
	projects := func(query string) []string {
		t.Helper()
		var out []string
		for _, p := range allPages[restProject](t, s, "/rest/api/1.0/projects"+query, u.Name, u.Password) {
			out = append(out, p.Key)
		}
		slices.Sort(out)
		return out
	}
	for query, want := range map[string][]string{
		"":                          {"FA", "FB"},
		"?permission=PROJECT_WRITE": {"FB"},
		"?permission=PROJECT_ADMIN": {"FB"},
	} {
		if got := projects(query); !slices.Equal(got, want) {
			t.Errorf("/projects%s = %v, want %v", query, got, want)
		}
	}
	st, b, _ := s.do(t, http.MethodGet, "/rest/api/1.0/repos?permission=PROJECT_READ", u.Name, u.Password, nil)
	mustStatus(t, "repository listing with a project permission", st, b, http.StatusBadRequest)
}
