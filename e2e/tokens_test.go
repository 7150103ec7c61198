package e2e

// HTTP access tokens (issue 3) end to end: personal, project and repository
// tokens created, listed, updated and revoked over the Data Center REST API
// and used with the real git client. This file holds the shared helpers, the
// lifecycle, the permission table, the ceiling rule, administrators and the
// refusal of tokens acting on credentials; tokens_auth_test.go holds the
// Bearer/Basic rules, bounds, bad input and the per-user maximum, and
// tokens_hygiene_test.go the secret hygiene check.

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Helpers

// restToken is the Data Center access token shape.
type restToken struct {
	ID                string   `json:"id"`
	CreatedDate       int64    `json:"createdDate"`
	ExpiryDate        *int64   `json:"expiryDate"`
	LastAuthenticated *int64   `json:"lastAuthenticated"`
	Name              string   `json:"name"`
	Permissions       []string `json:"permissions"`
	User              restUser `json:"user"`
	Token             string   `json:"token"`
}

const tokAPI = "/rest/access-tokens/1.0"

func userTokens(slug string) string      { return tokAPI + "/users/" + slug }
func projectTokens(key string) string    { return tokAPI + "/projects/" + key }
func repoTokens(key, slug string) string { return tokAPI + "/projects/" + key + "/repos/" + slug }

// tokReq is a create or update body: name and permissions (omitted when nil).
func tokReq(name string, perms ...string) map[string]any {
	m := map[string]any{"name": name}
	if perms != nil {
		m["permissions"] = perms
	}
	return m
}

// tokenSecretRE is the token format of DESIGN.md: {prefix}_{32 base62}{6 base62}.
var tokenSecretRE = regexp.MustCompile(`^([a-z]{4})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$`)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// crcBase62 is the checksum of DESIGN.md, computed here independently of the
// server's token package: CRC32 (IEEE) in base62, left-padded with 0 to 6.
func crcBase62(body string) string {
	sum := crc32.ChecksumIEEE([]byte(body))
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = base62[sum%62]
		sum /= 62
	}
	return string(b[:])
}

// checkSecret checks a token secret's format, prefix and checksum.
func checkSecret(t testing.TB, what, secret, prefix string) {
	t.Helper()
	m := tokenSecretRE.FindStringSubmatch(secret)
	if m == nil {
		t.Errorf("%s: token %q does not match {prefix}_{32 base62}{6 base62}", what, redact(secret))
		return
	}
	if m[1] != prefix {
		t.Errorf("%s: token prefix %q, want %q", what, m[1], prefix)
	}
	if want := crcBase62(secret[:len(secret)-6]); m[3] != want {
		t.Errorf("%s: token checksum %q, want CRC32 base62 %q", what, m[3], want)
	}
}

// redact keeps a secret out of test messages.
func redact(s string) string {
	if len(s) < 10 {
		return "***"
	}
	return s[:5] + "…" + s[len(s)-4:]
}

// mutateChecksum returns secret with its last character changed: same
// shape, wrong checksum.
func mutateChecksum(secret string) string {
	last := secret[len(secret)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return secret[:len(secret)-1] + string(repl)
}

// newTokenLike returns a well-formed token of prefix with a valid checksum
// that the server never issued.
func newTokenLike(prefix string) string {
	body := prefix + "_" + strings.Repeat("Q", 16) + randomBase62(16)
	return body + crcBase62(body)
}

func randomBase62(n int) string {
	h := randomHex(n)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(base62[int(h[i])%62])
	}
	return b.String()
}

// createTokenAs PUTs body to the token collection coll with Basic
// user:pass, requires 200 and returns the token; its secret is registered so
// that the server log is checked for it.
func (s *Server) createTokenAs(t testing.TB, coll, user, pass string, body any) restToken {
	t.Helper()
	st, b, _ := s.do(t, http.MethodPut, coll, user, pass, body)
	mustStatus(t, "PUT "+coll, st, b, http.StatusOK)
	tok := decodeJSON[restToken](t, b)
	s.addSecret(tok.Token)
	if tok.Token == "" {
		t.Fatalf("PUT %s: no token secret in the creation response: %s", coll, truncate(b, 400))
	}
	return tok
}

// tokenList GETs a token collection as user:pass and returns every value
// and the raw body.
func (s *Server) tokenList(t testing.TB, coll, user, pass string) ([]restToken, []byte) {
	t.Helper()
	st, b, _ := s.do(t, http.MethodGet, coll+"?limit=1000", user, pass, nil)
	mustStatus(t, "GET "+coll, st, b, http.StatusOK)
	p := decodeJSON[page[restToken]](t, b)
	return p.Values, b
}

func findToken(ts []restToken, id string) (restToken, bool) {
	for _, tk := range ts {
		if tk.ID == id {
			return tk, true
		}
	}
	return restToken{}, false
}

