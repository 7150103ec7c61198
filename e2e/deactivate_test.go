package e2e

// Account control end to end: deactivating a user (PUT
// /rest/latch/1.0/admin/users/{slug}/active) takes away every credential at
// once, password, personal token and SSH key, and reactivating gives them
// back; password changes (own and by an administrator) retire the old
// password at once. Both are audited, and neither can be done with a token.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const deactPath = "/rest/latch/1.0/admin/users/"

func deactActivePath(slug string) string { return deactPath + slug + "/active" }

// deactCreds is one user's set of credentials.
type deactCreds struct {
	user  testUser
	token string
	key   sshKey
}

// deactCheck checks every credential of c against want (true: accepted):
// password on REST and Git, the token as Bearer and Basic on REST and as
// Bearer on Git, and the SSH key on Git.
func (s *Server) deactCheck(t *testing.T, g *gitClient, c deactCreds, key, slug string, want bool) {
	t.Helper()
	wantStatus := http.StatusUnauthorized
	if want {
		wantStatus = http.StatusOK
	}
	s.admExpect(t, "REST with the password", basicHdr(c.user.Name, c.user.Password), wantStatus)
	s.admExpect(t, "REST with the token as Bearer", bearerHdr(c.token), wantStatus)
	s.admExpect(t, "REST with the token as Basic user:token", basicHdr(c.user.Name, c.token), wantStatus)
	s.expectClone(t, g, basicGit(c.user.Name, c.user.Password), key, slug, want)
	s.expectClone(t, g, bearerGit(c.token), key, slug, want)
	_, out, err := s.cloneSSH(t, g, c.key, key, slug)
	if (err == nil) != want {
		t.Errorf("clone over SSH with the user key: succeeded=%v, want %v\n%s", err == nil, want, out)
	}
	if err != nil && !want {
		if strings.Contains(out, "internal error") {
			t.Errorf("SSH refusal of a deactivated user's key is an internal error:\n%s", out)
		}
		if n := strings.Count(out, "latch:"); n != 1 {
			t.Errorf("SSH refusal of a deactivated user's key: %d \"latch:\" lines, want one:\n%s", n, out)
		}
	}
}

// deactRawUser decodes a user and also returns its raw fields, so that a
// missing "active" is not read as false.
func deactRawUser(t testing.TB, b []byte) (restUser, map[string]any) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("user: not a JSON object: %v: %s", err, truncate(b, 300))
	}
	return decodeJSON[restUser](t, b), raw
}

// deactEvents lists the audit events of type typ whose target is target.
func (s *Server) deactEvents(t testing.TB, typ, target string) []admEvent {
	t.Helper()
	evs := getJSON[page[admEvent]](t, s, admAudit+"?type="+typ+"&limit=1000", adminName, s.AdminPassword).Values
	var out []admEvent
	for _, e := range evs {
		if e.Target == target {
			out = append(out, e)
		}
	}
	return out
}

