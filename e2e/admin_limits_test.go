package e2e

// Brute-force limits, token rotation and last use, end to end.

import (
	"fmt"
	"hash/crc32"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// admRetryAfter checks a 429 answer's Retry-After against want seconds
// (allowing a few seconds for the time the test took) and returns it.
func admRetryAfter(t testing.TB, what string, st int, b []byte, h http.Header, want int) int {
	t.Helper()
	if st != http.StatusTooManyRequests {
		t.Errorf("%s: %d, want 429; body %s", what, st, truncate(b, 300))
		return 0
	}
	ra := h.Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil {
		t.Errorf("%s: Retry-After %q is not a number of seconds", what, ra)
		return 0
	}
	if n > want || n < want-10 {
		t.Errorf("%s: Retry-After %d, want about %d", what, n, want)
	}
	return n
}

func TestAdminBruteForce(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	eve := s.createUser(t, "eve")
	fay := s.createUser(t, "fay")
	gus := s.createUser(t, "gus")
	hal := s.createUser(t, "hal")
	s.createProject(t, "BF", "Brute force")
	s.createRepo(t, "BF", "r")
	for _, n := range []string{eve.Name, fay.Name, gus.Name, hal.Name} {
		s.grant(t, "BF", n, "PROJECT_READ")
	}
	g := newGit(t)
	seed := g.initRepo(t)
	g.commitFile(t, seed, "a.txt", "a\n", "seed")
	g.must(t, seed, "push", "-q", s.gitURLAs("BF", "r", adminName, s.AdminPassword), "main")
	infoRefs := "/scm/bf/r.git/info/refs?service=git-upload-pack"
	eveTok := s.admCreateToken(t, admUserTokens(eve.Name), eve.Name, eve.Password, map[string]any{"name": "t", "permissions": []string{"REPO_READ"}})

	t.Run("REST account lock", func(t *testing.T) {
		for i := 1; i <= 10; i++ {
			st, b, _ := s.do(t, http.MethodGet, admProbe, eve.Name, fmt.Sprintf("wrong-%d", i), nil)
			if st != http.StatusUnauthorized {
				t.Fatalf("wrong password #%d: %d, want 401; %s", i, st, truncate(b, 200))
			}
		}
		st, b, h := s.do(t, http.MethodGet, admProbe, eve.Name, eve.Password, nil)
		admRetryAfter(t, "11th attempt, with the right password", st, b, h, 30)
		if st == http.StatusTooManyRequests {
			checkError(t, "429 body", b, "com.atlassian.bitbucket.ratelimit.RateLimitedException")
		}
		// Over git too: the account is locked, whatever the transport.
		st, b, h = s.request(t, http.MethodGet, infoRefs, admHdr(basicAuth(eve.Name, eve.Password)), nil)
		admRetryAfter(t, "git info/refs for the locked account", st, b, h, 30)
		if out, err := admClone(t, g, s.gitURLAs("BF", "r", eve.Name, eve.Password)); err == nil {
			t.Errorf("git clone for a locked account succeeded\n%s", out)
		}
		// Another account from the same address is not affected.
		st, b, _ = s.do(t, http.MethodGet, admProbe, fay.Name, fay.Password, nil)
		mustStatus(t, "another account from the same address", st, b, http.StatusOK)
		// A Bearer token of the locked account carries no login: only
		// address locks apply to it.
		s.admExpect(t, "eve's Bearer token while her account is locked", admHdr(admBearer(eveTok.Token)), http.StatusOK)
	})

	t.Run("git account lock", func(t *testing.T) {
		for i := 1; i <= 10; i++ {
			st, b, _ := s.request(t, http.MethodGet, infoRefs, admHdr(basicAuth(gus.Name, fmt.Sprintf("wrong-%d", i))), nil)
			if st != http.StatusUnauthorized {
				t.Fatalf("git wrong password #%d: %d, want 401; %s", i, st, truncate(b, 200))
			}
		}
		st, b, h := s.request(t, http.MethodGet, infoRefs, admHdr(basicAuth(gus.Name, gus.Password)), nil)
		admRetryAfter(t, "git 11th attempt with the right password", st, b, h, 30)
		out, err := admClone(t, g, s.gitURLAs("BF", "r", gus.Name, gus.Password))
		if err == nil {
			t.Errorf("git clone for a locked account succeeded\n%s", out)
		} else if !strings.Contains(out, "429") && !strings.Contains(strings.ToLower(out), "too many") {
			t.Logf("note: git's output for a locked account: %s", out)
		}
		st, b, h = s.do(t, http.MethodGet, admProbe, gus.Name, gus.Password, nil)
		admRetryAfter(t, "REST for an account locked over git", st, b, h, 30)
	})

	t.Run("the account is locked whatever login names it", func(t *testing.T) {
		// Users log in by name or by email address: both name one account,
		// so 10 failures by name lock the email login too (otherwise each
		// alias gives a guesser 10 more tries per lock).
		ivy := s.createUser(t, "ivy")
		for i := 1; i <= 10; i++ {
			st, _, _ := s.do(t, http.MethodGet, admProbe, ivy.Name, fmt.Sprintf("wrong-%d", i), nil)
			if st != http.StatusUnauthorized {
				t.Fatalf("wrong password #%d: %d, want 401", i, st)
			}
		}
		st, b, h := s.do(t, http.MethodGet, admProbe, ivy.Email, ivy.Password, nil)
		admRetryAfter(t, "login by email after 10 failures by name", st, b, h, 30)
		st, b, h = s.do(t, http.MethodGet, admProbe, strings.ToUpper(ivy.Name), ivy.Password, nil)
		admRetryAfter(t, "login by the name in upper case after 10 failures", st, b, h, 30)
	})

	t.Run("a success before the limit resets the counter", func(t *testing.T) {
		for round := 0; round < 3; round++ {
			for i := 0; i < 9; i++ {
				st, _, _ := s.do(t, http.MethodGet, admProbe, hal.Name, "wrong", nil)
				if st != http.StatusUnauthorized {
					t.Fatalf("round %d, wrong password #%d: %d, want 401", round, i+1, st)
				}
			}
			st, b, _ := s.do(t, http.MethodGet, admProbe, hal.Name, hal.Password, nil)
			mustStatus(t, fmt.Sprintf("round %d: right password after 9 failures", round), st, b, http.StatusOK)
		}
	})

	t.Run("address lock through a trusted proxy", func(t *testing.T) {
		s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"]}}`)
		attacker := "198.51.100.66"
		fake := newTokenLikeAdm("latp")
		for i := 1; i <= 100; i++ {
			var hdr http.Header
			if i%2 == 0 {
				hdr = admHdr(admBearer(fake), "X-Forwarded-For", attacker)
			} else { // a password spray: a different account each time
				hdr = admHdr(basicAuth(fmt.Sprintf("spray%d", i), "pw"), "X-Forwarded-For", attacker)
			}
			st, b, _ := s.request(t, http.MethodGet, admProbe, hdr, nil)
			if st != http.StatusUnauthorized {
				t.Fatalf("failure #%d from %s: %d, want 401; %s", i, attacker, st, truncate(b, 200))
			}
		}
		st, b, h := s.request(t, http.MethodGet, admProbe, admHdr(basicAuth(fay.Name, fay.Password), "X-Forwarded-For", attacker), nil)
		admRetryAfter(t, "a good password from the locked address", st, b, h, 60)
		st, b, h = s.request(t, http.MethodGet, infoRefs, admHdr(basicAuth(fay.Name, fay.Password), "X-Forwarded-For", attacker), nil)
		admRetryAfter(t, "git from the locked address", st, b, h, 60)
		// Others, and the proxy itself, are not locked.
		st, b, _ = s.request(t, http.MethodGet, admProbe, admHdr(basicAuth(fay.Name, fay.Password), "X-Forwarded-For", "203.0.113.5"), nil)
		mustStatus(t, "another client behind the same proxy", st, b, http.StatusOK)
		st, b, _ = s.do(t, http.MethodGet, admProbe, fay.Name, fay.Password, nil)
		mustStatus(t, "the proxy's own address", st, b, http.StatusOK)
		// A forged header from an untrusted peer cannot lock someone else
		// out: with no trusted proxy the failures count for 127.0.0.1.
		s.admPut(t, `{"network":{}}`)
		st, b, _ = s.request(t, http.MethodGet, admProbe, admHdr(basicAuth(fay.Name, fay.Password), "X-Forwarded-For", attacker), nil)
		mustStatus(t, "forged header naming the locked address, no trusted proxy", st, b, http.StatusOK)
	})

	t.Run("audited", func(t *testing.T) {
		evs := getJSON[page[admEvent]](t, s, admAudit+"?type=auth.rate_limited&limit=1000", adminName, s.AdminPassword).Values
		seen := map[string]bool{}
		for _, e := range evs {
			seen[e.actorName()+"@"+e.Address] = true
			if e.Outcome != "refused" {
				t.Errorf("rate-limit event outcome %q, want refused", e.Outcome)
			}
		}
		for _, want := range []string{"eve@127.0.0.1", "gus@127.0.0.1"} {
			if !seen[want] {
				t.Errorf("no auth.rate_limited event for %s; events %+v", want, evs)
			}
		}
		found := false
		for k := range seen {
			if strings.HasSuffix(k, "@198.51.100.66") {
				found = true
			}
		}
		if !found {
			t.Errorf("no auth.rate_limited event for the address 198.51.100.66; events %+v", evs)
		}
	})
}

// newTokenLikeAdm returns a well-formed token of prefix with a valid
// checksum that the server never issued.
func newTokenLikeAdm(prefix string) string {
	const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	h := randomHex(32)
	var sb strings.Builder
	sb.WriteString(prefix + "_")
	for i := 0; i < 32; i++ {
		sb.WriteByte(b62[int(h[i])%62])
	}
	body := sb.String()
	sum := admCRC32(body)
	var c [6]byte
	for i := 5; i >= 0; i-- {
		c[i] = b62[sum%62]
		sum /= 62
	}
	return body + string(c[:])
}

func TestAdminRotation(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	rex := s.createUser(t, "rex")
	sam := s.createUser(t, "sam")
	s.createProject(t, "ROT", "Rotation")
	s.createRepo(t, "ROT", "r")
	s.grant(t, "ROT", rex.Name, "PROJECT_ADMIN")
	coll := admUserTokens(rex.Name)
	create := func(name string) admTok {
		return s.admCreateToken(t, coll, rex.Name, rex.Password, map[string]any{
			"name": name, "permissions": []string{"PROJECT_READ", "REPO_WRITE"}, "expiryDays": 90, "allowedCidrs": []string{"127.0.0.0/8"}})
	}
	rotate := func(t *testing.T, id string, body any) (int, []byte) {
		t.Helper()
		st, b, _ := s.do(t, http.MethodPost, admRotatePath(id), rex.Name, rex.Password, body)
		return st, b
	}
	mustRotate := func(t *testing.T, id string, body any) admTok {
		t.Helper()
		st, b := rotate(t, id, body)
		mustStatus(t, "rotate "+id, st, b, http.StatusOK)
		tk := decodeJSON[admTok](t, b)
		s.addSecret(tk.Token)
		return tk
	}
	works := func(t *testing.T, what, secret string, want bool) {
		t.Helper()
		code := http.StatusUnauthorized
		if want {
			code = http.StatusOK
		}
		s.admExpect(t, what, admHdr(admBearer(secret)), code)
	}

	t.Run("without grace", func(t *testing.T) {
		old := create("ci")
		works(t, "before rotation", old.Token, true)
		nt := mustRotate(t, old.ID, nil)
		if nt.Token == "" || nt.Token == old.Token {
			t.Fatalf("rotation returned no new secret (%q)", redactAdm(nt.Token))
		}
		if !strings.HasPrefix(nt.Token, "latp_") || len(nt.Token) != len(old.Token) {
			t.Errorf("rotated secret %q has not the personal token format", redactAdm(nt.Token))
		}
		if nt.ID != old.ID || nt.Name != old.Name || !reflect.DeepEqual(nt.Permissions, old.Permissions) ||
			!reflect.DeepEqual(nt.AllowedCIDRs, old.AllowedCIDRs) || nt.User.Name != rex.Name {
			t.Errorf("rotation changed the token: %+v, was %+v", nt, old)
		}
		if nt.ExpiryDate == nil || old.ExpiryDate == nil || *nt.ExpiryDate != *old.ExpiryDate {
			t.Errorf("rotation changed the expiry: %v, was %v", nt.ExpiryDate, old.ExpiryDate)
		}
		works(t, "old secret right after rotation without grace", old.Token, false)
		works(t, "new secret", nt.Token, true)
		if out, err := admClone(t, newGit(t), s.gitURLAs("ROT", "r", rex.Name, nt.Token)); err != nil {
			t.Errorf("git with the rotated secret: %v\n%s", err, out)
		}
		ts := s.admTokens(t, coll, rex.Name, rex.Password)
		n := 0
		for _, tk := range ts {
			if tk.Name == "ci" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("after rotation the listing has %d tokens named ci, want 1", n)
		}
		noSecretInAdm(t, "listing after rotation", ts, old.Token, nt.Token)
		// {"graceSeconds":0} is the same.
		nt2 := mustRotate(t, old.ID, map[string]any{"graceSeconds": 0})
		works(t, "secret rotated out with graceSeconds 0", nt.Token, false)
		works(t, "newest secret", nt2.Token, true)
	})

	t.Run("with grace", func(t *testing.T) {
		old := create("grace")
		nt := mustRotate(t, old.ID, map[string]any{"graceSeconds": 3600})
		works(t, "old secret within the grace period", old.Token, true)
		works(t, "new secret within the grace period", nt.Token, true)
		// Rotating again without grace ends the old secret's grace.
		nt2 := mustRotate(t, old.ID, map[string]any{})
		works(t, "first secret after a second rotation", old.Token, false)
		works(t, "second secret after a rotation without grace", nt.Token, false)
		works(t, "third secret", nt2.Token, true)
		// A short grace ends on its own.
		short := create("short")
		ns := mustRotate(t, short.ID, map[string]any{"graceSeconds": 1})
		works(t, "old secret within a 1 s grace", short.Token, true)
		time.Sleep(1200 * time.Millisecond)
		works(t, "old secret after its 1 s grace", short.Token, false)
		works(t, "new secret after the grace", ns.Token, true)
	})

	t.Run("revocation ends the grace secret too", func(t *testing.T) {
		old := create("revoke-in-grace")
		nt := mustRotate(t, old.ID, map[string]any{"graceSeconds": 3600})
		works(t, "old secret within grace", old.Token, true)
		st, b, _ := s.do(t, http.MethodDelete, coll+"/"+old.ID, rex.Name, rex.Password, nil)
		mustStatus(t, "revoke", st, b, http.StatusNoContent)
		works(t, "old (grace) secret after revocation", old.Token, false)
		works(t, "new secret after revocation", nt.Token, false)
		st, b, _ = s.do(t, http.MethodPost, admRotatePath(old.ID), rex.Name, rex.Password, nil)
		if st != http.StatusNotFound {
			t.Errorf("rotating a revoked token: %d, want 404; %s", st, truncate(b, 200))
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		tk := create("bad")
		for _, body := range []string{`{"graceSeconds":86401}`, `{"graceSeconds":-1}`, `{"graceSeconds":"60"}`, `{"graceSeconds":1e9}`, `[]`} {
			st, b := rotate(t, tk.ID, body)
			if st != http.StatusBadRequest {
				t.Errorf("rotate with %s: %d, want 400; %s", body, st, truncate(b, 200))
			}
		}
		mustRotate(t, tk.ID, map[string]any{"graceSeconds": 86400})
		st, b := rotate(t, "999999999999", nil)
		if st != http.StatusNotFound {
			t.Errorf("rotate an unknown id: %d, want 404; %s", st, truncate(b, 200))
		}
		// Someone else's token: as if it did not exist.
		st, b, _ = s.do(t, http.MethodPost, admRotatePath(tk.ID), sam.Name, sam.Password, nil)
		if st == http.StatusOK {
			t.Errorf("sam rotated rex's token: %s", truncate(b, 200))
			s.addSecret(decodeJSON[admTok](t, b).Token)
		}
		// A token cannot rotate tokens (not even itself).
		latest := mustRotate(t, tk.ID, nil)
		st, b, _ = s.request(t, http.MethodPost, admRotatePath(tk.ID), admHdr(admBearer(latest.Token)), nil)
		if st == http.StatusOK {
			t.Errorf("a token rotated itself: %s", truncate(b, 200))
			s.addSecret(decodeJSON[admTok](t, b).Token)
		}
		works(t, "secret after refused rotations", latest.Token, true)
		// Anonymous.
		st, _, _ = s.request(t, http.MethodPost, admRotatePath(tk.ID), nil, nil)
		if st != http.StatusUnauthorized {
			t.Errorf("anonymous rotation: %d, want 401", st)
		}
	})

	t.Run("project tokens", func(t *testing.T) {
		pc := "/rest/access-tokens/1.0/projects/ROT"
		pt := s.admCreateToken(t, pc, rex.Name, rex.Password, map[string]any{"name": "proj", "permissions": []string{"REPO_READ"}})
		nt := mustRotate(t, pt.ID, map[string]any{"graceSeconds": 60})
		if !strings.HasPrefix(nt.Token, "latr_") || nt.ID != pt.ID || nt.Name != "proj" {
			t.Errorf("rotated project token: id %s name %s secret %s", nt.ID, nt.Name, redactAdm(nt.Token))
		}
		works(t, "old project secret within grace", pt.Token, true)
		works(t, "new project secret", nt.Token, true)
		// Someone who is not a project administrator cannot.
		st, b, _ := s.do(t, http.MethodPost, admRotatePath(pt.ID), sam.Name, sam.Password, nil)
		if st == http.StatusOK {
			t.Errorf("sam rotated a project token of a project he does not administer: %s", truncate(b, 200))
			s.addSecret(decodeJSON[admTok](t, b).Token)
		}
	})
}

func TestAdminLastAuthenticated(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "lia")
	coll := admUserTokens(u.Name)
	tk := s.admCreateToken(t, coll, u.Name, u.Password, map[string]any{"name": "t", "permissions": []string{"REPO_READ"}})
	other := s.admCreateToken(t, coll, u.Name, u.Password, map[string]any{"name": "unused", "permissions": []string{"REPO_READ"}})
	l, _ := admFind(s.admTokens(t, coll, u.Name, u.Password), tk.ID)
	if l.LastAuthenticated != nil || l.LastAuthenticatedAddress != nil {
		t.Errorf("an unused token lists lastAuthenticated %s / %s", admStr(l.LastAuthenticated), admStr(l.LastAuthenticatedAddress))
	}
	before := time.Now().UnixMilli()
	s.admExpect(t, "use", admHdr(admBearer(tk.Token)), http.StatusOK)
	after := time.Now().UnixMilli()
	ts := s.admTokens(t, coll, u.Name, u.Password)
	l, _ = admFind(ts, tk.ID)
	if l.LastAuthenticated == nil || *l.LastAuthenticated < before-1000 || *l.LastAuthenticated > after+1000 {
		t.Errorf("lastAuthenticated %s, want between %d and %d", admStr(l.LastAuthenticated), before, after)
	}
	if l.LastAuthenticatedAddress == nil || *l.LastAuthenticatedAddress != "127.0.0.1" {
		t.Errorf("lastAuthenticatedAddress %s, want 127.0.0.1", admStr(l.LastAuthenticatedAddress))
	}
	if o, _ := admFind(ts, other.ID); o.LastAuthenticated != nil {
		t.Errorf("the unused token got a lastAuthenticated %d", *o.LastAuthenticated)
	}
	// Through a trusted proxy the address is the client's.
	s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"]}}`)
	s.admExpect(t, "use through the proxy", admHdr(admBearer(tk.Token), "X-Forwarded-For", "203.0.113.44"), http.StatusOK)
	l, _ = admFind(s.admTokens(t, coll, u.Name, u.Password), tk.ID)
	if l.LastAuthenticatedAddress == nil || *l.LastAuthenticatedAddress != "203.0.113.44" {
		t.Errorf("lastAuthenticatedAddress through the proxy %s, want 203.0.113.44", admStr(l.LastAuthenticatedAddress))
	}
	// A refused use does not count as authenticated.
	s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"],"allowedCidrs":["203.0.113.0/24"]}}`)
	s.admExpect(t, "refused use", admHdr(admBearer(tk.Token), "X-Forwarded-For", "198.51.100.44"), http.StatusUnauthorized)
	l, _ = admFind(s.admTokens(t, coll, u.Name, u.Password), tk.ID)
	if l.LastAuthenticatedAddress == nil || *l.LastAuthenticatedAddress != "203.0.113.44" {
		t.Errorf("after a refused (out-of-range) use from 198.51.100.44, lastAuthenticatedAddress %s, want still 203.0.113.44: a refused use is not an authentication", admStr(l.LastAuthenticatedAddress))
	}
	evs := getJSON[page[admEvent]](t, s, admAudit+"?type=token.new_address&limit=1000", adminName, s.AdminPassword).Values
	for _, e := range evs {
		if e.Address == "198.51.100.44" {
			t.Errorf("a refused (out-of-range) use from 198.51.100.44 was audited as %s %q (outcome %s): a refused use is not a use", e.Type, e.Detail, e.Outcome)
		}
	}
	// The single-token GET shows it too, and it survives a restart (the
	// batched write is flushed at shutdown).
	st, b, _ := s.do(t, http.MethodGet, coll+"/"+tk.ID, u.Name, u.Password, nil)
	mustStatus(t, "GET one token", st, b, http.StatusOK)
	if one := decodeJSON[admTok](t, b); one.LastAuthenticatedAddress == nil || *one.LastAuthenticatedAddress != "203.0.113.44" {
		t.Errorf("GET one token: lastAuthenticatedAddress %s, want 203.0.113.44", admStr(one.LastAuthenticatedAddress))
	}
	s2 := s.restart(t, WithoutSSH())
	l, _ = admFind(s2.admTokens(t, coll, u.Name, u.Password), tk.ID)
	if l.LastAuthenticatedAddress == nil || *l.LastAuthenticatedAddress != "203.0.113.44" || l.LastAuthenticated == nil {
		t.Errorf("after a restart: lastAuthenticated %s, address %s, want 203.0.113.44", admStr(l.LastAuthenticated), admStr(l.LastAuthenticatedAddress))
	}
}

// admStr renders an optional field.
func admStr[T any](p *T) string {
	if p == nil {
		return "<absent>"
	}
	return fmt.Sprint(*p)
}

// TestAdminNewAddressOnce: "first use of a token from a new address" is
// recorded once per address, not again whenever the token cache is
// dropped (which any token, user or settings change anywhere does).
func TestAdminNewAddressOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "nia")
	other := s.createUser(t, "oto")
	s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"]}}`)
	tk := s.admCreateToken(t, admUserTokens(u.Name), u.Name, u.Password, map[string]any{"name": "t", "permissions": []string{"REPO_READ"}})
	use := func(addr string) {
		t.Helper()
		s.admExpect(t, "use from "+addr, admHdr(admBearer(tk.Token), "X-Forwarded-For", addr), http.StatusOK)
	}
	use("203.0.113.1")
	use("203.0.113.2")
	use("203.0.113.1")
	// Unrelated changes: another user's token, a settings change.
	s.admCreateToken(t, admUserTokens(other.Name), other.Name, other.Password, map[string]any{"name": "x", "permissions": []string{"REPO_READ"}})
	use("203.0.113.1")
	use("203.0.113.2")
	s.admPut(t, `{"network":{"trustedProxies":["127.0.0.1/32"]},"tokens":{"maxPerUser":99}}`)
	use("203.0.113.2")
	use("203.0.113.1")
	use("203.0.113.3")
	evs := getJSON[page[admEvent]](t, s, admAudit+"?type=token.new_address&limit=1000", adminName, s.AdminPassword).Values
	count := map[string]int{}
	for _, e := range evs {
		if e.CredentialID == tk.ID {
			count[e.Address]++
		}
	}
	for _, a := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		if count[a] != 1 {
			t.Errorf("token.new_address for %s recorded %d times, want once (counts %v)", a, count[a], count)
		}
	}
}

func redactAdm(s string) string {
	if len(s) < 10 {
		return "***"
	}
	return s[:5] + "…" + s[len(s)-4:]
}

// noSecretInAdm fails when a listing carries a secret.
func noSecretInAdm(t testing.TB, what string, ts []admTok, secrets ...string) {
	t.Helper()
	for _, tk := range ts {
		if tk.Token != "" {
			t.Errorf("%s: token %s carries a secret", what, tk.ID)
		}
		for _, sec := range secrets {
			if strings.Contains(fmt.Sprintf("%+v", tk), sec) {
				t.Errorf("%s: a secret appears", what)
			}
		}
	}
}

func admCRC32(s string) uint32 { return crc32.ChecksumIEEE([]byte(s)) }