// noSecretIn fails when raw contains a "token" field or any of secrets.
func noSecretIn(t testing.TB, what string, raw []byte, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(string(raw), sec) {
			t.Errorf("%s: the response contains a token secret (%s)", what, redact(sec))
		}
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["token"]; ok {
				t.Errorf("%s: a \"token\" field appears outside the creation response: %s", what, truncate(raw, 300))
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

// gitAuth is how a git command presents a token.
type gitAuth struct {
	user, pass string // Basic in the URL when user != ""
	bearer     string // http.extraHeader Authorization: Bearer when set
}

func basicGit(user, pass string) gitAuth { return gitAuth{user: user, pass: pass} }
func bearerGit(tok string) gitAuth       { return gitAuth{bearer: tok} }

// url returns the clone URL of key/slug for a, and the git options that
// go before the subcommand.
func (s *Server) gitArgs(a gitAuth, key, slug string) (string, []string) {
	if a.user != "" {
		return s.gitURLAs(key, slug, a.user, a.pass), nil
	}
	var opts []string
	if a.bearer != "" {
		opts = []string{"-c", "http.extraHeader=Authorization: Bearer " + a.bearer}
	}
	return s.gitURL(key, slug), opts
}

// tryClone clones key/slug into a new directory and returns the output and
// error.
func (s *Server) tryClone(t testing.TB, g *gitClient, a gitAuth, key, slug string) (string, string, error) {
	t.Helper()
	u, opts := s.gitArgs(a, key, slug)
	dir := filepath.Join(t.TempDir(), "clone")
	out, err := g.run("", append(opts, "clone", "-q", u, dir)...)
	return dir, out, err
}

// tryPush pushes HEAD of dir to a new branch of key/slug.
func (s *Server) tryPush(g *gitClient, a gitAuth, dir, key, slug, branch string) (string, error) {
	u, opts := s.gitArgs(a, key, slug)
	return g.run(dir, append(opts, "push", "-q", u, "HEAD:refs/heads/"+branch)...)
}

// canClone and canPush report whether the operation succeeds, failing t when
// the answer differs from want.
func (s *Server) expectClone(t testing.TB, g *gitClient, a gitAuth, key, slug string, want bool) string {
	t.Helper()
	dir, out, err := s.tryClone(t, g, a, key, slug)
	if (err == nil) != want {
		t.Errorf("clone %s/%s: succeeded=%v, want %v\n%s", key, slug, err == nil, want, out)
	}
	return dir
}

func (s *Server) expectPush(t testing.TB, g *gitClient, a gitAuth, dir, key, slug, branch string, want bool) {
	t.Helper()
	out, err := s.tryPush(g, a, dir, key, slug, branch)
	if (err == nil) != want {
		t.Errorf("push %s/%s %s: succeeded=%v, want %v\n%s", key, slug, branch, err == nil, want, out)
	}
}

// seedRepo pushes one commit on main to key/slug as the admin and returns a
// working clone whose HEAD is that commit.
func (s *Server) seedRepo(t testing.TB, g *gitClient, key, slug string) string {
	t.Helper()
	dir := g.initRepo(t)
	g.commitFile(t, dir, "README.md", "seed of "+key+"/"+slug+"\n", "seed")
	g.must(t, dir, "push", "-q", s.gitURLAs(key, slug, adminName, s.AdminPassword), "main")
	return dir
}

// refusedStatus is what Data Center answers a request it does not permit:
// 401 (its convention) or, for resources the caller may not see, 404.
var refusedStatus = []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound}

// createRepoAs tries POST /rest/api/1.0/projects/{key}/repos with hdr and
// returns the status.
func (s *Server) createRepoWith(t testing.TB, hdr http.Header, key, name string) (int, []byte) {
	t.Helper()
	st, b, _ := s.request(t, http.MethodPost, "/rest/api/1.0/projects/"+key+"/repos", hdr, map[string]any{"name": name})
	return st, b
}

func basicHdr(user, pass string) http.Header {
	return http.Header{"Authorization": {basicAuth(user, pass)}}
}
func bearerHdr(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// runParallel runs f for every item on at most n goroutines, each as a
// subtest named name(item).
func runParallel[T any](t *testing.T, n int, items []T, name func(T) string, f func(*testing.T, T)) {
	t.Helper()
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(name(it), func(t *testing.T) { f(t, it) })
		}()
	}
	wg.Wait()
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// ---------------------------------------------------------------------------
// Lifecycle

func TestAccessTokenLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	alice := s.createUser(t, "alice")
	other := s.createUser(t, "otto")
	s.createProject(t, "LIFE", "Life")
	s.createRepo(t, "LIFE", "Code")
	s.grant(t, "LIFE", alice.Name, "PROJECT_WRITE")
	g := newGit(t)
	work := s.seedRepo(t, g, "LIFE", "code")

	var withExpiry, noExpiry restToken
	t.Run("create on 1.0 with expiryDays", func(t *testing.T) {
		before := nowMillis()
		st, b, _ := s.do(t, http.MethodPut, userTokens("alice"), alice.Name, alice.Password,
			map[string]any{"name": "laptop", "permissions": []string{"PROJECT_READ", "REPO_WRITE"}, "expiryDays": 30})
		after := nowMillis()
		mustStatus(t, "create", st, b, http.StatusOK)
		checkShape(t, "create response", b, map[string]string{
			"id": "string", "name": "string", "permissions": "array", "createdDate": "number",
			"expiryDate": "number", "user": "object", "user.name": "string", "user.type": "string", "token": "string",
		})
		withExpiry = decodeJSON[restToken](t, b)
		s.addSecret(withExpiry.Token)
		if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(withExpiry.ID) {
			t.Errorf("id %q is not a 12-digit string", withExpiry.ID)
		}
		if withExpiry.Name != "laptop" {
			t.Errorf("name %q", withExpiry.Name)
		}
		if got := slices.Sorted(slices.Values(withExpiry.Permissions)); !slices.Equal(got, []string{"PROJECT_READ", "REPO_WRITE"}) {
			t.Errorf("permissions %v", withExpiry.Permissions)
		}
		if withExpiry.CreatedDate < before-1000 || withExpiry.CreatedDate > after+1000 {
			t.Errorf("createdDate %d not within [%d, %d] (epoch ms)", withExpiry.CreatedDate, before, after)
		}
		if withExpiry.ExpiryDate == nil || *withExpiry.ExpiryDate != withExpiry.CreatedDate+30*24*3600*1000 {
			t.Errorf("expiryDate %v, want createdDate + 30 days exactly = %d", withExpiry.ExpiryDate, withExpiry.CreatedDate+30*24*3600*1000)
		}
		if withExpiry.User.Name != "alice" || withExpiry.User.Type != "NORMAL" || withExpiry.User.Slug != "alice" {
			t.Errorf("user %+v, want alice (NORMAL)", withExpiry.User)
		}
		if withExpiry.LastAuthenticated != nil {
			t.Errorf("a new token has lastAuthenticated %d", *withExpiry.LastAuthenticated)
		}
		checkSecret(t, "personal token", withExpiry.Token, "latp")
	})
	t.Run("create on latest without expiry", func(t *testing.T) {
		noExpiry = s.createTokenAs(t, "/rest/access-tokens/latest/users/alice", alice.Name, alice.Password,
			tokReq("ci", "PROJECT_READ", "REPO_READ"))
		checkSecret(t, "personal token", noExpiry.Token, "latp")
		if noExpiry.ExpiryDate != nil {
			t.Errorf("a token created without expiryDays has expiryDate %d", *noExpiry.ExpiryDate)
		}
		if noExpiry.ID == withExpiry.ID || noExpiry.Token == withExpiry.Token {
			t.Errorf("two tokens share an id or a secret")
		}
	})
	if withExpiry.Token == "" || noExpiry.Token == "" {
		t.Fatal("token creation failed")
	}
	secrets := []string{withExpiry.Token, noExpiry.Token}

	t.Run("expiry is createdDate plus N days for several N", func(t *testing.T) {
		for _, n := range []int{1, 7, 365, 3650} {
			tk := s.createTokenAs(t, userTokens("alice"), alice.Name, alice.Password,
				map[string]any{"name": fmt.Sprintf("exp-%d", n), "permissions": []string{"REPO_READ"}, "expiryDays": n})
			if tk.ExpiryDate == nil || *tk.ExpiryDate-tk.CreatedDate != int64(n)*86_400_000 {
				t.Errorf("expiryDays %d: expiryDate %v, createdDate %d", n, tk.ExpiryDate, tk.CreatedDate)
			}
			st, b, _ := s.do(t, http.MethodDelete, userTokens("alice")+"/"+tk.ID, alice.Name, alice.Password, nil)
			expectStatus(t, "delete", st, b, http.StatusNoContent)
		}
	})

	t.Run("list and get never show the secret", func(t *testing.T) {
		for _, api := range []string{"1.0", "latest"} {
			coll := "/rest/access-tokens/" + api + "/users/alice"
			vs, raw := s.tokenList(t, coll, alice.Name, alice.Password)
			noSecretIn(t, "GET "+coll, raw, secrets...)
			for _, want := range []restToken{withExpiry, noExpiry} {
				got, ok := findToken(vs, want.ID)
				if !ok {
					t.Errorf("GET %s: token %s missing", coll, want.ID)
					continue
				}
				if got.Name != want.Name || got.CreatedDate != want.CreatedDate || !slices.Equal(got.Permissions, want.Permissions) {
					t.Errorf("GET %s: token %+v differs from created %+v", coll, got, want)
				}
				if (got.ExpiryDate == nil) != (want.ExpiryDate == nil) || (got.ExpiryDate != nil && *got.ExpiryDate != *want.ExpiryDate) {
					t.Errorf("GET %s: expiryDate %v, want %v", coll, got.ExpiryDate, want.ExpiryDate)
				}
			}
			st, b, _ := s.do(t, http.MethodGet, coll+"/"+withExpiry.ID, alice.Name, alice.Password, nil)
			mustStatus(t, "GET token", st, b, http.StatusOK)
			noSecretIn(t, "GET "+coll+"/{id}", b, secrets...)
			checkShape(t, "GET token", b, map[string]string{"id": "string", "createdDate": "number", "expiryDate": "number", "name": "string", "permissions": "array", "user": "object"})
		}
		// Paging envelope on the list.
		st, b, _ := s.do(t, http.MethodGet, userTokens("alice")+"?limit=1", alice.Name, alice.Password, nil)
		mustStatus(t, "GET ?limit=1", st, b, http.StatusOK)
		p := decodeJSON[page[restToken]](t, b)
		if p.Size != 1 || p.IsLastPage || p.NextPageStart == nil || *p.NextPageStart != 1 || p.Limit != 1 {
			t.Errorf("paging: %s", truncate(b, 300))
		}
	})

	t.Run("lastAuthenticated appears after use, at once", func(t *testing.T) {
		before := nowMillis()
		st, b, _ := s.do(t, http.MethodGet, "/rest/api/1.0/projects/LIFE", alice.Name, noExpiry.Token, nil)
		mustStatus(t, "use token", st, b, http.StatusOK)
		after := nowMillis()
		vs, _ := s.tokenList(t, userTokens("alice"), alice.Name, alice.Password)
		got, _ := findToken(vs, noExpiry.ID)
		if got.LastAuthenticated == nil {
			t.Fatalf("lastAuthenticated missing right after a use (pending uses must be shown)")
		}
		if la := *got.LastAuthenticated; la < before-1000 || la > after+1000 {
			t.Errorf("lastAuthenticated %d not within [%d, %d]", la, before, after)
		}
		if other, _ := findToken(vs, withExpiry.ID); other.LastAuthenticated != nil {
			t.Errorf("an unused token shows lastAuthenticated %d", *other.LastAuthenticated)
		}
		st, b, _ = s.do(t, http.MethodGet, userTokens("alice")+"/"+noExpiry.ID, alice.Name, alice.Password, nil)
		mustStatus(t, "GET token", st, b, http.StatusOK)
		checkShape(t, "GET used token", b, map[string]string{"lastAuthenticated": "number"})

		// A git use moves it forward.
		time.Sleep(5 * time.Millisecond)
		before = nowMillis()
		s.expectClone(t, g, basicGit(alice.Name, withExpiry.Token), "LIFE", "code", true)
		vs, _ = s.tokenList(t, userTokens("alice"), alice.Name, alice.Password)
		got, _ = findToken(vs, withExpiry.ID)
		if got.LastAuthenticated == nil || *got.LastAuthenticated < before-1000 {
			t.Errorf("after a git clone lastAuthenticated is %v, want ≥ %d", got.LastAuthenticated, before)
		}
	})

	t.Run("update name and permissions, effective at once", func(t *testing.T) {
		a := basicGit(alice.Name, withExpiry.Token)
		s.expectPush(t, g, a, work, "LIFE", "code", "before-update", true)

		coll := userTokens("alice") + "/" + withExpiry.ID
		st, b, _ := s.do(t, http.MethodPost, coll, alice.Name, alice.Password, tokReq("laptop (read only)", "PROJECT_READ", "REPO_READ"))
		mustStatus(t, "update", st, b, http.StatusOK)
		noSecretIn(t, "update response", b, secrets...)
		up := decodeJSON[restToken](t, b)
		if up.ID != withExpiry.ID || up.Name != "laptop (read only)" || !slices.Equal(up.Permissions, []string{"PROJECT_READ", "REPO_READ"}) {
			t.Errorf("update response %+v", up)
		}
		if up.CreatedDate != withExpiry.CreatedDate || up.ExpiryDate == nil || *up.ExpiryDate != *withExpiry.ExpiryDate {
			t.Errorf("update changed createdDate/expiryDate: %+v", up)
		}
		got := getJSON[restToken](t, s, coll, alice.Name, alice.Password)
		if got.Name != up.Name || !slices.Equal(got.Permissions, up.Permissions) {
			t.Errorf("GET after update: %+v", got)
		}
		// The very next request sees the new permissions.
		s.expectPush(t, g, a, work, "LIFE", "code", "after-downgrade", false)
		s.expectClone(t, g, a, "LIFE", "code", true)

		// Only the name: permissions stay.
		st, b, _ = s.do(t, http.MethodPost, coll, alice.Name, alice.Password, map[string]any{"name": "laptop"})
		mustStatus(t, "rename", st, b, http.StatusOK)
		if up := decodeJSON[restToken](t, b); up.Name != "laptop" || !slices.Equal(up.Permissions, []string{"PROJECT_READ", "REPO_READ"}) {
			t.Errorf("rename only: %+v", up)
		}
		// Back to write: push works again at once.
		st, b, _ = s.do(t, http.MethodPost, coll, alice.Name, alice.Password, map[string]any{"permissions": []string{"PROJECT_WRITE", "REPO_WRITE"}})
		mustStatus(t, "upgrade", st, b, http.StatusOK)
		s.expectPush(t, g, a, work, "LIFE", "code", "after-upgrade", true)
	})

	t.Run("expiry cannot be changed", func(t *testing.T) {
		for _, body := range []map[string]any{
			{"expiryDays": 5},
			{"name": "x", "expiryDays": 90},
			{"name": "x", "permissions": []string{"REPO_READ"}, "expiryDays": 1},
		} {
			for _, id := range []string{withExpiry.ID, noExpiry.ID} {
				st, b, _ := s.do(t, http.MethodPost, userTokens("alice")+"/"+id, alice.Name, alice.Password, body)
				if !expectStatus(t, fmt.Sprintf("update %v", body), st, b, http.StatusBadRequest) {
					continue
				}
				errs := checkError(t, "expiry change", b, "")
				if len(errs) > 0 && !strings.Contains(errs[0].Message, "The expiry of a token cannot be changed") {
					t.Errorf("message %q, want \"The expiry of a token cannot be changed\"", errs[0].Message)
				}
			}
		}
		got := getJSON[restToken](t, s, userTokens("alice")+"/"+withExpiry.ID, alice.Name, alice.Password)
		if got.Name != "laptop" || got.ExpiryDate == nil || *got.ExpiryDate != *withExpiry.ExpiryDate {
			t.Errorf("a refused update changed the token: %+v", got)
		}
	})

	t.Run("another user cannot see or touch the tokens", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"GET", userTokens("alice")},
			{"GET", userTokens("alice") + "/" + noExpiry.ID},
			{"POST", userTokens("alice") + "/" + noExpiry.ID},
			{"DELETE", userTokens("alice") + "/" + noExpiry.ID},
			{"PUT", userTokens("alice")},
		} {
			var body any
			if c.method == "POST" || c.method == "PUT" {
				body = tokReq("hijack", "REPO_READ")
			}
			st, b, _ := s.do(t, c.method, c.path, other.Name, other.Password, body)
			if expectStatus(t, "otto: "+c.method+" "+c.path, st, b, http.StatusUnauthorized) {
				checkError(t, c.method+" "+c.path, b, exAuthorisation)
			}
		}
		// otto's own token id under alice's slug is not found either way.
		ot := s.createTokenAs(t, userTokens("otto"), other.Name, other.Password, tokReq("mine", "REPO_READ"))
		st, b, _ := s.do(t, http.MethodGet, userTokens("alice")+"/"+ot.ID, alice.Name, alice.Password, nil)
		expectStatus(t, "alice reads otto's token id under her slug", st, b, http.StatusNotFound)
		st, b, _ = s.do(t, http.MethodDelete, userTokens("alice")+"/"+ot.ID, alice.Name, alice.Password, nil)
		expectStatus(t, "alice deletes otto's token id under her slug", st, b, http.StatusNotFound)
	})

	t.Run("delete revokes at once", func(t *testing.T) {
		st, b, _ := s.do(t, http.MethodGet, "/rest/api/1.0/projects/LIFE", alice.Name, noExpiry.Token, nil)
		mustStatus(t, "use before delete", st, b, http.StatusOK)
		st, b, _ = s.do(t, http.MethodDelete, userTokens("alice")+"/"+noExpiry.ID, alice.Name, alice.Password, nil)
		mustStatus(t, "delete", st, b, http.StatusNoContent)
		if len(b) != 0 {
			t.Errorf("204 with a body: %s", truncate(b, 200))
		}
		st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/projects/LIFE", alice.Name, noExpiry.Token, nil)
		if expectStatus(t, "use after delete (Basic)", st, b, http.StatusUnauthorized) {
			checkError(t, "revoked token", b, exAuthentication)
		}
		st, b, _ = s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/LIFE", noExpiry.Token, nil)
		expectStatus(t, "use after delete (Bearer)", st, b, http.StatusUnauthorized)
		s.expectClone(t, g, basicGit(alice.Name, noExpiry.Token), "LIFE", "code", false)

		st, b, _ = s.do(t, http.MethodGet, userTokens("alice")+"/"+noExpiry.ID, alice.Name, alice.Password, nil)
		expectStatus(t, "GET deleted token", st, b, http.StatusNotFound)
		st, b, _ = s.do(t, http.MethodDelete, userTokens("alice")+"/"+noExpiry.ID, alice.Name, alice.Password, nil)
		expectStatus(t, "DELETE deleted token", st, b, http.StatusNotFound)
		st, b, _ = s.do(t, http.MethodPost, userTokens("alice")+"/"+noExpiry.ID, alice.Name, alice.Password, tokReq("zombie"))
		expectStatus(t, "update deleted token", st, b, http.StatusNotFound)
		vs, _ := s.tokenList(t, userTokens("alice"), alice.Name, alice.Password)
		if _, ok := findToken(vs, noExpiry.ID); ok {
			t.Errorf("deleted token still listed")
		}
		// The other token is untouched.
		s.expectClone(t, g, basicGit(alice.Name, withExpiry.Token), "LIFE", "code", true)
	})

	t.Run("unknown user slug", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodGet, userTokens("nobody-here"), nil)
		if expectStatus(t, "GET tokens of unknown user", st, b, http.StatusNotFound) {
			checkError(t, "unknown user", b, exNoSuchUser)
		}
	})
}

