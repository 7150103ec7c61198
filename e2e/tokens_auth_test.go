package e2e

// HTTP access tokens: how each kind may be presented (Bearer, Basic with a
// user name or e-mail, git credential helpers), what project and repository
// tokens are bound to, bad input, and the per-user maximum.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestAccessTokenPersonalSchemes: a personal token replaces the password
// everywhere: Basic user:token and email:token, Bearer, git over HTTPS with
// the token in the URL, a credential helper, an extra header, or an existing
// clone switched with git remote set-url. Another user's name is refused.
func TestAccessTokenPersonalSchemes(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "SCH", "Schemes")
	s.createRepo(t, "SCH", "Code")
	alice := s.createUser(t, "alice")
	bob := s.createUser(t, "bob")
	s.grant(t, "SCH", alice.Name, "PROJECT_WRITE")
	s.grant(t, "SCH", bob.Name, "PROJECT_WRITE")
	g := newGit(t)
	work := s.seedRepo(t, g, "SCH", "code")
	tk := s.createTokenAs(t, userTokens("alice"), alice.Name, alice.Password, tokReq("laptop", "PROJECT_WRITE", "REPO_WRITE"))
	path := "/rest/api/1.0/projects/SCH/repos/code"

	t.Run("REST", func(t *testing.T) {
		for _, c := range []struct {
			what string
			hdr  http.Header
			want int
		}{
			{"Basic name:token", basicHdr(alice.Name, tk.Token), http.StatusOK},
			{"Basic email:token", basicHdr(alice.Email, tk.Token), http.StatusOK},
			{"Basic EMAIL:token (case-insensitive e-mail)", basicHdr(strings.ToUpper(alice.Email), tk.Token), http.StatusOK},
			{"Bearer token", bearerHdr(tk.Token), http.StatusOK},
			{"bearer token (scheme case-insensitive)", http.Header{"Authorization": {"bearer " + tk.Token}}, http.StatusOK},
			{"Basic other-user:token", basicHdr(bob.Name, tk.Token), http.StatusUnauthorized},
			{"Basic other-email:token", basicHdr(bob.Email, tk.Token), http.StatusUnauthorized},
			{"Basic unknown-user:token", basicHdr("nobody", tk.Token), http.StatusUnauthorized},
			{"Basic name:wrong-checksum", basicHdr(alice.Name, mutateChecksum(tk.Token)), http.StatusUnauthorized},
			{"Bearer wrong-checksum", bearerHdr(mutateChecksum(tk.Token)), http.StatusUnauthorized},
			{"Bearer password", bearerHdr(alice.Password), http.StatusUnauthorized},
		} {
			st, b, _ := s.request(t, http.MethodGet, path, c.hdr, nil)
			if expectStatus(t, c.what, st, b, c.want) && c.want == http.StatusUnauthorized {
				checkError(t, c.what, b, exAuthentication)
			}
		}
	})

	t.Run("git with the token in the URL", func(t *testing.T) {
		dir := s.expectClone(t, g, basicGit(alice.Name, tk.Token), "SCH", "code", true)
		g.commitFile(t, dir, "a.txt", "a\n", "by token")
		g.must(t, dir, "push", "-q", "origin", "HEAD:refs/heads/url-token")
		s.expectClone(t, g, basicGit(alice.Email, tk.Token), "SCH", "code", true)
		s.expectPush(t, g, basicGit(alice.Email, tk.Token), work, "SCH", "code", "email-token", true)
		s.expectClone(t, g, basicGit(bob.Name, tk.Token), "SCH", "code", false)
		s.expectPush(t, g, basicGit(bob.Name, tk.Token), work, "SCH", "code", "bob-with-alice-token", false)
		s.expectClone(t, g, basicGit(alice.Name, mutateChecksum(tk.Token)), "SCH", "code", false)
	})

	t.Run("git with Bearer in http.extraHeader", func(t *testing.T) {
		s.expectClone(t, g, bearerGit(tk.Token), "SCH", "code", true)
		s.expectPush(t, g, bearerGit(tk.Token), work, "SCH", "code", "bearer-push", true)
		s.expectClone(t, g, bearerGit(mutateChecksum(tk.Token)), "SCH", "code", false)
	})

	t.Run("git credential.helper store and remote set-url", func(t *testing.T) {
		// An existing clone made with the password...
		pw := newGit(t)
		dir := filepath.Join(t.TempDir(), "pw-clone")
		pw.must(t, "", "clone", "-q", s.gitURLAs("SCH", "code", alice.Name, alice.Password), dir)
		// ...switches to the token with git remote set-url, no re-clone.
		pw.must(t, dir, "remote", "set-url", "origin", s.gitURLAs("SCH", "code", alice.Name, tk.Token))
		pw.commitFile(t, dir, "b.txt", "b\n", "after set-url")
		pw.must(t, dir, "push", "-q", "origin", "HEAD:refs/heads/set-url")
		pw.must(t, dir, "fetch", "-q", "origin")

		// A helper holding user:token serves a URL without credentials.
		h := newGit(t)
		h.must(t, "", "config", "--global", "credential.helper", "store")
		cred := strings.Replace(s.gitURLAs("SCH", "code", alice.Name, tk.Token), "/scm/sch/code.git", "", 1)
		if err := os.WriteFile(filepath.Join(h.Home, ".git-credentials"), []byte(cred+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cdir := filepath.Join(t.TempDir(), "helper-clone")
		h.must(t, "", "clone", "-q", s.gitURL("SCH", "code"), cdir)
		h.commitFile(t, cdir, "c.txt", "c\n", "via helper")
		h.must(t, cdir, "push", "-q", "origin", "HEAD:refs/heads/helper")
		// The helper stores the e-mail form just as well.
		h2 := newGit(t)
		h2.must(t, "", "config", "--global", "credential.helper", "store")
		cred = strings.Replace(s.gitURLAs("SCH", "code", alice.Email, tk.Token), "/scm/sch/code.git", "", 1)
		if err := os.WriteFile(filepath.Join(h2.Home, ".git-credentials"), []byte(cred+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		h2.must(t, "", "ls-remote", s.gitURL("SCH", "code"))
	})
}

// TestAccessTokenProjectAndRepoTokens: project and repository tokens are
// created by project or repository administrators, act as a SERVICE user,
// are accepted only as Bearer, and reach their project or repository only.
func TestAccessTokenProjectAndRepoTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "PA", "Project A")
	s.createProject(t, "PB", "Project B")
	s.createRepo(t, "PA", "One")
	s.createRepo(t, "PA", "Two")
	s.createRepo(t, "PB", "Other")
	padm := s.createUser(t, "padm")
	pwr := s.createUser(t, "pwr")
	radm := s.createUser(t, "radm")
	rwr := s.createUser(t, "rwr")
	s.grant(t, "PA", padm.Name, "PROJECT_ADMIN")
	s.grant(t, "PA", pwr.Name, "PROJECT_WRITE")
	s.grant(t, "PA/one", radm.Name, "REPO_ADMIN")
	s.grant(t, "PA/one", rwr.Name, "REPO_WRITE")
	g := newGit(t)
	workOne := s.seedRepo(t, g, "PA", "one")
	s.seedRepo(t, g, "PA", "two")
	workOther := s.seedRepo(t, g, "PB", "other")

	t.Run("who may create", func(t *testing.T) {
		for _, c := range []struct {
			who  testUser
			coll string
			want int
		}{
			{pwr, projectTokens("PA"), http.StatusUnauthorized},
			{radm, projectTokens("PA"), http.StatusUnauthorized},
			{rwr, repoTokens("PA", "one"), http.StatusUnauthorized},
			{radm, repoTokens("PA", "two"), http.StatusUnauthorized},
			{padm, projectTokens("PB"), http.StatusUnauthorized},
		} {
			st, b, _ := s.do(t, http.MethodPut, c.coll, c.who.Name, c.who.Password, tokReq("nope", "REPO_READ"))
			expectStatus(t, c.who.Name+" PUT "+c.coll, st, b, c.want, http.StatusNotFound)
			noSecretIn(t, "refused create", b)
		}
		// List is refused to them as well.
		st, b, _ := s.do(t, http.MethodGet, projectTokens("PA"), pwr.Name, pwr.Password, nil)
		expectStatus(t, "PROJECT_WRITE lists project tokens", st, b, http.StatusUnauthorized)
	})

	var projTok, projRead, repoTok, repoRead restToken
	t.Run("create as project and repository admins", func(t *testing.T) {
		projTok = s.createTokenAs(t, projectTokens("PA"), padm.Name, padm.Password, tokReq("pa-admin", "PROJECT_ADMIN", "REPO_ADMIN"))
		projRead = s.createTokenAs(t, "/rest/access-tokens/latest/projects/PA", padm.Name, padm.Password, tokReq("pa-read", "PROJECT_READ", "REPO_READ"))
		repoTok = s.createTokenAs(t, repoTokens("PA", "one"), radm.Name, radm.Password, tokReq("one-write", "REPO_WRITE"))
		repoRead = s.createTokenAs(t, "/rest/access-tokens/latest/projects/PA/repos/one", padm.Name, padm.Password, tokReq("one-read", "REPO_READ"))
		for _, tk := range []restToken{projTok, projRead, repoTok, repoRead} {
			checkSecret(t, tk.Name, tk.Token, "latr")
			if tk.User.Type != "SERVICE" {
				t.Errorf("%s: user type %q, want SERVICE", tk.Name, tk.User.Type)
			}
			if !tk.User.Active || tk.User.Name == "" || tk.User.Name == padm.Name || tk.User.Name == radm.Name {
				t.Errorf("%s: service user %+v", tk.Name, tk.User)
			}
		}
		if projTok.User.Name == projRead.User.Name {
			t.Errorf("two project tokens share the service user %q", projTok.User.Name)
		}
	})
	if projTok.Token == "" || repoTok.Token == "" {
		t.Fatal("creation failed")
	}

	t.Run("list, get and update", func(t *testing.T) {
		all := []string{projTok.Token, projRead.Token, repoTok.Token, repoRead.Token}
		pv, raw := s.tokenList(t, projectTokens("PA"), padm.Name, padm.Password)
		noSecretIn(t, "project token list", raw, all...)
		if len(pv) != 2 {
			t.Errorf("project PA lists %d tokens, want its 2 (not repository tokens)", len(pv))
		}
		for _, v := range pv {
			if v.User.Type != "SERVICE" {
				t.Errorf("listed project token %s has user type %q", v.ID, v.User.Type)
			}
		}
		rv, raw := s.tokenList(t, repoTokens("PA", "one"), radm.Name, radm.Password)
		noSecretIn(t, "repository token list", raw, all...)
		if len(rv) != 2 {
			t.Errorf("repository PA/one lists %d tokens, want 2", len(rv))
		}
		if rv, _ := s.tokenList(t, repoTokens("PA", "two"), padm.Name, padm.Password); len(rv) != 0 {
			t.Errorf("repository PA/two lists %d tokens, want 0", len(rv))
		}
		st, b, _ := s.do(t, http.MethodGet, projectTokens("PA")+"/"+projTok.ID, padm.Name, padm.Password, nil)
		mustStatus(t, "GET project token", st, b, http.StatusOK)
		noSecretIn(t, "GET project token", b, all...)
		checkShape(t, "GET project token", b, map[string]string{"id": "string", "user.type": "string", "permissions": "array", "createdDate": "number"})
		// A repository token is not found under the project, nor under another repository.
		st, b, _ = s.do(t, http.MethodGet, projectTokens("PA")+"/"+repoTok.ID, padm.Name, padm.Password, nil)
		expectStatus(t, "repository token under the project path", st, b, http.StatusNotFound)
		st, b, _ = s.do(t, http.MethodGet, repoTokens("PA", "two")+"/"+repoTok.ID, padm.Name, padm.Password, nil)
		expectStatus(t, "repository token under another repository", st, b, http.StatusNotFound)
		st, b, _ = s.do(t, http.MethodGet, userTokens("padm")+"/"+projTok.ID, padm.Name, padm.Password, nil)
		expectStatus(t, "project token under the creator's personal tokens", st, b, http.StatusNotFound)
		if uv, _ := s.tokenList(t, userTokens("padm"), padm.Name, padm.Password); len(uv) != 0 {
			t.Errorf("padm's personal tokens list %d project tokens", len(uv))
		}
		// Update the name.
		st, b, _ = s.do(t, http.MethodPost, repoTokens("PA", "one")+"/"+repoRead.ID, radm.Name, radm.Password, map[string]any{"name": "one-read-renamed"})
		if expectStatus(t, "rename repository token", st, b, http.StatusOK) {
			if up := decodeJSON[restToken](t, b); up.Name != "one-read-renamed" || up.User.Type != "SERVICE" {
				t.Errorf("renamed: %+v", up)
			}
		}
	})

	t.Run("Bearer only", func(t *testing.T) {
		path := "/rest/api/1.0/projects/PA/repos/one"
		for _, tk := range []restToken{projTok, repoTok} {
			st, b, _ := s.doBearer(t, http.MethodGet, path, tk.Token, nil)
			expectStatus(t, tk.Name+" Bearer REST", st, b, http.StatusOK)
			for _, user := range []string{tk.User.Name, tk.User.Slug, "x-token-auth", padm.Name, "anything"} {
				st, b, _ := s.do(t, http.MethodGet, path, user, tk.Token, nil)
				if expectStatus(t, tk.Name+" Basic "+user+":token REST", st, b, http.StatusUnauthorized) {
					checkError(t, "Basic with project/repo token", b, exAuthentication)
				}
			}
			s.expectClone(t, g, bearerGit(tk.Token), "PA", "one", true)
			s.expectClone(t, g, basicGit(tk.User.Name, tk.Token), "PA", "one", false)
			s.expectClone(t, g, basicGit("x-token-auth", tk.Token), "PA", "one", false)
			st, _, _ = s.infoRefs(t, "PA", "one", "git-upload-pack", "x-token-auth", tk.Token, nil)
			if st != http.StatusUnauthorized {
				t.Errorf("%s: info/refs with Basic: %d, want 401", tk.Name, st)
			}
		}
	})

	t.Run("project token is bound to its project", func(t *testing.T) {
		b := bearerGit(projTok.Token)
		s.expectClone(t, g, b, "PA", "one", true)
		s.expectClone(t, g, b, "PA", "two", true)
		s.expectPush(t, g, b, workOne, "PA", "one", "by-project-token", true)
		s.expectClone(t, g, b, "PB", "other", false)
		s.expectPush(t, g, b, workOther, "PB", "other", "by-project-token", false)
		st, body := s.createRepoWith(t, bearerHdr(projTok.Token), "PA", "Made By Token")
		expectStatus(t, "project token (PROJECT_ADMIN) creates a repository in its project", st, body, http.StatusCreated)
		st, body = s.createRepoWith(t, bearerHdr(projTok.Token), "PB", "Made By Token")
		expectStatus(t, "project token creates a repository in another project", st, body, refusedStatus...)
		for _, p := range []string{"/rest/api/1.0/projects/PB", "/rest/api/1.0/projects/PB/repos/other", "/rest/api/1.0/projects/PB/repos"} {
			st, body, _ := s.doBearer(t, http.MethodGet, p, projTok.Token, nil)
			expectStatus(t, "project token GET "+p, st, body, refusedStatus...)
		}
		st, body, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/PA", projTok.Token, nil)
		expectStatus(t, "project token GET its project", st, body, http.StatusOK)

		// Read-only project token: clones, cannot push.
		r := bearerGit(projRead.Token)
		s.expectClone(t, g, r, "PA", "two", true)
		s.expectPush(t, g, r, workOne, "PA", "one", "by-read-token", false)
	})

	t.Run("project token listings show its project and repositories", func(t *testing.T) {
		projects := listKeys(t, s, "/rest/api/1.0/projects", bearerHdr(projTok.Token), func(p restProject) string { return p.Key })
		if !slices.Equal(projects, []string{"PA"}) {
			t.Errorf("GET /rest/api/1.0/projects with a PA project token lists %v, want [PA]", projects)
		}
		repos := listKeys(t, s, "/rest/api/1.0/projects/PA/repos", bearerHdr(projTok.Token), func(r restRepo) string { return r.Slug })
		if !slices.Contains(repos, "one") || !slices.Contains(repos, "two") {
			t.Errorf("GET /rest/api/1.0/projects/PA/repos with a PA project token lists %v, want one and two", repos)
		}
		all := listKeys(t, s, "/rest/api/1.0/repos", bearerHdr(projTok.Token), func(r restRepo) string { return r.Project.Key + "/" + r.Slug })
		if !slices.Contains(all, "PA/one") || slices.Contains(all, "PB/other") {
			t.Errorf("GET /rest/api/1.0/repos with a PA project token lists %v, want PA's repositories only", all)
		}
	})

	t.Run("repository token is bound to its repository", func(t *testing.T) {
		b := bearerGit(repoTok.Token)
		s.expectClone(t, g, b, "PA", "one", true)
		s.expectPush(t, g, b, workOne, "PA", "one", "by-repo-token", true)
		s.expectClone(t, g, b, "PA", "two", false)
		s.expectPush(t, g, b, workOne, "PA", "two", "by-repo-token", false)
		s.expectClone(t, g, b, "PB", "other", false)
		st, body := s.createRepoWith(t, bearerHdr(repoTok.Token), "PA", "By Repo Token")
		expectStatus(t, "repository token creates a repository", st, body, refusedStatus...)
		for _, p := range []string{"/rest/api/1.0/projects/PA/repos/two", "/rest/api/1.0/projects/PB/repos/other"} {
			st, body, _ := s.doBearer(t, http.MethodGet, p, repoTok.Token, nil)
			expectStatus(t, "repository token GET "+p, st, body, refusedStatus...)
		}
		all := listKeys(t, s, "/rest/api/1.0/repos", bearerHdr(repoTok.Token), func(r restRepo) string { return r.Project.Key + "/" + r.Slug })
		if !slices.Equal(all, []string{"PA/one"}) {
			t.Errorf("GET /rest/api/1.0/repos with a PA/one repository token lists %v, want [PA/one]", all)
		}
		r := bearerGit(repoRead.Token)
		s.expectClone(t, g, r, "PA", "one", true)
		s.expectPush(t, g, r, workOne, "PA", "one", "by-repo-read", false)
	})

	t.Run("update takes effect at once", func(t *testing.T) {
		st, b, _ := s.do(t, http.MethodPost, repoTokens("PA", "one")+"/"+repoTok.ID, radm.Name, radm.Password, map[string]any{"permissions": []string{"REPO_READ"}})
		mustStatus(t, "downgrade repository token", st, b, http.StatusOK)
		s.expectPush(t, g, bearerGit(repoTok.Token), workOne, "PA", "one", "after-downgrade", false)
		s.expectClone(t, g, bearerGit(repoTok.Token), "PA", "one", true)
	})

	t.Run("delete revokes at once and removes the service user", func(t *testing.T) {
		for _, c := range []struct {
			tk   restToken
			coll string
			who  testUser
		}{{projTok, projectTokens("PA"), padm}, {repoTok, repoTokens("PA", "one"), radm}} {
			st, b, _ := s.do(t, http.MethodDelete, c.coll+"/"+c.tk.ID, c.who.Name, c.who.Password, nil)
			mustStatus(t, "delete "+c.tk.Name, st, b, http.StatusNoContent)
			st, b, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/PA/repos/one", c.tk.Token, nil)
			expectStatus(t, c.tk.Name+" after delete", st, b, http.StatusUnauthorized)
			s.expectClone(t, g, bearerGit(c.tk.Token), "PA", "one", false)
			st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/users/"+c.tk.User.Slug, nil)
			expectStatus(t, "service user of a deleted token", st, b, http.StatusNotFound)
		}
	})
}

// TestAccessTokenResourceLifecycle: a repository token follows its
// repository through a rename, and deleting a repository or a project
// revokes the tokens bound to it.
func TestAccessTokenResourceLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "LC", "Lifecycle")
	s.createProject(t, "GONE", "Gone")
	s.createRepo(t, "LC", "Old Name")
	s.createRepo(t, "LC", "Doomed")
	s.createRepo(t, "GONE", "Code")
	g := newGit(t)
	s.seedRepo(t, g, "LC", "old-name")
	s.seedRepo(t, g, "LC", "doomed")
	repoTok := s.createTokenAs(t, repoTokens("LC", "old-name"), adminName, s.AdminPassword, tokReq("rename", "REPO_READ"))
	doomedTok := s.createTokenAs(t, repoTokens("LC", "doomed"), adminName, s.AdminPassword, tokReq("doomed", "REPO_READ"))
	goneTok := s.createTokenAs(t, projectTokens("GONE"), adminName, s.AdminPassword, tokReq("gone", "PROJECT_READ", "REPO_READ"))

	t.Run("repository renamed", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPut, "/rest/api/1.0/projects/LC/repos/old-name", map[string]any{"name": "New Name"})
		mustStatus(t, "rename", st, b, http.StatusOK, http.StatusCreated)
		s.expectClone(t, g, bearerGit(repoTok.Token), "LC", "new-name", true)
		if vs, _ := s.tokenList(t, repoTokens("LC", "new-name"), adminName, s.AdminPassword); len(vs) != 1 {
			t.Errorf("renamed repository lists %d tokens, want 1", len(vs))
		}
	})
	t.Run("repository deleted", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/projects/LC/repos/doomed", nil)
		mustStatus(t, "delete repository", st, b, http.StatusAccepted, http.StatusNoContent, http.StatusOK)
		// A new repository of the same name is not reachable with the old token.
		s.createRepo(t, "LC", "Doomed")
		s.expectClone(t, g, bearerGit(doomedTok.Token), "LC", "doomed", false)
		st, b, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/LC/repos/doomed", doomedTok.Token, nil)
		expectStatus(t, "token of a deleted repository on its successor", st, b, refusedStatus...)
		st, b, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/repos", doomedTok.Token, nil)
		expectStatus(t, "token of a deleted repository", st, b, http.StatusUnauthorized)
		st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/users/"+doomedTok.User.Slug, nil)
		expectStatus(t, "service user of a deleted repository's token", st, b, http.StatusNotFound)
	})
	t.Run("project deleted", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/projects/GONE/repos/code", nil)
		mustStatus(t, "delete repository", st, b, http.StatusAccepted, http.StatusNoContent, http.StatusOK)
		st, b = s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/projects/GONE", nil)
		mustStatus(t, "delete project", st, b, http.StatusNoContent, http.StatusOK)
		s.createProject(t, "GONE", "Gone again")
		s.createRepo(t, "GONE", "Code")
		s.expectClone(t, g, bearerGit(goneTok.Token), "GONE", "code", false)
		st, b, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects", goneTok.Token, nil)
		expectStatus(t, "token of a deleted project", st, b, http.StatusUnauthorized)
		st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/users/"+goneTok.User.Slug, nil)
		expectStatus(t, "service user of a deleted project's token", st, b, http.StatusNotFound)
	})
}

