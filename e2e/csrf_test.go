package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestCrossSiteRequests: a page on another site cannot make the user's
// browser, which sends the Basic credentials it has cached for latch,
// change anything: state-changing REST calls and pushes that a browser
// marks as cross-site are refused with 403, while the same requests from
// API clients and git, from latch's own origin or with Data Center's
// "X-Atlassian-Token: no-check" go through.
func TestCrossSiteRequests(t *testing.T) {
	s := startServer(t)
	u := s.createUser(t, "csrfvictim")
	s.createProject(t, "CSRF", "Cross site")
	s.createRepo(t, "CSRF", "code")
	s.grant(t, "CSRF/code", u.Name, "REPO_WRITE")

	keys := func() int {
		t.Helper()
		return len(allPages[restSSHKey](t, s, "/rest/ssh/1.0/keys", u.Name, u.Password))
	}
	addKey := func(what string, hdr http.Header, want int) {
		t.Helper()
		hdr.Set("Authorization", basicAuth(u.Name, u.Password))
		before := keys()
		key := sshKeygen(t, "ed25519", 0, what)
		st, b, _ := s.request(t, http.MethodPost, "/rest/ssh/1.0/keys", hdr, map[string]string{"text": key.Pub})
		mustStatus(t, what, st, b, want)
		added := keys() - before
		switch {
		case want == http.StatusForbidden && added != 0:
			t.Errorf("%s: refused with 403 but %d key(s) added", what, added)
		case want == http.StatusCreated && added != 1:
			t.Errorf("%s: 201 but %d key(s) added", what, added)
		}
		if want == http.StatusForbidden {
			errs := checkError(t, what, b, "com.atlassian.bitbucket.AuthorisationException")
			if len(errs) == 0 || !strings.Contains(errs[0].Message, "XSRF") {
				t.Errorf("%s: error %s does not say why", what, b)
			}
		}
	}

	// What a browser sends for a form or fetch started by another site.
	addKey("cross-site form", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"},
		"Content-Type": {"text/plain"}}, http.StatusForbidden)
	addKey("same-site, other origin", http.Header{"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://other.example.test"}},
		http.StatusForbidden)
	// Older browsers send only Origin.
	addKey("foreign Origin alone", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden)
	addKey("Origin null", http.Header{"Origin": {"null"}}, http.StatusForbidden)

	addKey("API client (no browser headers)", http.Header{}, http.StatusCreated)
	addKey("same origin", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {s.URL}}, http.StatusCreated)
	addKey("typed into the address bar", http.Header{"Sec-Fetch-Site": {"none"}}, http.StatusCreated)
	for _, v := range []string{"no-check", "No-Check", "nocheck"} {
		addKey("X-Atlassian-Token: "+v, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"},
			"X-Atlassian-Token": {v}}, http.StatusCreated)
	}
	addKey("X-Atlassian-Token: check", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"},
		"X-Atlassian-Token": {"check"}}, http.StatusForbidden)
	// Other methods and the latest API version alike.
	mine := allPages[restSSHKey](t, s, "/rest/ssh/1.0/keys", u.Name, u.Password)
	crossSite := http.Header{"Authorization": {basicAuth(u.Name, u.Password)}, "Sec-Fetch-Site": {"cross-site"},
		"Origin": {"https://evil.example"}}
	for _, path := range []string{"/rest/ssh/1.0/keys/", "/rest/ssh/latest/keys/"} {
		st, b, _ := s.request(t, http.MethodDelete, path+strconv.FormatInt(mine[0].ID, 10), crossSite, nil)
		mustStatus(t, "cross-site DELETE "+path, st, b, http.StatusForbidden)
	}
	if n := keys(); n != len(mine) {
		t.Errorf("cross-site DELETEs: %d keys left of %d", n, len(mine))
	}

	// Behind a proxy that does not pass the Host header on, a browser
	// that sends Origin but not Sec-Fetch-Site still names the public base
	// URL's origin (here the default, http://HTTPAddr).
	behindProxy := func(origin string) int {
		t.Helper()
		body := `{"text":"` + sshKeygen(t, "ed25519", 0, "proxied").Pub + `"}`
		st, b, _ := s.rawRequest(t, "POST /rest/ssh/1.0/keys HTTP/1.1\nHost: latch-backend.internal:8080\n"+
			"Authorization: "+basicAuth(u.Name, u.Password)+"\nOrigin: "+origin+"\n"+
			"Content-Type: application/json\nContent-Length: "+strconv.Itoa(len(body))+"\nConnection: close\n\n"+body)
		if st != http.StatusCreated && st != http.StatusForbidden {
			t.Errorf("proxied request from %s: %d %s", origin, st, b)
		}
		return st
	}
	before := keys()
	if st := behindProxy("http://" + s.HTTPAddr); st != http.StatusCreated {
		t.Errorf("proxied request from the base URL's origin: %d, want 201", st)
	}
	if st := behindProxy("http://evil.example"); st != http.StatusForbidden {
		t.Errorf("proxied request from another origin: %d, want 403", st)
	}
	if added := keys() - before; added != 1 {
		t.Errorf("proxied requests added %d keys, want 1", added)
	}

	// Reading stays open to any site (the browser keeps the answer from it).
	st, b, _ := s.request(t, http.MethodGet, "/rest/ssh/1.0/keys", http.Header{
		"Authorization": {basicAuth(u.Name, u.Password)}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"},
	}, nil)
	mustStatus(t, "cross-site GET", st, b, http.StatusOK)

	// The leak endpoints act on the credentials sent, not the caller's:
	// a reporting tool on any site may call them (both API versions), but
	// a cross-site call is anonymous even when the browser sends a system
	// administrator's credentials: the answer names no owner.
	tok := leakCreateToken(t, s, u.Name, u.Password, "csrf")
	admin := http.Header{"Authorization": {basicAuth(adminName, s.AdminPassword)}}
	if r := leakCheck(t, s, admin, tok.Token); len(r) != 1 || r[0].Owner == nil {
		t.Fatalf("the administrator's own check names no owner: %+v", r)
	}
	for _, version := range []string{"1.0", "latest"} {
		st, b, _ = s.request(t, http.MethodPost, "/rest/latch/"+version+"/credentials/check", http.Header{
			"Authorization": admin["Authorization"], "Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://scanner.example"},
		}, map[string]any{"credentials": []string{tok.Token}})
		mustStatus(t, "cross-site validity check "+version, st, b, http.StatusOK)
		r := decodeJSON[struct{ Results []leakResult }](t, b).Results
		if len(r) != 1 || r[0].Status != "active" || r[0].Owner != nil {
			t.Errorf("cross-site validity check %s with the administrator's credentials: %s, want active without owner", version, b)
		}
		st, b, _ = s.request(t, http.MethodPost, "/rest/latch/"+version+"/credentials/revoke", http.Header{
			"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://scanner.example"},
		}, map[string]any{"credentials": []string{"not-a-credential"}, "source": "e2e"})
		mustStatus(t, "cross-site revoke report "+version, st, b, http.StatusAccepted)
	}

	// Git over HTTP: the real git, once with the headers a browser would
	// add, then as itself.
	g := newGit(t)
	dir := g.initRepo(t)
	g.commitFile(t, dir, "README", "hello\n", "first")
	url := s.gitURLAs("CSRF", "code", u.Name, u.Password)
	out, err := g.run(dir, "-c", "http.extraHeader=Origin: https://evil.example", "-c", "http.extraHeader=Sec-Fetch-Site: cross-site",
		"push", url, "main")
	if err == nil {
		t.Fatalf("a push carrying a cross-site browser's headers was accepted:\n%s", out)
	}
	if !strings.Contains(out, "403") {
		t.Errorf("cross-site push failed without a 403:\n%s", out)
	}
	if refs := g.lsRemote(t, url); len(refs) != 0 {
		t.Errorf("after the refused push the repository has refs %v", refs)
	}
	// The Cloud-style path reaches the same Git handler.
	st, b, _ = s.request(t, http.MethodPost, "/csrf/code.git/git-receive-pack", http.Header{
		"Authorization": {basicAuth(u.Name, u.Password)}, "Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"},
		"Content-Type": {"application/x-git-receive-pack-request"},
	}, "0000")
	mustStatus(t, "cross-site POST to the workspace clone path", st, b, http.StatusForbidden)
	g.must(t, dir, "push", "-q", url, "main")
	if refs := g.lsRemote(t, url); refs["refs/heads/main"] == "" {
		t.Errorf("git's own push did not land: refs %v", refs)
	}
	s.checkLogForSecrets(t)
}