// ---------------------------------------------------------------------------
// Permission table

// tokenPair is one valid pair of token permissions.
type tokenPair struct{ project, repo string }

var validPairs = []tokenPair{
	{"PROJECT_READ", "REPO_READ"},
	{"PROJECT_READ", "REPO_WRITE"},
	{"PROJECT_WRITE", "REPO_WRITE"},
	{"PROJECT_READ", "REPO_ADMIN"},
	{"PROJECT_WRITE", "REPO_ADMIN"},
	{"PROJECT_ADMIN", "REPO_ADMIN"},
}

var invalidPairs = []tokenPair{
	{"PROJECT_WRITE", "REPO_READ"},
	{"PROJECT_ADMIN", "REPO_READ"},
	{"PROJECT_ADMIN", "REPO_WRITE"},
}

func levelOf(perm string) int {
	switch {
	case strings.HasSuffix(perm, "_READ"):
		return 1
	case strings.HasSuffix(perm, "_WRITE"):
		return 2
	case strings.HasSuffix(perm, "_ADMIN"):
		return 3
	}
	return 0
}

// tableOwner is a token owner with one grant; proj and repo are the levels
// that grant gives on project TBL and its repository.
type tableOwner struct {
	name, resource, perm string
	proj, repo           int
}

var tableOwners = []tableOwner{
	{"own-none", "", "", 0, 0},
	{"own-rr", "TBL/table", "REPO_READ", 0, 1},
	{"own-rw", "TBL/table", "REPO_WRITE", 0, 2},
	{"own-ra", "TBL/table", "REPO_ADMIN", 0, 3},
	{"own-pr", "TBL", "PROJECT_READ", 1, 1},
	{"own-pw", "TBL", "PROJECT_WRITE", 2, 2},
	{"own-pa", "TBL", "PROJECT_ADMIN", 3, 3},
}

