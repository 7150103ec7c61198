package e2e

// Administrator policies end to end: token expiry, passwords off for REST
// and Git, network ranges through trusted proxies, and the groups that may
// create, use and manage tokens.

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAdminExpiryPolicy(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "exp")
	s.createProject(t, "EXP", "Expiry")
	s.createRepo(t, "EXP", "r")
	s.grant(t, "EXP", u.Name, "PROJECT_ADMIN")
	coll := admUserTokens(u.Name)
	body := func(name string, days any) map[string]any {
		m := map[string]any{"name": name, "permissions": []string{"REPO_READ"}}
		if days != nil {
			m["expiryDays"] = days
		}
		return m
	}
	// Tokens created before the policy: one without expiry, one for a year.
	forever := s.admCreateToken(t, coll, u.Name, u.Password, body("forever", nil))
	year := s.admCreateToken(t, coll, u.Name, u.Password, body("year", 365))

	refused := func(t *testing.T, what, coll string, b map[string]any, limit string) {
		t.Helper()
		st, rb, _ := s.do(t, http.MethodPut, coll, u.Name, u.Password, b)
		if st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400; body %s", what, st, truncate(rb, 300))
			return
		}
		msg := admMessages(t, what, rb)
		if limit != "" && !strings.Contains(msg, limit) {
			t.Errorf("%s: message %q does not state the limit %s", what, msg, limit)
		}
	}

	t.Run("requireExpiry without maximum", func(t *testing.T) {
		s.admPut(t, `{"tokens":{"requireExpiry":true}}`)
		refused(t, "no expiry", coll, body("none", nil), "")
		refused(t, "expiryDays 0", coll, body("zero", 0), "")
		tk := s.admCreateToken(t, coll, u.Name, u.Password, body("long", 3650))
		if tk.ExpiryDate == nil {
			t.Error("a token created with expiryDays has no expiryDate")
		}
	})

	t.Run("requireExpiry with maxExpiryDays 30", func(t *testing.T) {
		s.admPut(t, `{"tokens":{"requireExpiry":true,"maxExpiryDays":30}}`)
		refused(t, "no expiry", coll, body("none", nil), "30")
		refused(t, "31 days", coll, body("d31", 31), "30")
		refused(t, "3650 days", coll, body("d3650", 3650), "30")
		refused(t, "project token without expiry", "/rest/access-tokens/1.0/projects/EXP", body("p", nil), "30")
		refused(t, "repository token for 60 days", "/rest/access-tokens/1.0/projects/EXP/repos/r", body("r", 60), "30")
		before := time.Now()
		tk := s.admCreateToken(t, coll, u.Name, u.Password, body("d30", 30))
		if tk.ExpiryDate == nil {
			t.Fatal("30-day token has no expiryDate")
		}
		want := before.Add(30 * 24 * time.Hour).UnixMilli()
		if d := *tk.ExpiryDate - want; d < -60_000 || d > 60_000 {
			t.Errorf("30-day token expires at %d, want about %d", *tk.ExpiryDate, want)
		}
		s.admCreateToken(t, "/rest/access-tokens/1.0/projects/EXP", u.Name, u.Password, body("p1", 1))
		s.admCreateToken(t, "/rest/access-tokens/1.0/projects/EXP/repos/r", u.Name, u.Password, body("r30", 30))
	})

	t.Run("maxExpiryDays alone also refuses tokens without expiry", func(t *testing.T) {
		s.admPut(t, `{"tokens":{"maxExpiryDays":7}}`)
		refused(t, "no expiry", coll, body("none7", nil), "7")
		refused(t, "8 days", coll, body("d8", 8), "7")
		s.admCreateToken(t, coll, u.Name, u.Password, body("d7", 7))
	})

	t.Run("existing tokens are unchanged and keep working", func(t *testing.T) {
		ts := s.admTokens(t, coll, u.Name, u.Password)
		f, ok := admFind(ts, forever.ID)
		if !ok {
			t.Fatal("the token created before the policy is gone")
		}
		if f.ExpiryDate != nil {
			t.Errorf("the policy gave an existing token an expiry: %d", *f.ExpiryDate)
		}
		y, _ := admFind(ts, year.ID)
		if y.ExpiryDate == nil || year.ExpiryDate == nil || *y.ExpiryDate != *year.ExpiryDate {
			t.Errorf("the policy changed an existing token's expiry: %v, was %v", y.ExpiryDate, year.ExpiryDate)
		}
		s.admExpect(t, "token without expiry created before the policy", admHdr(admBearer(forever.Token)), http.StatusOK)
		s.admExpect(t, "365-day token created before the policy", admHdr(admBearer(year.Token)), http.StatusOK)
		// Updating an old token is still allowed (its expiry never changes).
		st, b, _ := s.do(t, http.MethodPost, coll+"/"+forever.ID, u.Name, u.Password, map[string]any{"name": "forever-renamed"})
		mustStatus(t, "update an old token under the policy", st, b, http.StatusOK)
	})

	t.Run("maxPerUser", func(t *testing.T) {
		s.admPut(t, `{"tokens":{"maxPerUser":3}}`)
		mu := s.createUser(t, "max")
		mc := admUserTokens(mu.Name)
		for i := range 3 {
			s.admCreateToken(t, mc, mu.Name, mu.Password, body(fmt.Sprintf("m%d", i), nil))
		}
		st, b, _ := s.do(t, http.MethodPut, mc, mu.Name, mu.Password, body("m3", nil))
		if st != http.StatusBadRequest {
			t.Errorf("4th token with maxPerUser 3: %d, want 400; %s", st, truncate(b, 200))
		} else if msg := admMessages(t, "4th token", b); !strings.Contains(msg, "3") {
			t.Errorf("4th token: message %q does not state the limit 3", msg)
		}
		// u already holds more than 3: no new ones, existing ones kept.
		if n := len(s.admTokens(t, coll, u.Name, u.Password)); n <= 3 {
			t.Fatalf("setup: %s holds %d tokens", u.Name, n)
		}
		st, _, _ = s.do(t, http.MethodPut, coll, u.Name, u.Password, body("over", nil))
		if st != http.StatusBadRequest {
			t.Errorf("a user over the new maximum created a token: %d", st)
		}
		s.admExpect(t, "existing token of a user over the new maximum", admHdr(admBearer(forever.Token)), http.StatusOK)
	})

	t.Run("policy off again", func(t *testing.T) {
		s.admPut(t, `{"tokens":{}}`)
		s.admCreateToken(t, coll, u.Name, u.Password, body("free", nil))
	})
}