// listKeys GETs every page of path with hdr and returns key(v) for each value.
func listKeys[T any](t testing.TB, s *Server, path string, hdr http.Header, key func(T) string) []string {
	t.Helper()
	st, b, _ := s.request(t, http.MethodGet, path+"?limit=1000", hdr, nil)
	if !expectStatus(t, "GET "+path, st, b, http.StatusOK) {
		return nil
	}
	p := decodeJSON[page[T]](t, b)
	out := []string{}
	for _, v := range p.Values {
		out = append(out, key(v))
	}
	slices.Sort(out)
	return out
}

// TestAccessTokenBadInput: bad bodies and Authorization headers get a 400
// or 401 in the envelope, never a 5xx, and nothing is half-written.
func TestAccessTokenBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "BAD", "Bad")
	s.createRepo(t, "BAD", "Code")
	u := s.createUser(t, "inputs")
	s.grant(t, "BAD", u.Name, "PROJECT_ADMIN")
	good := s.createTokenAs(t, userTokens("inputs"), u.Name, u.Password, tokReq("good", "PROJECT_READ", "REPO_READ"))
	project := s.createTokenAs(t, projectTokens("BAD"), u.Name, u.Password, tokReq("project", "PROJECT_READ", "REPO_READ"))

	huge := `{"name":"` + strings.Repeat("x", 2<<20) + `","permissions":["REPO_READ"]}`
	bodies := []struct {
		what string
		body any
	}{
		{"no name", `{"permissions":["REPO_READ"]}`},
		{"empty name", `{"name":"","permissions":["REPO_READ"]}`},
		{"blank name", `{"name":"   ","permissions":["REPO_READ"]}`},
		{"name too long", map[string]any{"name": strings.Repeat("n", 300), "permissions": []string{"REPO_READ"}}},
		{"name not a string", `{"name":42,"permissions":["REPO_READ"]}`},
		{"null name", `{"name":null,"permissions":["REPO_READ"]}`},
		{"empty permissions", `{"name":"x","permissions":[]}`},
		{"unknown permission", `{"name":"x","permissions":["REPO_FLY"]}`},
		{"global permission", `{"name":"x","permissions":["ADMIN"]}`},
		{"SYS_ADMIN permission", `{"name":"x","permissions":["SYS_ADMIN","REPO_ADMIN"]}`},
		{"PROJECT_CREATE permission", `{"name":"x","permissions":["PROJECT_CREATE","REPO_ADMIN"]}`},
		{"lower-case permission", `{"name":"x","permissions":["repo_read"]}`},
		{"two repository levels", `{"name":"x","permissions":["REPO_READ","REPO_WRITE"]}`},
		{"two project levels", `{"name":"x","permissions":["PROJECT_READ","PROJECT_WRITE","REPO_ADMIN"]}`},
		{"permissions not an array", `{"name":"x","permissions":"REPO_READ"}`},
		{"permission not a string", `{"name":"x","permissions":[1]}`},
		{"negative expiryDays", `{"name":"x","permissions":["REPO_READ"],"expiryDays":-1}`},
		{"absurd expiryDays", `{"name":"x","permissions":["REPO_READ"],"expiryDays":1000000}`},
		{"overflowing expiryDays", `{"name":"x","permissions":["REPO_READ"],"expiryDays":99999999999999999999}`},
		{"fractional expiryDays", `{"name":"x","permissions":["REPO_READ"],"expiryDays":1.5}`},
		{"string expiryDays", `{"name":"x","permissions":["REPO_READ"],"expiryDays":"30"}`},
		{"malformed JSON", `{"name":"x",`},
		{"not JSON", `name=x&permissions=REPO_READ`},
		{"empty body", ``},
		{"JSON array", `[]`},
		{"JSON string", `"x"`},
		{"two JSON values", `{"name":"x","permissions":["REPO_READ"]}{"name":"y"}`},
		{"oversized body", huge},
	}
	ok4xx := []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}

	t.Run("create", func(t *testing.T) {
		// Every body on personal tokens; the ones that matter on the others
		// (each request checks a password, which is deliberately slow).
		some := map[string]bool{"no name": true, "empty permissions": true, "unknown permission": true,
			"negative expiryDays": true, "absurd expiryDays": true, "malformed JSON": true, "oversized body": true, "two project levels": true}
		for _, coll := range []string{userTokens("inputs"), projectTokens("BAD"), repoTokens("BAD", "code")} {
			for _, c := range bodies {
				if coll != userTokens("inputs") && !some[c.what] {
					continue
				}
				st, b, _ := s.do(t, http.MethodPut, coll, u.Name, u.Password, c.body)
				if expectStatus(t, "PUT "+coll+": "+c.what, st, b, ok4xx...) {
					checkError(t, c.what, b, "")
				}
			}
		}
	})
	t.Run("update", func(t *testing.T) {
		for _, c := range bodies {
			if strings.HasPrefix(c.what, "no name") || strings.Contains(c.what, "null name") {
				continue // fields may be omitted on update
			}
			st, b, _ := s.do(t, http.MethodPost, userTokens("inputs")+"/"+good.ID, u.Name, u.Password, c.body)
			if expectStatus(t, "POST update: "+c.what, st, b, ok4xx...) {
				checkError(t, c.what, b, "")
			}
		}
		for _, id := range []string{"000000000000", "1", "abc", "%20", strings.Repeat("9", 40)} {
			st, b, _ := s.do(t, http.MethodPost, userTokens("inputs")+"/"+id, u.Name, u.Password, tokReq("x"))
			expectStatus(t, "update unknown id "+id, st, b, http.StatusNotFound, http.StatusBadRequest)
			st, b, _ = s.do(t, http.MethodGet, userTokens("inputs")+"/"+id, u.Name, u.Password, nil)
			expectStatus(t, "get unknown id "+id, st, b, http.StatusNotFound, http.StatusBadRequest)
			st, b, _ = s.do(t, http.MethodDelete, userTokens("inputs")+"/"+id, u.Name, u.Password, nil)
			expectStatus(t, "delete unknown id "+id, st, b, http.StatusNotFound, http.StatusBadRequest)
		}
	})
	t.Run("nothing half-written", func(t *testing.T) {
		vs, _ := s.tokenList(t, userTokens("inputs"), u.Name, u.Password)
		if len(vs) != 1 || vs[0].ID != good.ID || vs[0].Name != "good" || !slices.Equal(vs[0].Permissions, []string{"PROJECT_READ", "REPO_READ"}) {
			t.Errorf("after bad input the user's tokens are %+v", vs)
		}
		if pv, _ := s.tokenList(t, projectTokens("BAD"), u.Name, u.Password); len(pv) != 1 {
			t.Errorf("after bad input the project has %d tokens, want 1", len(pv))
		}
		if rv, _ := s.tokenList(t, repoTokens("BAD", "code"), u.Name, u.Password); len(rv) != 0 {
			t.Errorf("after bad input the repository has %d tokens, want 0", len(rv))
		}
		// No service user was left behind by a refused project or repository token.
		users := allPages[restUser](t, s, "/rest/api/1.0/users", adminName, s.AdminPassword)
		n := 0
		for _, x := range users {
			if x.Type == "SERVICE" {
				n++
			}
		}
		if n > 1 {
			t.Errorf("%d SERVICE users exist for 1 project token: refused creates left service users behind", n)
		}
	})
	t.Run("duplicate names are allowed", func(t *testing.T) {
		a := s.createTokenAs(t, userTokens("inputs"), u.Name, u.Password, tokReq("same", "REPO_READ"))
		b := s.createTokenAs(t, userTokens("inputs"), u.Name, u.Password, tokReq("same", "REPO_READ"))
		if a.ID == b.ID || a.Token == b.Token {
			t.Errorf("duplicate-named tokens share id or secret")
		}
		// Permission names given twice are one permission.
		st, body, _ := s.do(t, http.MethodPut, userTokens("inputs"), u.Name, u.Password, tokReq("twice", "REPO_READ", "REPO_READ"))
		expectStatus(t, "same permission twice", st, body, http.StatusOK, http.StatusBadRequest)
		if st == http.StatusOK {
			tk := decodeJSON[restToken](t, body)
			s.addSecret(tk.Token)
			// A repository level alone comes with PROJECT_READ.
			if !slices.Equal(tk.Permissions, []string{"PROJECT_READ", "REPO_READ"}) {
				t.Errorf("permissions %v", tk.Permissions)
			}
		}
	})
	t.Run("a level alone implies its partner", func(t *testing.T) {
		for perm, want := range map[string][]string{
			"PROJECT_READ":  {"PROJECT_READ", "REPO_READ"},
			"PROJECT_WRITE": {"PROJECT_WRITE", "REPO_WRITE"},
			"REPO_ADMIN":    {"PROJECT_READ", "REPO_ADMIN"},
		} {
			tk := s.createTokenAs(t, userTokens("inputs"), u.Name, u.Password, tokReq("alone "+perm, perm))
			if !slices.Equal(tk.Permissions, want) {
				t.Errorf("%s alone: permissions %v, want %v", perm, tk.Permissions, want)
			}
			st, body, _ := s.do(t, http.MethodDelete, userTokens("inputs")+"/"+tk.ID, u.Name, u.Password, nil)
			mustStatus(t, "delete", st, body, http.StatusNoContent)
		}
	})

	t.Run("malformed Authorization headers", func(t *testing.T) {
		b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
		wrongKind := "latz_" + good.Token[5:len(good.Token)-6]
		wrongKind += crcBase62(wrongKind)
		asPersonal := "latp_" + project.Token[5:len(project.Token)-6]
		asPersonal += crcBase62(asPersonal)
		headers := []struct{ what, h string }{
			{"Bearer without token", "Bearer"},
			{"Bearer and spaces", "Bearer    "},
			{"Bearer two words", "Bearer " + good.Token + " extra"},
			{"Bearer with tab", "Bearer\t" + good.Token},
			{"Basic without value", "Basic"},
			{"Basic not base64", "Basic !!!"},
			{"Basic no colon", "Basic " + b64("inputs")},
			{"Basic empty user", "Basic " + b64(":"+good.Token)},
			{"Basic empty password", "Basic " + b64("inputs:")},
			{"Basic invalid UTF-8", "Basic " + b64("inputs:\xff\xfe")},
			{"unknown scheme", "Token " + good.Token},
			{"Digest scheme", `Digest username="inputs"`},
			{"bare token", good.Token},
			{"Bearer wrong checksum", "Bearer " + mutateChecksum(good.Token)},
			{"Basic wrong checksum", "Basic " + b64("inputs:"+mutateChecksum(good.Token))},
			{"Bearer truncated", "Bearer " + good.Token[:len(good.Token)-1]},
			{"Bearer extended", "Bearer " + good.Token + "A"},
			{"Bearer upper-case prefix", "Bearer " + strings.ToUpper(good.Token[:4]) + good.Token[4:]},
			{"Bearer unknown kind, valid checksum", "Bearer " + wrongKind},
			{"Bearer project token re-prefixed as personal", "Bearer " + asPersonal},
			{"Bearer never issued", "Bearer " + newTokenLike("latp")},
			{"Bearer never issued (latr)", "Bearer " + newTokenLike("latr")},
			{"Bearer 5000 bytes", "Bearer " + strings.Repeat("a", 5000)},
			{"Basic 5000 bytes", "Basic " + b64("inputs:"+strings.Repeat("p", 5000))},
			{"Bearer password", "Bearer " + u.Password},
		}
		for _, c := range headers {
			st, b, _ := s.request(t, http.MethodGet, "/rest/api/1.0/projects/BAD", http.Header{"Authorization": {c.h}}, nil)
			if expectStatus(t, "REST "+c.what, st, b, http.StatusUnauthorized) {
				checkError(t, c.what, b, "")
			}
			st, b, _ = s.infoRefs(t, "BAD", "code", "git-upload-pack", "", "", http.Header{"Authorization": {c.h}})
			expectStatus(t, "git info/refs "+c.what, st, b, http.StatusUnauthorized)
		}
		// The good token still works after all that.
		st, b, _ := s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/BAD", good.Token, nil)
		expectStatus(t, "good token", st, b, http.StatusOK)
	})
}