// TestAccessTokenPermissionTable checks every valid pair of token
// permissions against owners holding each project and repository level:
// clone needs read, push write, and creating a repository in the project
// PROJECT_ADMIN, each on both the token and its owner (and reading the
// repository's permissions, a repository setting, REPO_ADMIN).
func TestAccessTokenPermissionTable(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "TBL", "Table")
	s.createRepo(t, "TBL", "Table")
	g := newGit(t)
	work := s.seedRepo(t, g, "TBL", "table")
	users := map[string]testUser{}
	for _, o := range tableOwners {
		users[o.name] = s.createUser(t, o.name)
		if o.perm != "" {
			s.grant(t, o.resource, o.name, o.perm)
		}
	}

	type row struct {
		o tableOwner
		p tokenPair
	}
	var rows []row
	for _, o := range tableOwners {
		for _, p := range validPairs {
			rows = append(rows, row{o, p})
		}
	}
	name := func(r row) string { return r.o.name + "/" + r.p.project + "+" + r.p.repo }
	runParallel(t, 4, rows, name, func(t *testing.T, r row) {
		u := users[r.o.name]
		tok := s.createTokenAs(t, userTokens(r.o.name), u.Name, u.Password, tokReq(name(r), r.p.project, r.p.repo))
		repoLvl := min(r.o.repo, levelOf(r.p.repo))
		projLvl := min(r.o.proj, levelOf(r.p.project))
		a := basicGit(u.Name, tok.Token)
		branch := strings.NewReplacer("/", "-", "+", "-").Replace(strings.ToLower(name(r)))

		s.expectClone(t, g, a, "TBL", "table", repoLvl >= 1)
		s.expectPush(t, g, a, work, "TBL", "table", branch, repoLvl >= 2)

		st, b := s.createRepoWith(t, bearerHdr(tok.Token), "TBL", "new-"+branch)
		if projLvl >= 3 {
			expectStatus(t, "create repository (PROJECT_ADMIN on token and owner)", st, b, http.StatusCreated)
		} else if expectStatus(t, "create repository without PROJECT_ADMIN", st, b, refusedStatus...) {
			checkError(t, "create repository refused", b, "")
		}

		st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/projects/TBL/repos/table/permissions/users", u.Name, tok.Token, nil)
		if repoLvl >= 3 {
			expectStatus(t, "read repository permissions (REPO_ADMIN)", st, b, http.StatusOK)
		} else {
			expectStatus(t, "read repository permissions without REPO_ADMIN", st, b, refusedStatus...)
		}
	})

	t.Run("invalid pairs are refused", func(t *testing.T) {
		u := users["own-pa"]
		for _, p := range invalidPairs {
			for _, coll := range []string{userTokens("own-pa"), projectTokens("TBL")} {
				st, b, _ := s.do(t, http.MethodPut, coll, u.Name, u.Password, tokReq("bad", p.project, p.repo))
				if expectStatus(t, fmt.Sprintf("PUT %s %s+%s", coll, p.project, p.repo), st, b, http.StatusBadRequest) {
					checkError(t, "invalid pair", b, "")
				}
				// Update to an invalid pair is refused too.
			}
		}
		tk := s.createTokenAs(t, userTokens("own-pa"), u.Name, u.Password, tokReq("ok", "PROJECT_READ", "REPO_READ"))
		for _, p := range invalidPairs {
			st, b, _ := s.do(t, http.MethodPost, userTokens("own-pa")+"/"+tk.ID, u.Name, u.Password, tokReq("bad", p.project, p.repo))
			expectStatus(t, fmt.Sprintf("update to %s+%s", p.project, p.repo), st, b, http.StatusBadRequest)
		}
		got := getJSON[restToken](t, s, userTokens("own-pa")+"/"+tk.ID, u.Name, u.Password)
		if !slices.Equal(got.Permissions, []string{"PROJECT_READ", "REPO_READ"}) || got.Name != "ok" {
			t.Errorf("a refused update changed the token: %+v", got)
		}
	})

	t.Run("repository tokens take REPO_* only", func(t *testing.T) {
		for _, perms := range [][]string{{"PROJECT_READ", "REPO_READ"}, {"PROJECT_READ"}, {"PROJECT_ADMIN", "REPO_ADMIN"}, {"ADMIN"}} {
			st, b := s.asAdmin(t, http.MethodPut, repoTokens("TBL", "table"), tokReq("repo", perms...))
			if expectStatus(t, fmt.Sprintf("repository token %v", perms), st, b, http.StatusBadRequest) {
				checkError(t, "repository token with project permission", b, "")
			}
		}
		for _, perm := range []string{"REPO_READ", "REPO_WRITE", "REPO_ADMIN"} {
			tk := s.createTokenAs(t, repoTokens("TBL", "table"), adminName, s.AdminPassword, tokReq("repo-"+perm, perm))
			checkSecret(t, "repository token", tk.Token, "latr")
			if !slices.Equal(tk.Permissions, []string{perm}) {
				t.Errorf("repository token permissions %v, want [%s]", tk.Permissions, perm)
			}
		}
	})

	t.Run("project tokens take the six pairs", func(t *testing.T) {
		for _, p := range validPairs {
			tk := s.createTokenAs(t, projectTokens("TBL"), adminName, s.AdminPassword, tokReq("proj", p.project, p.repo))
			checkSecret(t, "project token", tk.Token, "latr")
			if got := slices.Sorted(slices.Values(tk.Permissions)); !slices.Equal(got, []string{p.project, p.repo}) {
				t.Errorf("project token permissions %v, want %v", tk.Permissions, p)
			}
		}
	})
}