func TestAdminPasswordPolicy(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "pat")
	adm := s.createUser(t, "adm") // ADMIN only: not a system administrator
	sys := s.createUser(t, "sys") // a second SYS_ADMIN
	s.grant(t, "", adm.Name, "ADMIN")
	s.grant(t, "", sys.Name, "SYS_ADMIN")
	s.createProject(t, "PW", "Passwords")
	s.createRepo(t, "PW", "r")
	s.grant(t, "PW", u.Name, "PROJECT_WRITE")
	g := newGit(t)
	seed := g.initRepo(t)
	g.commitFile(t, seed, "a.txt", "a\n", "seed")
	g.must(t, seed, "push", "-q", s.gitURLAs("PW", "r", adminName, s.AdminPassword), "main")
	tok := s.admCreateToken(t, admUserTokens(u.Name), u.Name, u.Password, map[string]any{"name": "t", "permissions": []string{"REPO_WRITE"}})

	const disabled = `{"message":"Basic Authentication has been disabled on this instance."}`

	t.Run("passwordForRest false", func(t *testing.T) {
		s.admPut(t, `{"auth":{"passwordForRest":false}}`)
		for _, c := range []struct{ what, user, pass string }{
			{"right password", u.Name, u.Password},
			{"wrong password", u.Name, "not-the-password"},
			{"unknown user", "nobody", "whatever"},
			{"ADMIN's password", adm.Name, adm.Password},
		} {
			st, b, _ := s.do(t, http.MethodGet, admProbe, c.user, c.pass, nil)
			if st != http.StatusForbidden {
				t.Errorf("REST with Basic (%s): %d, want 403; body %s", c.what, st, truncate(b, 300))
				continue
			}
			admSameJSON(t, "REST with Basic ("+c.what+")", b, disabled)
		}
		// Tokens keep working, as Bearer and as Basic user:token.
		s.admExpect(t, "Bearer token", admHdr(admBearer(tok.Token)), http.StatusOK)
		s.admExpect(t, "Basic user:token", admHdr(basicAuth(u.Name, tok.Token)), http.StatusOK)
		// System administrators keep password access to REST.
		st, b, _ := s.do(t, http.MethodGet, admProbe, adminName, s.AdminPassword, nil)
		mustStatus(t, "REST as the bootstrap SYS_ADMIN with a password", st, b, http.StatusOK)
		st, b, _ = s.do(t, http.MethodGet, admProbe, sys.Name, sys.Password, nil)
		mustStatus(t, "REST as another SYS_ADMIN with a password", st, b, http.StatusOK)
		// ... but a wrong password does not let them in, and the answer
		// must not tell an anonymous caller which accounts are system
		// administrators: a wrong password answers alike for a SYS_ADMIN,
		// a plain user and an unknown name.
		answers := map[string]string{}
		for _, who := range []string{sys.Name, u.Name, "no-such-user"} {
			st, b, _ = s.do(t, http.MethodGet, admProbe, who, "wrong-password", nil)
			if st == http.StatusOK {
				t.Errorf("%s with a wrong password got in", who)
			}
			answers[who] = fmt.Sprintf("%d %s", st, admCompact(b))
		}
		if answers[sys.Name] != answers[u.Name] || answers[u.Name] != answers["no-such-user"] {
			t.Errorf("with passwordForRest false a wrong password reveals who is a system administrator:\n SYS_ADMIN: %s\n user:      %s\n unknown:   %s",
				answers[sys.Name], answers[u.Name], answers["no-such-user"])
		}
		// Git with a password is a different switch: still on.
		if out, err := admClone(t, g, s.gitURLAs("PW", "r", u.Name, u.Password)); err != nil {
			t.Errorf("git clone with a password while only REST passwords are off: %v\n%s", err, out)
		}
		s.admPut(t, `{"auth":{}}`)
		st, b, _ = s.do(t, http.MethodGet, admProbe, u.Name, u.Password, nil)
		mustStatus(t, "REST with a password after passwordForRest is back on", st, b, http.StatusOK)
	})

	t.Run("passwordForGit false", func(t *testing.T) {
		s.admPut(t, `{"auth":{"passwordForGit":false}}`)
		out, err := admClone(t, g, s.gitURLAs("PW", "r", u.Name, u.Password))
		if err == nil {
			t.Errorf("git clone with a password succeeded while passwordForGit is false\n%s", out)
		} else if !strings.Contains(strings.ToLower(out), "access token") {
			t.Errorf("git's output does not tell the user to use an access token:\n%s", out)
		}
		// The HTTP answer: 401 with a challenge and the message.
		st, b, h := s.request(t, http.MethodGet, "/scm/pw/r.git/info/refs?service=git-upload-pack",
			admHdr(basicAuth(u.Name, u.Password)), nil)
		if st != http.StatusUnauthorized {
			t.Errorf("info/refs with a password: %d, want 401", st)
		}
		if !strings.Contains(strings.ToLower(string(b)), "access token") {
			t.Errorf("info/refs with a password: body %q does not mention an access token", truncate(b, 300))
		}
		if h.Get("WWW-Authenticate") == "" {
			t.Error("info/refs with a password: no WWW-Authenticate challenge")
		}
		// Pushing with a password is refused as well.
		work := g.initRepo(t)
		g.commitFile(t, work, "b.txt", "b\n", "b")
		if out, err := g.run(work, "push", "-q", s.gitURLAs("PW", "r", u.Name, u.Password), "HEAD:refs/heads/pw"); err == nil {
			t.Errorf("git push with a password succeeded while passwordForGit is false\n%s", out)
		}
		// The same user with a token: clone and push work.
		if out, err := admClone(t, g, s.gitURLAs("PW", "r", u.Name, tok.Token)); err != nil {
			t.Errorf("git clone with user:token: %v\n%s", err, out)
		}
		if out, err := admClone(t, g, s.gitURL("PW", "r"), "-c", "http.extraHeader=Authorization: Bearer "+tok.Token); err != nil {
			t.Errorf("git clone with a Bearer token: %v\n%s", err, out)
		}
		if out, err := g.run(work, "push", "-q", s.gitURLAs("PW", "r", u.Name, tok.Token), "HEAD:refs/heads/tok"); err != nil {
			t.Errorf("git push with user:token: %v\n%s", err, out)
		}
		// The rule that keeps system administrators in is for REST only.
		if out, err := admClone(t, g, s.gitURLAs("PW", "r", adminName, s.AdminPassword)); err == nil {
			t.Errorf("git clone with the SYS_ADMIN's password succeeded while passwordForGit is false\n%s", out)
		}
		// REST passwords are a different switch: still on.
		st, b, _ = s.do(t, http.MethodGet, admProbe, u.Name, u.Password, nil)
		mustStatus(t, "REST with a password while only Git passwords are off", st, b, http.StatusOK)
	})

	t.Run("both off", func(t *testing.T) {
		s.admPut(t, `{"auth":{"passwordForGit":false,"passwordForRest":false}}`)
		st, b, _ := s.do(t, http.MethodGet, admProbe, u.Name, u.Password, nil)
		if st != http.StatusForbidden {
			t.Errorf("REST with a password: %d, want 403", st)
		} else {
			admSameJSON(t, "REST with a password", b, disabled)
		}
		s.admExpect(t, "Bearer token with both off", admHdr(admBearer(tok.Token)), http.StatusOK)
		if out, err := admClone(t, g, s.gitURLAs("PW", "r", u.Name, tok.Token)); err != nil {
			t.Errorf("git clone with user:token with both off: %v\n%s", err, out)
		}
		// The admin turns passwords back on with their own password.
		st, b = s.asAdmin(t, http.MethodPut, admSettings, `{"auth":{}}`)
		mustStatus(t, "SYS_ADMIN turns passwords back on with a password", st, b, http.StatusOK)
		if out, err := admClone(t, g, s.gitURLAs("PW", "r", u.Name, u.Password)); err != nil {
			t.Errorf("git clone with a password once passwords are back on: %v\n%s", err, out)
		}
	})
}