// TestAccessTokenMaximum: a user holds at most 100 tokens (the default);
// the limit holds under concurrent creation, and deleting one frees a slot.
func TestAccessTokenMaximum(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "many")
	coll := userTokens("many")

	create := func(name string) (int, []byte, error) {
		st, b, _, err := s.trySend(s.client, http.MethodPut, coll, basicHdr(u.Name, u.Password), tokReq(name, "REPO_READ"))
		if err == nil && st == http.StatusOK {
			var tk restToken
			if jerr := json.Unmarshal(b, &tk); jerr == nil {
				s.addSecret(tk.Token)
			}
		}
		return st, b, err
	}
	burst := func(n int, prefix string) map[int]int {
		var mu sync.Mutex
		counts := map[int]int{}
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				st, b, err := create(fmt.Sprintf("%s-%d", prefix, i))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				counts[st]++
				if st != http.StatusOK && st != http.StatusBadRequest {
					t.Errorf("create %s-%d: %d %s", prefix, i, st, truncate(b, 300))
				}
			}()
		}
		wg.Wait()
		return counts
	}

	if c := burst(90, "fill"); c[http.StatusOK] != 90 {
		t.Fatalf("creating 90 tokens: statuses %v", c)
	}
	// 20 concurrent creates for the last 10 slots: exactly 10 succeed.
	if c := burst(20, "race"); c[http.StatusOK] != 10 || c[http.StatusBadRequest] != 10 {
		t.Errorf("20 concurrent creates with 10 slots left: statuses %v, want 10×200 and 10×400", c)
	}
	vs, _ := s.tokenList(t, coll, u.Name, u.Password)
	if len(vs) != 100 {
		t.Fatalf("user has %d tokens, want 100", len(vs))
	}
	st, b, err := create("one-too-many")
	if err != nil {
		t.Fatal(err)
	}
	if expectStatus(t, "101st token", st, b, http.StatusBadRequest) {
		errs := checkError(t, "101st token", b, "")
		if len(errs) > 0 && !strings.Contains(errs[0].Message, "maximum number of tokens") {
			t.Errorf("message %q, want one containing \"maximum number of tokens\"", errs[0].Message)
		}
	}
	// Paging over the 100.
	p := getJSON[page[restToken]](t, s, coll, u.Name, u.Password)
	if p.Size != 25 || p.IsLastPage || p.NextPageStart == nil || *p.NextPageStart != 25 {
		t.Errorf("default page over 100 tokens: size %d isLastPage %v nextPageStart %v", p.Size, p.IsLastPage, p.NextPageStart)
	}
	// Deleting one frees one slot.
	st, b, _ = s.do(t, http.MethodDelete, coll+"/"+vs[0].ID, u.Name, u.Password, nil)
	mustStatus(t, "delete one", st, b, http.StatusNoContent)
	if st, b, _ := create("after-delete"); st != http.StatusOK {
		t.Errorf("create after delete: %d %s", st, truncate(b, 300))
	}
	if st, b, _ := create("after-delete-2"); st != http.StatusBadRequest {
		t.Errorf("create over the limit again: %d %s", st, truncate(b, 300))
	}
	// The limit is per user: another user still creates.
	v := s.createUser(t, "few")
	s.createTokenAs(t, userTokens("few"), v.Name, v.Password, tokReq("mine", "REPO_READ"))
}