func TestDeactivatedUserLosesEveryCredential(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	g := newGit(t)
	s.createProject(t, "DEA", "Deactivation")
	s.createRepo(t, "DEA", "r")
	s.seedRepo(t, g, "DEA", "r")
	alice := s.createUser(t, "alice")
	bob := s.createUser(t, "bob") // a plain user
	s.grant(t, "DEA/r", alice.Name, "REPO_WRITE")
	s.grant(t, "DEA/r", bob.Name, "REPO_READ")
	a := deactCreds{
		user:  alice,
		token: s.createTokenAs(t, userTokens(alice.Name), alice.Name, alice.Password, tokReq("laptop", "REPO_WRITE")).Token,
		key:   sshKeygen(t, "ed25519", 0, "alice@laptop"),
	}
	s.addUserKey(t, alice.Name, alice.Password, a.key, "")
	adminTok := s.createTokenAs(t, userTokens(adminName), adminName, s.AdminPassword, tokReq("admin-ci", "PROJECT_ADMIN")).Token

	t.Run("every credential works before", func(t *testing.T) {
		s.deactCheck(t, g, a, "DEA", "r", true)
	})

	t.Run("refused callers and bodies", func(t *testing.T) {
		for _, c := range []struct {
			what string
			hdr  http.Header
			path string
			body any
			want int
		}{
			{"the admin's token as Bearer", bearerHdr(adminTok), deactActivePath(alice.Name), `{"active":false}`, http.StatusUnauthorized},
			{"the admin's token as Basic", basicHdr(adminName, adminTok), deactActivePath(alice.Name), `{"active":false}`, http.StatusUnauthorized},
			{"alice's own token", bearerHdr(a.token), deactActivePath(bob.Name), `{"active":false}`, http.StatusUnauthorized},
			{"a non-admin's password", basicHdr(bob.Name, bob.Password), deactActivePath(alice.Name), `{"active":false}`, http.StatusUnauthorized},
			{"anonymous", nil, deactActivePath(alice.Name), `{"active":false}`, http.StatusUnauthorized},
			{"the admin deactivating themselves", basicHdr(adminName, s.AdminPassword), deactActivePath(adminName), `{"active":false}`, http.StatusBadRequest},
			{"no body", basicHdr(adminName, s.AdminPassword), deactActivePath(alice.Name), nil, http.StatusBadRequest},
			{"empty object", basicHdr(adminName, s.AdminPassword), deactActivePath(alice.Name), `{}`, http.StatusBadRequest},
			{"null", basicHdr(adminName, s.AdminPassword), deactActivePath(alice.Name), `{"active":null}`, http.StatusBadRequest},
			{"a string", basicHdr(adminName, s.AdminPassword), deactActivePath(alice.Name), `{"active":"false"}`, http.StatusBadRequest},
			{"not JSON", basicHdr(adminName, s.AdminPassword), deactActivePath(alice.Name), `active=false`, http.StatusBadRequest},
			{"two values", basicHdr(adminName, s.AdminPassword), deactActivePath(alice.Name), `{"active":false}{"active":true}`, http.StatusBadRequest},
			{"an unknown user", basicHdr(adminName, s.AdminPassword), deactActivePath("nobody"), `{"active":false}`, http.StatusNotFound},
		} {
			st, b, _ := s.request(t, http.MethodPut, c.path, c.hdr, c.body)
			if st != c.want {
				t.Errorf("%s: PUT %s answered %d, want %d; body %s", c.what, c.path, st, c.want, truncate(b, 300))
				continue
			}
			checkError(t, c.what, b, "")
		}
		// Nobody was deactivated by the refused requests.
		for _, u := range []testUser{alice, bob} {
			s.admExpect(t, u.Name+" after the refused requests", basicHdr(u.Name, u.Password), http.StatusOK)
		}
		s.admExpect(t, "the admin after trying to deactivate themselves", basicHdr(adminName, s.AdminPassword), http.StatusOK)
		if evs := s.deactEvents(t, "user.deactivated", "user:"+adminName); len(evs) != 0 {
			t.Errorf("refused self-deactivation was audited as done: %v", evs)
		}
	})

	t.Run("deactivated: every credential fails", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPut, deactActivePath(alice.Name), map[string]any{"active": false})
		mustStatus(t, "deactivate alice", st, b, http.StatusOK)
		u, raw := deactRawUser(t, b)
		if v, ok := raw["active"].(bool); !ok || v {
			t.Errorf("deactivation answer: \"active\" is %v (present %v), want false: %s", raw["active"], ok, truncate(b, 300))
		}
		if u.Name != alice.Name || u.Slug != alice.Name {
			t.Errorf("deactivation answer names %q/%q, want %q", u.Name, u.Slug, alice.Name)
		}
		checkShape(t, "deactivation answer", b, map[string]string{"name": "string", "id": "number", "slug": "string", "active": "bool", "type": "string"})
		// The user is listed as inactive.
		got := getJSON[restUser](t, s, "/rest/api/1.0/users/"+alice.Name, adminName, s.AdminPassword)
		if got.Active {
			t.Errorf("GET /rest/api/1.0/users/%s after deactivation: active true", alice.Name)
		}

		s.deactCheck(t, g, a, "DEA", "r", false)
		// A push with each credential is refused too.
		dir := s.expectClone(t, g, basicGit(adminName, s.AdminPassword), "DEA", "r", true)
		g.commitFile(t, dir, "x.txt", "x\n", "x")
		s.expectPush(t, g, basicGit(alice.Name, a.token), dir, "DEA", "r", "deact-token", false)
		if out, err := s.gitSSH(g, a.key).run(dir, "push", "-q", s.sshURL("DEA", "r"), "HEAD:refs/heads/deact-ssh"); err == nil {
			t.Errorf("push over SSH with a deactivated user's key succeeded\n%s", out)
		}
		// The user can no longer manage their own credentials.
		st, b, _ = s.do(t, http.MethodPut, userTokens(alice.Name), alice.Name, alice.Password, tokReq("new"))
		if st != http.StatusUnauthorized {
			t.Errorf("a deactivated user creating a token: %d, want 401; %s", st, truncate(b, 200))
		}
		// Other users are untouched.
		s.admExpect(t, "bob", basicHdr(bob.Name, bob.Password), http.StatusOK)

		evs := s.deactEvents(t, "user.deactivated", "user:"+alice.Name)
		if len(evs) != 1 {
			t.Fatalf("audit user.deactivated for user:%s: %d events, want 1: %v", alice.Name, len(evs), evs)
		}
		if e := evs[0]; e.actorName() != adminName || e.Outcome != "success" {
			t.Errorf("user.deactivated event %+v: want actor %s, outcome success", e, adminName)
		}
		// The refused token uses say why.
		refused := false
		for _, e := range getJSON[page[admEvent]](t, s, admAudit+"?type=token.refused&limit=1000", adminName, s.AdminPassword).Values {
			if e.actorName() == alice.Name && strings.Contains(e.Detail, "inactive") {
				refused = true
			}
		}
		if !refused {
			t.Errorf("no token.refused event for %s's token with a detail naming the inactive owner", alice.Name)
		}
		// Deactivating twice is harmless.
		st, b = s.asAdmin(t, http.MethodPut, deactActivePath(alice.Name), `{"active":false}`)
		mustStatus(t, "deactivate alice again", st, b, http.StatusOK)
	})

	t.Run("reactivated: every credential works again", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPut, deactActivePath(alice.Name), `{"active":true}`)
		mustStatus(t, "reactivate alice", st, b, http.StatusOK)
		if _, raw := deactRawUser(t, b); raw["active"] != true {
			t.Errorf("reactivation answer: \"active\" is %v, want true: %s", raw["active"], truncate(b, 300))
		}
		s.deactCheck(t, g, a, "DEA", "r", true)
		if evs := s.deactEvents(t, "user.activated", "user:"+alice.Name); len(evs) != 1 || evs[0].actorName() != adminName {
			t.Errorf("audit user.activated for user:%s: %v, want one event by %s", alice.Name, evs, adminName)
		}
	})

	t.Run("own password change", func(t *testing.T) {
		const path = "/rest/api/1.0/users/credentials"
		next := "pw2-" + randomHex(12)
		s.addSecret(next)
		body := func(cur, nw, confirm string) map[string]any {
			return map[string]any{"password": cur, "passwordNew": nw, "passwordNewConfirm": confirm}
		}
		for _, c := range []struct {
			what string
			hdr  http.Header
			body any
			want int
		}{
			{"a wrong current password", basicHdr(alice.Name, alice.Password), body("not-"+alice.Password, next, next), http.StatusBadRequest},
			{"a confirmation that does not match", basicHdr(alice.Name, alice.Password), body(alice.Password, next, next+"x"), http.StatusBadRequest},
			{"an empty new password", basicHdr(alice.Name, alice.Password), body(alice.Password, "", ""), http.StatusBadRequest},
			{"no body", basicHdr(alice.Name, alice.Password), nil, http.StatusBadRequest},
			{"not JSON", basicHdr(alice.Name, alice.Password), "password=x", http.StatusBadRequest},
			{"alice's token as Bearer", bearerHdr(a.token), body(alice.Password, next, next), http.StatusUnauthorized},
			{"alice's token as Basic", basicHdr(alice.Name, a.token), body(alice.Password, next, next), http.StatusUnauthorized},
			{"anonymous", nil, body(alice.Password, next, next), http.StatusUnauthorized},
		} {
			st, b, _ := s.request(t, http.MethodPut, path, c.hdr, c.body)
			if st != c.want {
				t.Errorf("%s: PUT %s answered %d, want %d; body %s", c.what, path, st, c.want, truncate(b, 300))
				continue
			}
			checkError(t, c.what, b, "")
		}
		s.admExpect(t, "the password after the refused changes", basicHdr(alice.Name, alice.Password), http.StatusOK)
		if evs := s.deactEvents(t, "password.changed", "user:"+alice.Name); len(evs) != 0 {
			t.Errorf("refused password changes were audited as done: %v", evs)
		}

		st, b, _ := s.do(t, http.MethodPut, path, alice.Name, alice.Password, body(alice.Password, next, next))
		mustStatus(t, "change own password", st, b, http.StatusOK, http.StatusNoContent)
		old := alice
		alice.Password = next
		a.user = alice
		s.admExpect(t, "REST with the old password", basicHdr(old.Name, old.Password), http.StatusUnauthorized)
		s.expectClone(t, g, basicGit(old.Name, old.Password), "DEA", "r", false)
		s.admExpect(t, "REST with the new password", basicHdr(alice.Name, alice.Password), http.StatusOK)
		s.expectClone(t, g, basicGit(alice.Name, alice.Password), "DEA", "r", true)
		// The token and the key are not touched by a password change.
		s.admExpect(t, "the token after the password change", bearerHdr(a.token), http.StatusOK)

		evs := s.deactEvents(t, "password.changed", "user:"+alice.Name)
		if len(evs) != 1 || evs[0].actorName() != alice.Name || evs[0].Outcome != "success" {
			t.Errorf("audit password.changed for user:%s: %v, want one by %s", alice.Name, evs, alice.Name)
		}
	})

	t.Run("admin sets a password", func(t *testing.T) {
		const path = "/rest/api/1.0/admin/users/credentials"
		next := "pw3-" + randomHex(12)
		s.addSecret(next)
		body := func(name, pw, confirm string) map[string]any {
			return map[string]any{"name": name, "password": pw, "passwordConfirm": confirm}
		}
		for _, c := range []struct {
			what string
			hdr  http.Header
			body any
			want int
		}{
			{"a confirmation that does not match", basicHdr(adminName, s.AdminPassword), body(alice.Name, next, next+"x"), http.StatusBadRequest},
			{"an empty password", basicHdr(adminName, s.AdminPassword), body(alice.Name, "", ""), http.StatusBadRequest},
			{"no name", basicHdr(adminName, s.AdminPassword), body("", next, next), http.StatusBadRequest},
			{"no body", basicHdr(adminName, s.AdminPassword), nil, http.StatusBadRequest},
			{"the admin's token as Bearer", bearerHdr(adminTok), body(alice.Name, next, next), http.StatusUnauthorized},
			{"the admin's token as Basic", basicHdr(adminName, adminTok), body(alice.Name, next, next), http.StatusUnauthorized},
			{"a non-admin", basicHdr(bob.Name, bob.Password), body(alice.Name, next, next), http.StatusUnauthorized},
			{"an unknown user", basicHdr(adminName, s.AdminPassword), body("nobody", next, next), http.StatusNotFound},
		} {
			st, b, _ := s.request(t, http.MethodPut, path, c.hdr, c.body)
			if st != c.want {
				t.Errorf("%s: PUT %s answered %d, want %d; body %s", c.what, path, st, c.want, truncate(b, 300))
				continue
			}
			checkError(t, c.what, b, "")
		}
		s.admExpect(t, "alice's password after the refused changes", basicHdr(alice.Name, alice.Password), http.StatusOK)

		st, b := s.asAdmin(t, http.MethodPut, path, body(alice.Name, next, next))
		mustStatus(t, "admin sets alice's password", st, b, http.StatusOK, http.StatusNoContent)
		old := alice
		alice.Password = next
		s.admExpect(t, "REST with the replaced password", basicHdr(old.Name, old.Password), http.StatusUnauthorized)
		s.expectClone(t, g, basicGit(old.Name, old.Password), "DEA", "r", false)
		s.admExpect(t, "REST with the password the admin set", basicHdr(alice.Name, alice.Password), http.StatusOK)
		s.expectClone(t, g, basicGit(alice.Name, alice.Password), "DEA", "r", true)

		evs := s.deactEvents(t, "password.changed", "user:"+alice.Name)
		found := false
		for _, e := range evs {
			if e.actorName() == adminName && e.Outcome == "success" {
				found = true
			}
		}
		if len(evs) != 2 || !found {
			t.Errorf("audit password.changed for user:%s: %v, want two, the second by %s", alice.Name, evs, adminName)
		}
	})
}