func TestAdminNetworkRanges(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "net")
	s.createProject(t, "NET", "Network")
	s.createRepo(t, "NET", "r")
	s.grant(t, "NET", u.Name, "PROJECT_WRITE")
	g := newGit(t)
	seed := g.initRepo(t)
	g.commitFile(t, seed, "a.txt", "a\n", "seed")
	g.must(t, seed, "push", "-q", s.gitURLAs("NET", "r", adminName, s.AdminPassword), "main")
	coll := admUserTokens(u.Name)
	tok := s.admCreateToken(t, coll, u.Name, u.Password, map[string]any{"name": "plain", "permissions": []string{"REPO_WRITE"}})
	bearer := admBearer(tok.Token)
	xff := func(v string) http.Header { return admHdr(bearer, "X-Forwarded-For", v) }

	t.Run("trusted proxy", func(t *testing.T) {
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"],"allowedCidrs":["203.0.113.0/24"]}}`)
		s.admExpect(t, "X-Forwarded-For 203.0.113.7 through the trusted proxy", xff("203.0.113.7"), http.StatusOK)
		s.admExpect(t, "X-Forwarded-For 198.51.100.1 through the trusted proxy", xff("198.51.100.1"), http.StatusUnauthorized)
		s.admExpect(t, "no X-Forwarded-For: the proxy's own address", admHdr(bearer), http.StatusUnauthorized)
		s.admExpect(t, "client-forged left hop, real client right", xff("198.51.100.1, 203.0.113.7"), http.StatusOK)
		s.admExpect(t, "allowed address forged on the left, real client right", xff("203.0.113.7, 198.51.100.1"), http.StatusUnauthorized)
		s.admExpect(t, "two header lines: the right-most counts", admHdr(bearer, "X-Forwarded-For", "203.0.113.7", "X-Forwarded-For", "198.51.100.1"), http.StatusUnauthorized)
		s.admExpect(t, "garbage", xff("garbage"), http.StatusUnauthorized)
		// Basic user:token too.
		s.admExpect(t, "Basic user:token from an allowed address", admHdr(basicAuth(u.Name, tok.Token), "X-Forwarded-For", "203.0.113.8"), http.StatusOK)
		s.admExpect(t, "Basic user:token from outside", admHdr(basicAuth(u.Name, tok.Token), "X-Forwarded-For", "198.51.100.8"), http.StatusUnauthorized)
		// Passwords are not credentials the ranges bind.
		st, b, _ := s.request(t, http.MethodGet, admProbe, admHdr(basicAuth(u.Name, u.Password), "X-Forwarded-For", "198.51.100.1"), nil)
		mustStatus(t, "password from outside the ranges", st, b, http.StatusOK)
		// Git through the proxy.
		if out, err := admClone(t, g, s.gitURLAs("NET", "r", u.Name, tok.Token), "-c", "http.extraHeader=X-Forwarded-For: 203.0.113.7"); err != nil {
			t.Errorf("git clone with a token from 203.0.113.7 through the proxy: %v\n%s", err, out)
		}
		if out, err := admClone(t, g, s.gitURLAs("NET", "r", u.Name, tok.Token), "-c", "http.extraHeader=X-Forwarded-For: 198.51.100.1"); err == nil {
			t.Errorf("git clone with a token from 198.51.100.1 through the proxy succeeded\n%s", out)
		}
		if out, err := admClone(t, g, s.gitURLAs("NET", "r", u.Name, tok.Token)); err == nil {
			t.Errorf("git clone with a token from 127.0.0.1 (outside the ranges) succeeded\n%s", out)
		}
		// A custom client address header: only that one is read.
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"],"allowedCidrs":["203.0.113.0/24"],"clientIpHeader":"X-Real-IP"}}`)
		s.admExpect(t, "X-Real-IP 203.0.113.7", admHdr(bearer, "X-Real-IP", "203.0.113.7"), http.StatusOK)
		s.admExpect(t, "X-Forwarded-For when X-Real-IP is configured", xff("203.0.113.7"), http.StatusUnauthorized)
	})

	t.Run("untrusted peer: forged header changes nothing", func(t *testing.T) {
		s.admPut(t, `{"network":{"allowedCidrs":["203.0.113.0/24"]}}`)
		s.admExpect(t, "forged X-Forwarded-For 203.0.113.7 from 127.0.0.1 (no trusted proxy)", xff("203.0.113.7"), http.StatusUnauthorized)
		if out, err := admClone(t, g, s.gitURLAs("NET", "r", u.Name, tok.Token), "-c", "http.extraHeader=X-Forwarded-For: 203.0.113.7"); err == nil {
			t.Errorf("git clone with a forged X-Forwarded-For succeeded\n%s", out)
		}
		// A proxy that is trusted but is not this peer does not count.
		s.admPut(t, `{"network":{"allowedCidrs":["203.0.113.0/24"],"trustedProxies":["10.0.0.0/8"]}}`)
		s.admExpect(t, "forged header from a peer outside trustedProxies", xff("203.0.113.7"), http.StatusUnauthorized)
		// And the other way round: the peer is allowed, a forged header
		// naming an outside address does not lock it out.
		s.admPut(t, `{"network":{"allowedCidrs":["127.0.0.0/8"]}}`)
		s.admExpect(t, "forged header 198.51.100.1 from an allowed peer", xff("198.51.100.1"), http.StatusOK)
		s.admExpect(t, "no header from an allowed peer", admHdr(bearer), http.StatusOK)
	})

	t.Run("per-token ranges", func(t *testing.T) {
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"]}}`)
		tk := s.admCreateToken(t, coll, u.Name, u.Password, map[string]any{
			"name": "bound", "permissions": []string{"REPO_READ"}, "allowedCidrs": []string{"198.51.100.0/24", "2001:db8::/32"}})
		if !reflect.DeepEqual(tk.AllowedCIDRs, []string{"198.51.100.0/24", "2001:db8::/32"}) {
			t.Errorf("creation answer allowedCidrs = %q", tk.AllowedCIDRs)
		}
		listed, ok := admFind(s.admTokens(t, coll, u.Name, u.Password), tk.ID)
		if !ok || !reflect.DeepEqual(listed.AllowedCIDRs, []string{"198.51.100.0/24", "2001:db8::/32"}) {
			t.Errorf("listing allowedCidrs = %q (found %v)", listed.AllowedCIDRs, ok)
		}
		plain, _ := admFind(s.admTokens(t, coll, u.Name, u.Password), tok.ID)
		if plain.AllowedCIDRs == nil || len(plain.AllowedCIDRs) != 0 {
			t.Errorf("a token without ranges lists allowedCidrs %v, want []", plain.AllowedCIDRs)
		}
		h := func(addr string) http.Header { return admHdr(admBearer(tk.Token), "X-Forwarded-For", addr) }
		s.admExpect(t, "token range allows 198.51.100.9", h("198.51.100.9"), http.StatusOK)
		s.admExpect(t, "token range allows 2001:db8::9", h("2001:db8::9"), http.StatusOK)
		s.admExpect(t, "token range refuses 203.0.113.7", h("203.0.113.7"), http.StatusUnauthorized)
		s.admExpect(t, "token range refuses the proxy itself", admHdr(admBearer(tk.Token)), http.StatusUnauthorized)
		// Both must allow.
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"],"allowedCidrs":["198.51.0.0/16"]}}`)
		s.admExpect(t, "both allow 198.51.100.9", h("198.51.100.9"), http.StatusOK)
		s.admExpect(t, "instance allows 198.51.7.1, token does not", h("198.51.7.1"), http.StatusUnauthorized)
		s.admExpect(t, "token allows 2001:db8::9, instance does not", h("2001:db8::9"), http.StatusUnauthorized)
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"],"allowedCidrs":["203.0.113.0/24"]}}`)
		s.admExpect(t, "disjoint ranges: instance's address", h("203.0.113.7"), http.StatusUnauthorized)
		s.admExpect(t, "disjoint ranges: token's address", h("198.51.100.9"), http.StatusUnauthorized)
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"]}}`)

		// Update: new ranges apply at once and show in listings.
		path := coll + "/" + tk.ID
		st, b, _ := s.do(t, http.MethodPost, path, u.Name, u.Password, map[string]any{"allowedCidrs": []string{"203.0.113.77/24"}})
		mustStatus(t, "update allowedCidrs", st, b, http.StatusOK)
		if got := decodeJSON[admTok](t, b).AllowedCIDRs; !reflect.DeepEqual(got, []string{"203.0.113.0/24"}) {
			t.Errorf("update answer allowedCidrs = %q, want [203.0.113.0/24]", got)
		}
		listed, _ = admFind(s.admTokens(t, coll, u.Name, u.Password), tk.ID)
		if !reflect.DeepEqual(listed.AllowedCIDRs, []string{"203.0.113.0/24"}) {
			t.Errorf("listing after update allowedCidrs = %q", listed.AllowedCIDRs)
		}
		s.admExpect(t, "after update: 203.0.113.7", h("203.0.113.7"), http.StatusOK)
		s.admExpect(t, "after update: 198.51.100.9", h("198.51.100.9"), http.StatusUnauthorized)
		// An update that does not name allowedCidrs keeps them.
		st, b, _ = s.do(t, http.MethodPost, path, u.Name, u.Password, map[string]any{"name": "bound-renamed"})
		mustStatus(t, "rename", st, b, http.StatusOK)
		if got := decodeJSON[admTok](t, b).AllowedCIDRs; !reflect.DeepEqual(got, []string{"203.0.113.0/24"}) {
			t.Errorf("a rename changed allowedCidrs to %q", got)
		}
		// [] clears them.
		st, b, _ = s.do(t, http.MethodPost, path, u.Name, u.Password, map[string]any{"allowedCidrs": []string{}})
		mustStatus(t, "clear allowedCidrs", st, b, http.StatusOK)
		s.admExpect(t, "after clearing: 198.51.100.9", h("198.51.100.9"), http.StatusOK)
		// Bad ranges: 400, nothing changed.
		for _, bad := range [][]string{{"10.0.0.0/33"}, {"example.com"}, {""}} {
			st, b, _ = s.do(t, http.MethodPost, path, u.Name, u.Password, map[string]any{"allowedCidrs": bad})
			if st != http.StatusBadRequest {
				t.Errorf("update allowedCidrs %q: %d, want 400; %s", bad, st, truncate(b, 200))
			} else if msg := admMessages(t, "bad range", b); !strings.Contains(msg, "allowedCidrs") {
				t.Errorf("update allowedCidrs %q: message %q does not name allowedCidrs", bad, msg)
			}
			st, b, _ = s.do(t, http.MethodPut, coll, u.Name, u.Password, map[string]any{"name": "bad", "allowedCidrs": bad})
			if st != http.StatusBadRequest {
				t.Errorf("create with allowedCidrs %q: %d, want 400; %s", bad, st, truncate(b, 200))
			}
		}
		listed, _ = admFind(s.admTokens(t, coll, u.Name, u.Password), tk.ID)
		if len(listed.AllowedCIDRs) != 0 {
			t.Errorf("refused updates changed allowedCidrs to %q", listed.AllowedCIDRs)
		}
		// Project and repository tokens take ranges too.
		s.grant(t, "NET", u.Name, "PROJECT_ADMIN")
		for _, c := range []string{"/rest/access-tokens/1.0/projects/NET", "/rest/access-tokens/1.0/projects/NET/repos/r"} {
			pt := s.admCreateToken(t, c, u.Name, u.Password, map[string]any{"name": "svc", "permissions": []string{"REPO_READ"}, "allowedCidrs": []string{"198.51.100.0/24"}})
			if !reflect.DeepEqual(pt.AllowedCIDRs, []string{"198.51.100.0/24"}) {
				t.Errorf("%s: allowedCidrs = %q", c, pt.AllowedCIDRs)
			}
			ls, _ := admFind(s.admTokens(t, c, u.Name, u.Password), pt.ID)
			if !reflect.DeepEqual(ls.AllowedCIDRs, []string{"198.51.100.0/24"}) {
				t.Errorf("%s listing: allowedCidrs = %q", c, ls.AllowedCIDRs)
			}
			if out, err := admClone(t, g, s.gitURL("NET", "r"), "-c", "http.extraHeader=Authorization: Bearer "+pt.Token, "-c", "http.extraHeader=X-Forwarded-For: 198.51.100.3"); err != nil {
				t.Errorf("%s token from inside its range: %v\n%s", c, err, out)
			}
			if out, err := admClone(t, g, s.gitURL("NET", "r"), "-c", "http.extraHeader=Authorization: Bearer "+pt.Token, "-c", "http.extraHeader=X-Forwarded-For: 203.0.113.3"); err == nil {
				t.Errorf("%s token from outside its range succeeded\n%s", c, out)
			}
		}
	})

	t.Run("refusals are audited with the client address", func(t *testing.T) {
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"],"allowedCidrs":["203.0.113.0/24"]}}`)
		s.admExpect(t, "from 198.51.100.77", xff("198.51.100.77"), http.StatusUnauthorized)
		evs := getJSON[page[admEvent]](t, s, admAudit+"?type=token.refused&limit=1000", adminName, s.AdminPassword).Values
		found := false
		for _, e := range evs {
			if e.Address == "198.51.100.77" {
				found = true
				if e.Target != "token:"+tok.ID || e.CredentialID != tok.ID || e.Outcome != "refused" {
					t.Errorf("out-of-range refusal event: %v, want target token:%s, credentialId %s, outcome refused", e, tok.ID, tok.ID)
				}
				if e.actorName() != u.Name {
					t.Errorf("out-of-range refusal of %s's token %s names actor %q, want %q (the token's owner: audit?actor=%s must find it)", u.Name, tok.ID, e.actorName(), u.Name, u.Name)
				}
			}
			if e.Address == "127.0.0.1" && strings.Contains(e.Detail, "range") && e.Target == "token:"+tok.ID {
				// Refusals from before the proxy was trusted carry the peer: fine.
				continue
			}
		}
		if !found {
			t.Errorf("no token.refused event with address 198.51.100.77 (the client behind the trusted proxy); events: %+v", evs)
		}
	})
}