// TestAccessTokenDefaultPermissions: a token created without permissions
// acts with its owner's current access, whatever that is.
func TestAccessTokenDefaultPermissions(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "DEF", "Default")
	s.createRepo(t, "DEF", "Code")
	g := newGit(t)
	work := s.seedRepo(t, g, "DEF", "code")

	type owner struct {
		name, resource, perm string
		clone, push, create  bool
	}
	owners := []owner{
		{"def-rr", "DEF/code", "REPO_READ", true, false, false},
		{"def-rw", "DEF/code", "REPO_WRITE", true, true, false},
		{"def-pw", "DEF", "PROJECT_WRITE", true, true, false},
		{"def-pa", "DEF", "PROJECT_ADMIN", true, true, true},
	}
	for _, o := range owners {
		t.Run(o.name, func(t *testing.T) {
			u := s.createUser(t, o.name)
			s.grant(t, o.resource, o.name, o.perm)
			tk := s.createTokenAs(t, userTokens(o.name), u.Name, u.Password, map[string]any{"name": "default"})
			if len(tk.Permissions) == 0 {
				t.Errorf("a token created without permissions lists none")
			}
			var proj, repo string
			for _, p := range tk.Permissions {
				if strings.HasPrefix(p, "PROJECT_") {
					proj = p
				} else {
					repo = p
				}
			}
			if repo == "" || levelOf(repo) < levelOf(proj) {
				t.Errorf("default permissions %v are not a valid pair", tk.Permissions)
			}
			a := basicGit(u.Name, tk.Token)
			s.expectClone(t, g, a, "DEF", "code", o.clone)
			s.expectPush(t, g, a, work, "DEF", "code", "default-"+o.name, o.push)
			st, b := s.createRepoWith(t, basicHdr(u.Name, tk.Token), "DEF", "made-by-"+o.name)
			if o.create {
				expectStatus(t, "create repository", st, b, http.StatusCreated)
			} else {
				expectStatus(t, "create repository", st, b, refusedStatus...)
			}
		})
	}

	// Issue 3: "Default, when permissions is omitted: the creator's current
	// levels, as in Data Center" ("your token's permissions will be set at
	// your current level of access by default"). For a creator holding
	// PROJECT_WRITE on their only project those levels are PROJECT_WRITE and
	// REPO_WRITE: the token must say so, and must not grow when the creator
	// is later promoted.
	t.Run("default is the creator's levels at creation", func(t *testing.T) {
		u := s.createUser(t, "def-snap")
		s.grant(t, "DEF", u.Name, "PROJECT_WRITE")
		tk := s.createTokenAs(t, userTokens("def-snap"), u.Name, u.Password, map[string]any{"name": "default"})
		if got := slices.Sorted(slices.Values(tk.Permissions)); !slices.Equal(got, []string{"PROJECT_WRITE", "REPO_WRITE"}) {
			t.Errorf("default permissions of a PROJECT_WRITE creator: %v, want [PROJECT_WRITE REPO_WRITE]", tk.Permissions)
		}
		s.grant(t, "DEF", u.Name, "PROJECT_ADMIN")
		st, b := s.createRepoWith(t, bearerHdr(tk.Token), "DEF", "made-after-promotion")
		expectStatus(t, "default token after its creator's promotion creates a repository", st, b, refusedStatus...)
	})
}

