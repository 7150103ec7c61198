package e2e

// A real Bitbucket Data Center client that no one here wrote,
// github.com/gfleury/go-bitbucket-v1, used against latch: it creates an
// access token with a password, then lists projects and repositories, reads
// a repository and its permissions with that token (Basic and Bearer), and
// decodes every answer with the library's own helpers.

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	bitbucketv1 "github.com/gfleury/go-bitbucket-v1"
)

// bbClient returns a gfleury API client for s whose requests carry the
// given authentication context value.
func bbClient(s *Server, key, value any) *bitbucketv1.DefaultApiService {
	cfg := bitbucketv1.NewConfiguration(s.URL + "/rest")
	cfg.HTTPClient = &http.Client{Timeout: s.client.Timeout}
	ctx := context.WithValue(context.Background(), key, value)
	return bitbucketv1.NewAPIClient(ctx, cfg).DefaultApi
}

func TestGfleuryClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	alice := s.createUser(t, "alice")
	s.createProject(t, "GF", "Gfleury")
	s.createProject(t, "GF2", "Second")
	s.createProject(t, "HIDDEN", "Hidden")
	s.createRepo(t, "GF", "Client Repo")
	s.createRepo(t, "GF", "Another")
	s.createRepo(t, "HIDDEN", "Secret")
	s.grant(t, "GF", alice.Name, "PROJECT_READ")
	s.grant(t, "GF2", alice.Name, "PROJECT_READ")
	s.grant(t, "GF/client-repo", alice.Name, "REPO_ADMIN")

	withPassword := bbClient(s, bitbucketv1.ContextBasicAuth, bitbucketv1.BasicAuth{UserName: alice.Name, Password: alice.Password})

	// CreateAccessToken sends {"name","permissions":["REPO_ADMIN","PROJECT_READ"]}.
	resp, err := withPassword.CreateAccessToken("alice", "gfleury token", true, true)
	if err != nil {
		t.Fatalf("CreateAccessToken: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("CreateAccessToken: status %d", resp.StatusCode)
	}
	tok, err := bitbucketv1.GetAccessTokenResponse(resp)
	if err != nil {
		t.Fatalf("GetAccessTokenResponse: %v", err)
	}
	s.addSecret(tok.Token)
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(tok.ID) {
		t.Errorf("token id %q is not 12 digits", tok.ID)
	}
	if tok.Name != "gfleury token" {
		t.Errorf("token name %q", tok.Name)
	}
	if got := slices.Sorted(slices.Values(tok.Permissions)); !slices.Equal(got, []string{"PROJECT_READ", "REPO_ADMIN"}) {
		t.Errorf("token permissions %v", tok.Permissions)
	}
	if tok.CreatedDate < nowMillis()-60_000 || tok.CreatedDate > nowMillis()+1000 {
		t.Errorf("createdDate %d is not epoch milliseconds of now", tok.CreatedDate)
	}
	if tok.LastAuthenticated != 0 {
		t.Errorf("new token lastAuthenticated %d", tok.LastAuthenticated)
	}
	if tok.User.Name != "alice" || tok.User.Slug != "alice" || tok.User.Type != "NORMAL" || !tok.User.Active || tok.User.EmailAddress != alice.Email {
		t.Errorf("token user %+v", tok.User)
	}
	checkSecret(t, "gfleury-created token", tok.Token, "latp")

	for _, c := range []struct {
		what string
		api  *bitbucketv1.DefaultApiService
	}{
		{"Basic user:token", bbClient(s, bitbucketv1.ContextBasicAuth, bitbucketv1.BasicAuth{UserName: alice.Name, Password: tok.Token})},
		{"Bearer token", bbClient(s, bitbucketv1.ContextAccessToken, tok.Token)},
	} {
		t.Run(c.what, func(t *testing.T) {
			api := c.api

			resp, err := api.GetProjects(nil)
			if err != nil {
				t.Fatalf("GetProjects: %v", err)
			}
			projects, err := bitbucketv1.GetProjectsResponse(resp)
			if err != nil {
				t.Fatalf("GetProjectsResponse: %v", err)
			}
			var keys []string
			for _, p := range projects {
				keys = append(keys, p.Key)
				if p.Key == "GF" && (p.Name != "Gfleury" || p.ID == 0 || p.Type != "NORMAL" || p.Public) {
					t.Errorf("project GF decoded as %+v", p)
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"GF", "GF2"}) {
				t.Errorf("GetProjects: %v, want [GF GF2]", keys)
			}
			// Paging as the library reads it.
			resp, err = api.GetProjects(map[string]any{"limit": 1})
			if err != nil {
				t.Fatalf("GetProjects limit 1: %v", err)
			}
			if more, next := bitbucketv1.HasNextPage(resp); !more || next != 1 {
				t.Errorf("HasNextPage on the first of two projects: %v %d", more, next)
			}
			resp, err = api.GetProjects(map[string]any{"limit": 1, "start": 1})
			if err != nil {
				t.Fatalf("GetProjects start 1: %v", err)
			}
			if more, _ := bitbucketv1.HasNextPage(resp); more {
				t.Errorf("HasNextPage on the last project: true")
			}

			resp, err = api.GetRepositoriesWithOptions("GF", nil)
			if err != nil {
				t.Fatalf("GetRepositoriesWithOptions: %v", err)
			}
			repos, err := bitbucketv1.GetRepositoriesResponse(resp)
			if err != nil {
				t.Fatalf("GetRepositoriesResponse: %v", err)
			}
			var slugs []string
			for _, r := range repos {
				slugs = append(slugs, r.Slug)
			}
			slices.Sort(slugs)
			if !slices.Equal(slugs, []string{"another", "client-repo"}) {
				t.Errorf("GetRepositoriesWithOptions(GF): %v", slugs)
			}

			resp, err = api.GetRepositories_19(nil)
			if err != nil {
				t.Fatalf("GetRepositories_19: %v", err)
			}
			all, err := bitbucketv1.GetRepositoriesResponse(resp)
			if err != nil {
				t.Fatalf("GetRepositoriesResponse: %v", err)
			}
			for _, r := range all {
				if r.Project == nil || r.Project.Key == "HIDDEN" {
					t.Errorf("GetRepositories_19 lists %+v", r)
				}
			}
			if len(all) != 2 {
				t.Errorf("GetRepositories_19: %d repositories, want 2", len(all))
			}

			resp, err = api.GetRepository("GF", "client-repo")
			if err != nil {
				t.Fatalf("GetRepository: %v", err)
			}
			repo, err := bitbucketv1.GetRepositoryResponse(resp)
			if err != nil {
				t.Fatalf("GetRepositoryResponse: %v", err)
			}
			if repo.Slug != "client-repo" || repo.Name != "Client Repo" || repo.ScmID != "git" || repo.State != "AVAILABLE" ||
				repo.Project == nil || repo.Project.Key != "GF" || repo.ID == 0 {
				t.Errorf("GetRepository decoded as %+v", repo)
			}
			var httpClone string
			if repo.Links != nil {
				for _, l := range repo.Links.Clone {
					if l.Name == "http" {
						httpClone = l.Href
					}
				}
			}
			if httpClone != s.URL+"/scm/gf/client-repo.git" {
				t.Errorf("http clone link %q, want %s", httpClone, s.URL+"/scm/gf/client-repo.git")
			}

			resp, err = api.GetUsersWithAnyPermission_24("GF", "client-repo", nil)
			if err != nil {
				t.Fatalf("GetUsersWithAnyPermission_24: %v", err)
			}
			perms, err := bitbucketv1.GetUsersPermissionResponse(resp)
			if err != nil {
				t.Fatalf("GetUsersPermissionResponse: %v", err)
			}
			found := false
			for _, p := range perms {
				if p.User.Name == "alice" {
					found = true
					if p.Permission != "REPO_ADMIN" || p.User.Slug != "alice" || p.User.ID == 0 {
						t.Errorf("alice's repository permission decoded as %+v", p)
					}
				}
			}
			if !found {
				t.Errorf("GetUsersWithAnyPermission_24 does not list alice: %+v", perms)
			}

			// The token holds PROJECT_READ: project permissions need PROJECT_ADMIN.
			if _, err := api.GetUsersWithAnyPermission_23("GF", nil); err == nil {
				t.Errorf("GetUsersWithAnyPermission_23 (project permissions) succeeded with a PROJECT_READ token")
			}
			// A hidden repository is refused.
			if _, err := api.GetRepository("HIDDEN", "secret"); err == nil {
				t.Errorf("GetRepository(HIDDEN/secret) succeeded")
			}
			// Tokens cannot create tokens, through this client too.
			resp, err = api.CreateAccessToken("alice", "child", false, true)
			if err == nil {
				t.Errorf("CreateAccessToken with a token succeeded")
			} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("CreateAccessToken with a token: %v", err)
			} else if !strings.Contains(resp.Message, "401") {
				t.Errorf("CreateAccessToken with a token: message %q", resp.Message)
			}
		})
	}

	// The listing shows the token was used.
	got := getJSON[restToken](t, s, userTokens("alice")+"/"+tok.ID, alice.Name, alice.Password)
	if got.LastAuthenticated == nil {
		t.Errorf("lastAuthenticated missing after the client used the token")
	}
}