func TestAdminTokenGroups(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	alice := s.createUser(t, "alice") // in creators and users
	bob := s.createUser(t, "bob")     // in no group
	carol := s.createUser(t, "carol") // in helpers (on behalf of others)
	dave := s.createUser(t, "dave")
	s.createGroup(t, "creators", alice.Name)
	s.createGroup(t, "users", alice.Name)
	s.createGroup(t, "helpers", carol.Name)
	s.createProject(t, "GRP", "Groups")
	s.createRepo(t, "GRP", "r")
	for _, n := range []string{alice.Name, bob.Name, carol.Name, dave.Name} {
		s.grant(t, "GRP", n, "PROJECT_WRITE")
	}
	body := func(name string) map[string]any {
		return map[string]any{"name": name, "permissions": []string{"REPO_READ"}}
	}
	daveColl := admUserTokens(dave.Name)

	t.Run("createGroups", func(t *testing.T) {
		s.admPut(t, `{"tokens":{"createGroups":["creators"]}}`)
		s.admCreateToken(t, admUserTokens(alice.Name), alice.Name, alice.Password, body("a1"))
		st, b, _ := s.do(t, http.MethodPut, admUserTokens(bob.Name), bob.Name, bob.Password, body("b1"))
		if st == http.StatusOK {
			t.Fatalf("bob, outside createGroups, created a token: %s", truncate(b, 200))
		}
		if st != http.StatusUnauthorized && st != http.StatusForbidden {
			t.Errorf("bob creating a token outside createGroups: %d, want 401 or 403", st)
		}
		checkError(t, "create outside createGroups", b, "")
		if ts := s.admTokens(t, admUserTokens(bob.Name), bob.Name, bob.Password); len(ts) != 0 {
			t.Errorf("bob has %d tokens after a refused create", len(ts))
		}
		// Project tokens are tokens too.
		s.grant(t, "GRP", bob.Name, "PROJECT_ADMIN")
		st, b, _ = s.do(t, http.MethodPut, "/rest/access-tokens/1.0/projects/GRP", bob.Name, bob.Password, body("p"))
		if st == http.StatusOK {
			t.Errorf("bob, outside createGroups, created a project token: %s", truncate(b, 200))
		}
		s.grant(t, "GRP", bob.Name, "PROJECT_WRITE")
		// Joining the group lets bob in at once.
		s.addToGroup(t, "creators", bob.Name)
		s.admCreateToken(t, admUserTokens(bob.Name), bob.Name, bob.Password, body("b2"))
		s.admPut(t, `{"tokens":{}}`)
		s.admCreateToken(t, admUserTokens(dave.Name), dave.Name, dave.Password, body("d-free"))
	})

	t.Run("onBehalfGroups", func(t *testing.T) {
		s.admPut(t, `{"tokens":{"onBehalfGroups":["helpers"]}}`)
		// carol creates a token for dave.
		tk := s.admCreateToken(t, daveColl, carol.Name, carol.Password, body("made-by-carol"))
		if tk.User.Name != dave.Name {
			t.Errorf("token created on behalf of dave belongs to %q", tk.User.Name)
		}
		s.admExpect(t, "dave's token made by carol", admHdr(basicAuth(dave.Name, tk.Token)), http.StatusOK)
		if ts := s.admTokens(t, daveColl, dave.Name, dave.Password); len(ts) == 0 {
			t.Error("dave does not see the token made for him")
		} else if _, ok := admFind(ts, tk.ID); !ok {
			t.Error("dave's listing lacks the token carol made for him")
		}
		// carol lists, reads and updates it.
		if _, ok := admFind(s.admTokens(t, daveColl, carol.Name, carol.Password), tk.ID); !ok {
			t.Error("carol cannot list dave's tokens")
		}
		st, b, _ := s.do(t, http.MethodPost, daveColl+"/"+tk.ID, carol.Name, carol.Password,
			map[string]any{"name": "renamed-by-carol", "permissions": []string{"REPO_WRITE"}, "allowedCidrs": []string{"127.0.0.0/8"}})
		mustStatus(t, "carol updates dave's token", st, b, http.StatusOK)
		up := decodeJSON[admTok](t, b)
		if up.Name != "renamed-by-carol" || !slices.Contains(up.Permissions, "REPO_WRITE") || !reflect.DeepEqual(up.AllowedCIDRs, []string{"127.0.0.0/8"}) {
			t.Errorf("update on behalf: %+v", up)
		}
		// bob (not in helpers) can do none of it.
		st, b, _ = s.do(t, http.MethodPut, daveColl, bob.Name, bob.Password, body("made-by-bob"))
		if st == http.StatusOK {
			t.Errorf("bob, outside onBehalfGroups, created a token for dave: %s", truncate(b, 200))
			s.addSecret(decodeJSON[admTok](t, b).Token)
		}
		st, b, _ = s.do(t, http.MethodPost, daveColl+"/"+tk.ID, bob.Name, bob.Password, body("renamed-by-bob"))
		if st == http.StatusOK {
			t.Errorf("bob updated dave's token: %s", truncate(b, 200))
		}
		st, b, _ = s.do(t, http.MethodGet, daveColl, bob.Name, bob.Password, nil)
		if st == http.StatusOK {
			t.Errorf("bob listed dave's tokens: %s", truncate(b, 200))
		}
		st, _, _ = s.do(t, http.MethodDelete, daveColl+"/"+tk.ID, bob.Name, bob.Password, nil)
		if st == http.StatusNoContent || st == http.StatusOK {
			t.Errorf("bob revoked dave's token: %d", st)
		}
		s.admExpect(t, "dave's token after bob's attempts", admHdr(admBearer(tk.Token)), http.StatusOK)
		// carol cannot act on behalf with a token (tokens do not manage
		// credentials).
		ctok := s.admCreateToken(t, admUserTokens(carol.Name), carol.Name, carol.Password, body("carol-own"))
		st, b, _ = s.request(t, http.MethodPut, daveColl, admHdr(admBearer(ctok.Token)), body("via-token"))
		if st == http.StatusOK {
			t.Errorf("carol created a token for dave with her own token: %s", truncate(b, 200))
			s.addSecret(decodeJSON[admTok](t, b).Token)
		}
		// carol revokes it: refused at once.
		st, b, _ = s.do(t, http.MethodDelete, daveColl+"/"+tk.ID, carol.Name, carol.Password, nil)
		mustStatus(t, "carol revokes dave's token", st, b, http.StatusNoContent)
		s.admExpect(t, "dave's token after carol revoked it", admHdr(admBearer(tk.Token)), http.StatusUnauthorized)
		// Leaving the group ends the power.
		tk2 := s.admCreateToken(t, daveColl, carol.Name, carol.Password, body("second"))
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups/remove-user", map[string]any{"context": "helpers", "itemName": carol.Name})
		mustStatus(t, "remove carol from helpers", st, b, http.StatusNoContent)
		st, _, _ = s.do(t, http.MethodDelete, daveColl+"/"+tk2.ID, carol.Name, carol.Password, nil)
		if st == http.StatusNoContent {
			t.Error("carol revoked dave's token after leaving onBehalfGroups")
		}
		// With onBehalfGroups empty, nobody acts on behalf.
		s.addToGroup(t, "helpers", carol.Name)
		s.admPut(t, `{"tokens":{}}`)
		st, b, _ = s.do(t, http.MethodPut, daveColl, carol.Name, carol.Password, body("no-policy"))
		if st == http.StatusOK {
			t.Errorf("carol created a token for dave with onBehalfGroups empty: %s", truncate(b, 200))
			s.addSecret(decodeJSON[admTok](t, b).Token)
		}
		// System administrators may always revoke.
		st, b = s.asAdmin(t, http.MethodDelete, daveColl+"/"+tk2.ID, nil)
		mustStatus(t, "SYS_ADMIN revokes dave's token", st, b, http.StatusNoContent)
		s.admExpect(t, "dave's token after the admin revoked it", admHdr(admBearer(tk2.Token)), http.StatusUnauthorized)
	})

	t.Run("onBehalfGroups cannot reach users who outrank the actor", func(t *testing.T) {
		// A member of onBehalfGroups receives the secret of every token they
		// mint for someone else. Minting one for a system administrator
		// would give carol (no global permission) the administrator's
		// access to every repository: refuse it, as deleting a user who
		// outranks the actor is refused.
		s.admPut(t, `{"tokens":{"onBehalfGroups":["helpers"]}}`)
		defer s.admPut(t, `{"tokens":{}}`)
		adminColl := admUserTokens(adminName)
		st, b, _ := s.do(t, http.MethodPut, adminColl, carol.Name, carol.Password,
			map[string]any{"name": "escalate", "permissions": []string{"PROJECT_ADMIN", "REPO_ADMIN"}})
		if st == http.StatusOK {
			tk := decodeJSON[admTok](t, b)
			s.addSecret(tk.Token)
			t.Errorf("carol (onBehalfGroups, no global permission) minted a %v token for the SYS_ADMIN and received its secret", tk.Permissions)
		}
		at := s.admCreateToken(t, adminColl, adminName, s.AdminPassword, map[string]any{"name": "admin-own", "permissions": []string{"REPO_READ"}})
		st, b, _ = s.do(t, http.MethodPost, admRotatePath(at.ID), carol.Name, carol.Password, nil)
		if st == http.StatusOK {
			s.addSecret(decodeJSON[admTok](t, b).Token)
			t.Error("carol rotated the SYS_ADMIN's token and received its new secret")
		}
		st, b, _ = s.do(t, http.MethodPost, adminColl+"/"+at.ID, carol.Name, carol.Password, map[string]any{"permissions": []string{"PROJECT_ADMIN", "REPO_ADMIN"}})
		if st == http.StatusOK {
			t.Errorf("carol raised the SYS_ADMIN's token to %v", decodeJSON[admTok](t, b).Permissions)
		}
		// Rotation on behalf of a peer is what the setting is for.
		dt := s.admCreateToken(t, daveColl, dave.Name, dave.Password, body("dave-rot"))
		st, b, _ = s.do(t, http.MethodPost, admRotatePath(dt.ID), carol.Name, carol.Password, nil)
		mustStatus(t, "carol rotates dave's token", st, b, http.StatusOK)
		s.addSecret(decodeJSON[admTok](t, b).Token)
		st, b, _ = s.do(t, http.MethodPost, admRotatePath(dt.ID), bob.Name, bob.Password, nil)
		if st == http.StatusOK {
			s.addSecret(decodeJSON[admTok](t, b).Token)
			t.Error("bob (not in onBehalfGroups) rotated dave's token")
		}
	})

	t.Run("useGroups", func(t *testing.T) {
		s.admPut(t, `{"tokens":{}}`)
		at := s.admCreateToken(t, admUserTokens(alice.Name), alice.Name, alice.Password, body("alice-use"))
		dt := s.admCreateToken(t, daveColl, dave.Name, dave.Password, body("dave-use"))
		ah, dh := admHdr(admBearer(at.Token)), admHdr(admBearer(dt.Token))
		s.admExpect(t, "alice's token, no useGroups", ah, http.StatusOK)
		s.admExpect(t, "dave's token, no useGroups", dh, http.StatusOK)
		s.admPut(t, `{"tokens":{"useGroups":["users"]}}`)
		s.admExpect(t, "alice's token, alice in useGroups", ah, http.StatusOK)
		s.admExpect(t, "dave's token, dave outside useGroups", dh, http.StatusUnauthorized)
		s.admExpect(t, "dave's token as Basic, dave outside useGroups", admHdr(basicAuth(dave.Name, dt.Token)), http.StatusUnauthorized)
		if out, err := admClone(t, newGit(t), s.gitURLAs("GRP", "r", dave.Name, dt.Token)); err == nil {
			t.Errorf("git clone with the token of a user outside useGroups succeeded\n%s", out)
		}
		// dave's password still works: useGroups is about tokens.
		st, b, _ := s.do(t, http.MethodGet, admProbe, dave.Name, dave.Password, nil)
		mustStatus(t, "dave's password while outside useGroups", st, b, http.StatusOK)
		// Group membership changes apply at once.
		s.addToGroup(t, "users", dave.Name)
		s.admExpect(t, "dave's token once dave joined users", dh, http.StatusOK)
		st, b = s.asAdmin(t, http.MethodPost, "/rest/api/1.0/admin/groups/remove-user", map[string]any{"context": "users", "itemName": dave.Name})
		mustStatus(t, "remove dave from users", st, b, http.StatusNoContent)
		s.admExpect(t, "dave's token once dave left users", dh, http.StatusUnauthorized)
		// Cleared: works again.
		s.admPut(t, `{"tokens":{"useGroups":[]}}`)
		s.admExpect(t, "dave's token once useGroups is cleared", dh, http.StatusOK)
	})

	t.Run("unknown groups are refused", func(t *testing.T) {
		for _, f := range []string{"createGroups", "useGroups", "onBehalfGroups"} {
			st, b := s.asAdmin(t, http.MethodPut, admSettings, `{"tokens":{"`+f+`":["users","no-such-group"]}}`)
			if st != http.StatusBadRequest {
				t.Errorf("%s with an unknown group: %d, want 400", f, st)
				continue
			}
			if msg := admMessages(t, f, b); !strings.Contains(msg, f) {
				t.Errorf("%s with an unknown group: message %q does not name the field", f, msg)
			}
		}
	})
}