// ---------------------------------------------------------------------------
// Ceiling rule

// TestAccessTokenCeiling: a personal token never grants more than its owner
// holds now. Removing the owner's permission removes the token's on the very
// next request; deleting the owner stops every token of theirs.
func TestAccessTokenCeiling(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "CEIL", "Ceiling")
	s.createRepo(t, "CEIL", "Code")
	g := newGit(t)
	work := s.seedRepo(t, g, "CEIL", "code")
	u := s.createUser(t, "ceil")
	s.grant(t, "CEIL", u.Name, "PROJECT_WRITE")
	full := s.createTokenAs(t, userTokens("ceil"), u.Name, u.Password, tokReq("full", "PROJECT_ADMIN", "REPO_ADMIN"))
	bearer := s.createTokenAs(t, userTokens("ceil"), u.Name, u.Password, tokReq("bearer", "PROJECT_ADMIN", "REPO_ADMIN"))
	a := basicGit(u.Name, full.Token)
	repoPath := "/rest/api/1.0/projects/CEIL/repos/code"

	t.Run("token capped by owner's PROJECT_WRITE", func(t *testing.T) {
		s.expectClone(t, g, a, "CEIL", "code", true)
		s.expectPush(t, g, a, work, "CEIL", "code", "ceil-1", true)
		st, b := s.createRepoWith(t, basicHdr(u.Name, full.Token), "CEIL", "not-allowed")
		expectStatus(t, "create repository with owner at PROJECT_WRITE", st, b, refusedStatus...)
	})
	t.Run("owner promoted: token follows", func(t *testing.T) {
		s.grant(t, "CEIL", u.Name, "PROJECT_ADMIN")
		st, b := s.createRepoWith(t, bearerHdr(bearer.Token), "CEIL", "allowed-now")
		expectStatus(t, "create repository with owner at PROJECT_ADMIN", st, b, http.StatusCreated)
	})
	t.Run("owner's grant removed: token loses it on the next request", func(t *testing.T) {
		s.revoke(t, "CEIL", u.Name)
		st, b, _ := s.do(t, http.MethodGet, repoPath, u.Name, full.Token, nil)
		expectStatus(t, "GET repository after revoke", st, b, refusedStatus...)
		st, b, _ = s.doBearer(t, http.MethodGet, repoPath, bearer.Token, nil)
		expectStatus(t, "GET repository after revoke (Bearer)", st, b, refusedStatus...)
		s.expectClone(t, g, a, "CEIL", "code", false)
		s.expectPush(t, g, a, work, "CEIL", "code", "ceil-2", false)
		st, b = s.createRepoWith(t, bearerHdr(bearer.Token), "CEIL", "after-revoke")
		expectStatus(t, "create repository after revoke", st, b, refusedStatus...)
	})
	t.Run("owner given REPO_READ: token reads, cannot push", func(t *testing.T) {
		s.grant(t, "CEIL/code", u.Name, "REPO_READ")
		s.expectClone(t, g, a, "CEIL", "code", true)
		s.expectPush(t, g, a, work, "CEIL", "code", "ceil-3", false)
	})
	t.Run("access through a group follows membership", func(t *testing.T) {
		s.createGroup(t, "ceil-writers", u.Name)
		s.grantGroup(t, "CEIL/code", "ceil-writers", "REPO_WRITE")
		s.expectPush(t, g, a, work, "CEIL", "code", "ceil-4", true)
		st, b := s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups/remove-user", map[string]any{"context": "ceil-writers", "itemName": u.Name})
		mustStatus(t, "remove from group", st, b, http.StatusOK, http.StatusNoContent)
		s.expectPush(t, g, a, work, "CEIL", "code", "ceil-5", false)
		s.expectClone(t, g, a, "CEIL", "code", true)
	})
	t.Run("owner deleted: every token refused", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodDelete, "/rest/api/1.0/admin/users?name="+u.Name, nil)
		mustStatus(t, "delete owner", st, b, http.StatusOK, http.StatusNoContent)
		for _, tk := range []string{full.Token, bearer.Token} {
			st, b, _ := s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects", tk, nil)
			if expectStatus(t, "Bearer token of a deleted owner", st, b, http.StatusUnauthorized) {
				checkError(t, "deleted owner", b, exAuthentication)
			}
			st, b, _ = s.do(t, http.MethodGet, "/rest/api/1.0/projects", u.Name, tk, nil)
			expectStatus(t, "Basic token of a deleted owner", st, b, http.StatusUnauthorized)
		}
		s.expectClone(t, g, a, "CEIL", "code", false)
		// A new user with the same name does not inherit the tokens.
		u2 := s.createUser(t, "ceil")
		s.grant(t, "CEIL", u2.Name, "PROJECT_ADMIN")
		st, b, _ = s.do(t, http.MethodGet, repoPath, u2.Name, full.Token, nil)
		expectStatus(t, "old token with a re-created user of the same name", st, b, http.StatusUnauthorized)
		vs, _ := s.tokenList(t, userTokens("ceil"), u2.Name, u2.Password)
		if len(vs) != 0 {
			t.Errorf("a re-created user sees %d tokens of the deleted one", len(vs))
		}
	})
	// A deactivated owner: TestDeactivatedUserLosesEveryCredential.
}