// TestAccessTokenRefusedUseNotRecorded: lastAuthenticated records uses that
// authenticated; a refused presentation (another user's name, Basic with a
// project token, an address outside the token's allowed ranges) leaves it
// untouched.
func TestAccessTokenRefusedUseNotRecorded(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "REF", "Refused")
	u := s.createUser(t, "refu")
	s.grant(t, "REF", u.Name, "PROJECT_ADMIN")
	wrongUser := s.createTokenAs(t, userTokens("refu"), u.Name, u.Password, tokReq("wrong-user", "PROJECT_READ", "REPO_READ"))
	project := s.createTokenAs(t, projectTokens("REF"), u.Name, u.Password, tokReq("project", "PROJECT_READ", "REPO_READ"))
	outside := s.createTokenAs(t, userTokens("refu"), u.Name, u.Password,
		map[string]any{"name": "outside", "permissions": []string{"PROJECT_READ", "REPO_READ"}, "allowedCidrs": []string{"203.0.113.0/24"}})

	for _, c := range []struct {
		what string
		hdr  http.Header
	}{
		{"another user's name", basicHdr("admin", wrongUser.Token)},
		{"Basic with a project token", basicHdr(project.User.Name, project.Token)},
		{"outside the allowed ranges (Bearer)", bearerHdr(outside.Token)},
		{"outside the allowed ranges (Basic)", basicHdr(u.Name, outside.Token)},
	} {
		st, b, _ := s.request(t, http.MethodGet, "/rest/api/1.0/projects/REF", c.hdr, nil)
		expectStatus(t, c.what, st, b, http.StatusUnauthorized)
	}
	for _, c := range []struct{ coll, id string }{
		{userTokens("refu"), wrongUser.ID}, {projectTokens("REF"), project.ID}, {userTokens("refu"), outside.ID},
	} {
		st, b, _ := s.do(t, http.MethodGet, c.coll+"/"+c.id, u.Name, u.Password, nil)
		mustStatus(t, "GET token", st, b, http.StatusOK)
		if tk := decodeJSON[restToken](t, b); tk.LastAuthenticated != nil {
			t.Errorf("token %q shows lastAuthenticated %d after refused uses only: %s", tk.Name, *tk.LastAuthenticated, truncate(b, 400))
		}
	}
}