// ---------------------------------------------------------------------------
// Administrators

func TestAccessTokenAdministrators(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "ADM", "Admin")
	s.createRepo(t, "ADM", "Code")
	bob := s.createUser(t, "bob")
	carol := s.createUser(t, "carol")
	adm := s.createUser(t, "adm")
	sys := s.createUser(t, "sys")
	s.grant(t, "ADM", bob.Name, "PROJECT_READ")
	s.grant(t, "", adm.Name, "ADMIN")
	s.grant(t, "", sys.Name, "SYS_ADMIN")
	s.grant(t, "ADM", carol.Name, "PROJECT_ADMIN") // a project admin is no user admin

	var toks []restToken
	for i := range 4 {
		toks = append(toks, s.createTokenAs(t, userTokens("bob"), bob.Name, bob.Password, tokReq(fmt.Sprintf("bob-%d", i), "PROJECT_READ", "REPO_READ")))
	}
	uses := func(tk restToken) int {
		st, _, _ := s.doBearer(t, http.MethodGet, "/rest/api/1.0/projects/ADM/repos/code", tk.Token, nil)
		return st
	}
	var secrets []string
	for _, tk := range toks {
		secrets = append(secrets, tk.Token)
	}

	t.Run("non-admin cannot list, read, update or revoke", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", userTokens("bob"), nil},
			{"GET", userTokens("bob") + "/" + toks[0].ID, nil},
			{"POST", userTokens("bob") + "/" + toks[0].ID, tokReq("pwned", "PROJECT_READ", "REPO_READ")},
			{"DELETE", userTokens("bob") + "/" + toks[0].ID, nil},
		} {
			st, b, _ := s.do(t, c.method, c.path, carol.Name, carol.Password, c.body)
			if expectStatus(t, "carol: "+c.method+" "+c.path, st, b, http.StatusUnauthorized) {
				checkError(t, c.method, b, exAuthorisation)
			}
			noSecretIn(t, "carol's answer", b, secrets...)
		}
		if st := uses(toks[0]); st != http.StatusOK {
			t.Errorf("bob's token stopped working after carol's attempts: %d", st)
		}
	})

	for i, a := range []struct {
		who        string
		user, pass string
	}{{"ADMIN", adm.Name, adm.Password}, {"SYS_ADMIN", sys.Name, sys.Password}, {"bootstrap admin", adminName, s.AdminPassword}} {
		t.Run(a.who+" lists, updates and revokes", func(t *testing.T) {
			vs, raw := s.tokenList(t, userTokens("bob"), a.user, a.pass)
			noSecretIn(t, a.who+" list", raw, secrets...)
			tk := toks[i]
			if _, ok := findToken(vs, tk.ID); !ok {
				t.Fatalf("%s does not see bob's token %s", a.who, tk.ID)
			}
			for _, v := range vs {
				if v.User.Name != "bob" {
					t.Errorf("token %s listed with owner %q", v.ID, v.User.Name)
				}
			}
			got := getJSON[restToken](t, s, userTokens("bob")+"/"+tk.ID, a.user, a.pass)
			if got.Name != tk.Name {
				t.Errorf("GET as %s: %+v", a.who, got)
			}
			st, b, _ := s.do(t, http.MethodPost, userTokens("bob")+"/"+tk.ID, a.user, a.pass, map[string]any{"name": "renamed by " + a.who})
			if expectStatus(t, a.who+" renames", st, b, http.StatusOK) {
				if up := decodeJSON[restToken](t, b); up.Name != "renamed by "+a.who {
					t.Errorf("rename: %+v", up)
				}
			}
			// Downgrading bob's token takes effect at once.
			st, b, _ = s.do(t, http.MethodPost, userTokens("bob")+"/"+tk.ID, a.user, a.pass, map[string]any{"permissions": []string{"REPO_READ"}})
			expectStatus(t, a.who+" changes permissions", st, b, http.StatusOK)
			if st := uses(tk); st != http.StatusOK {
				t.Errorf("bob's token before revocation: %d", st)
			}
			st, b, _ = s.do(t, http.MethodDelete, userTokens("bob")+"/"+tk.ID, a.user, a.pass, nil)
			expectStatus(t, a.who+" revokes", st, b, http.StatusNoContent)
			if st := uses(tk); st != http.StatusUnauthorized {
				t.Errorf("bob's token after %s revoked it: %d, want 401", a.who, st)
			}
		})
	}

	t.Run("administrators cannot create tokens for others", func(t *testing.T) {
		for _, a := range [][2]string{{adm.Name, adm.Password}, {sys.Name, sys.Password}, {adminName, s.AdminPassword}} {
			st, b, _ := s.do(t, http.MethodPut, userTokens("bob"), a[0], a[1], tokReq("minted for bob", "REPO_READ"))
			if expectStatus(t, a[0]+" creates a token for bob", st, b, http.StatusUnauthorized) {
				checkError(t, "admin mint", b, exAuthorisation)
			}
			noSecretIn(t, "admin mint", b)
		}
		vs, _ := s.tokenList(t, userTokens("bob"), bob.Name, bob.Password)
		if len(vs) != 1 || vs[0].ID != toks[3].ID {
			t.Errorf("bob's tokens after the admins' attempts: %+v", vs)
		}
	})
}

// ---------------------------------------------------------------------------
// Tokens cannot act on credentials or accounts

func TestAccessTokenCannotManageCredentials(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	s.createProject(t, "CRED", "Credentials")
	s.createRepo(t, "CRED", "Code")
	root := s.createUser(t, "root2")
	s.grant(t, "", root.Name, "SYS_ADMIN")
	victim := s.createUser(t, "victim")
	own := s.createTokenAs(t, userTokens("root2"), root.Name, root.Password, tokReq("all", "PROJECT_ADMIN", "REPO_ADMIN"))
	other := s.createTokenAs(t, userTokens("root2"), root.Name, root.Password, tokReq("other", "PROJECT_ADMIN", "REPO_ADMIN"))
	projTok := s.createTokenAs(t, projectTokens("CRED"), adminName, s.AdminPassword, tokReq("proj", "PROJECT_ADMIN", "REPO_ADMIN"))
	repoTok := s.createTokenAs(t, repoTokens("CRED", "code"), adminName, s.AdminPassword, tokReq("repo", "REPO_ADMIN"))

	type call struct {
		method, path string
		body         any
	}
	personalCalls := []call{
		{"PUT", userTokens("root2"), tokReq("child", "REPO_READ")},
		{"PUT", "/rest/access-tokens/latest/users/root2", tokReq("child", "REPO_READ")},
		{"POST", userTokens("root2") + "/" + other.ID, tokReq("renamed", "REPO_READ")},
		{"DELETE", userTokens("root2") + "/" + other.ID, nil},
		{"PUT", projectTokens("CRED"), tokReq("child", "PROJECT_READ", "REPO_READ")},
		{"PUT", repoTokens("CRED", "code"), tokReq("child", "REPO_READ")},
		{"DELETE", projectTokens("CRED") + "/" + projTok.ID, nil},
		{"POST", "/rest/api/1.0/admin/users?" + url.Values{"name": {"made-by-token"}, "password": {"pw-" + randomHex(8)}, "displayName": {"x"}, "emailAddress": {"x@example.com"}}.Encode(), nil},
		{"DELETE", "/rest/api/1.0/admin/users?name=victim", nil},
	}
	for _, c := range []struct {
		what string
		hdr  http.Header
	}{
		{"personal token, Bearer", bearerHdr(own.Token)},
		{"personal token, Basic", basicHdr(root.Name, own.Token)},
	} {
		t.Run(c.what, func(t *testing.T) {
			for _, k := range personalCalls {
				st, b, _ := s.request(t, k.method, k.path, c.hdr, k.body)
				if expectStatus(t, k.method+" "+k.path, st, b, http.StatusUnauthorized) {
					checkError(t, k.method+" "+k.path, b, exAuthorisation)
				}
			}
		})
	}
	t.Run("project and repository tokens", func(t *testing.T) {
		for _, tk := range []restToken{projTok, repoTok} {
			for _, k := range []call{
				{"PUT", projectTokens("CRED"), tokReq("child", "PROJECT_READ", "REPO_READ")},
				{"PUT", repoTokens("CRED", "code"), tokReq("child", "REPO_READ")},
				{"POST", projectTokens("CRED") + "/" + projTok.ID, tokReq("renamed", "PROJECT_READ", "REPO_READ")},
				{"DELETE", projectTokens("CRED") + "/" + projTok.ID, nil},
				{"DELETE", repoTokens("CRED", "code") + "/" + repoTok.ID, nil},
				{"POST", "/rest/api/1.0/admin/users?name=svc-made&password=pw-" + randomHex(8) + "&displayName=x&emailAddress=y@example.com", nil},
			} {
				st, b, _ := s.doBearer(t, k.method, k.path, tk.Token, k.body)
				if expectStatus(t, tk.Name+": "+k.method+" "+k.path, st, b, http.StatusUnauthorized) {
					checkError(t, k.method+" "+k.path, b, "")
				}
			}
		}
	})
	t.Run("nothing changed", func(t *testing.T) {
		vs, _ := s.tokenList(t, userTokens("root2"), root.Name, root.Password)
		if len(vs) != 2 {
			t.Errorf("root2 has %d tokens, want 2", len(vs))
		}
		if got, ok := findToken(vs, other.ID); !ok || got.Name != "other" {
			t.Errorf("the other token was changed or deleted: %+v", got)
		}
		pv, _ := s.tokenList(t, projectTokens("CRED"), adminName, s.AdminPassword)
		if len(pv) != 1 {
			t.Errorf("project has %d tokens, want 1", len(pv))
		}
		rv, _ := s.tokenList(t, repoTokens("CRED", "code"), adminName, s.AdminPassword)
		if len(rv) != 1 {
			t.Errorf("repository has %d tokens, want 1", len(rv))
		}
		st, b := s.asAdmin(t, http.MethodGet, "/rest/api/1.0/users/victim", nil)
		expectStatus(t, "victim still exists", st, b, http.StatusOK)
		st, b = s.asAdmin(t, http.MethodGet, "/rest/api/1.0/users/made-by-token", nil)
		expectStatus(t, "no user made by a token", st, b, http.StatusNotFound)
		// The password still works for what tokens may not do.
		st, b, _ = s.do(t, http.MethodPut, userTokens("root2"), root.Name, root.Password, tokReq("by password", "REPO_READ"))
		expectStatus(t, "create with the password", st, b, http.StatusOK)
		var tk restToken
		_ = json.Unmarshal(b, &tk)
		s.addSecret(tk.Token)
		_ = victim
	})
}
