package e2e

// Leaked credentials (issue 7, server side) end to end: the validity check
// and revocation on report over REST, and push protection with the real git
// client. Helpers here are prefixed "leak" to stay apart from other files.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/mail/mailtest"

	_ "modernc.org/sqlite" // expires a token in latch.db while the server is stopped
)

const (
	leakCheckPath  = "/rest/latch/1.0/credentials/check"
	leakRevokePath = "/rest/latch/1.0/credentials/revoke"
)

type leakToken struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

type leakResult struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Owner  *struct {
		Name string `json:"name"`
	} `json:"owner"`
}

type leakEvent struct {
	Type    string `json:"type"`
	Target  string `json:"target"`
	Detail  string `json:"detail"`
	Outcome string `json:"outcome"`
	Address string `json:"address"`
	Actor   *struct {
		Name string `json:"name"`
	} `json:"actor"`
}

// leakCreateToken creates a personal token of user (Basic user:pass) and
// registers its secret so that the server log is checked for it.
func leakCreateToken(t testing.TB, s *Server, user, pass, name string) leakToken {
	t.Helper()
	st, b, _ := s.do(t, http.MethodPut, "/rest/access-tokens/1.0/users/"+url.PathEscape(strings.ToLower(user)), user, pass,
		map[string]any{"name": name, "permissions": []string{"PROJECT_WRITE", "REPO_WRITE"}})
	mustStatus(t, "create token "+name, st, b, http.StatusOK)
	tok := decodeJSON[leakToken](t, b)
	if tok.Token == "" || tok.ID == "" {
		t.Fatalf("create token: no id or secret: %s", truncate(b, 300))
	}
	s.addSecret(tok.Token)
	return tok
}

// leakCheck posts credentials to the check endpoint with hdr and returns the
// results.
func leakCheck(t testing.TB, s *Server, hdr http.Header, creds ...string) []leakResult {
	t.Helper()
	st, b, _ := s.request(t, http.MethodPost, leakCheckPath, hdr, map[string]any{"credentials": creds})
	mustStatus(t, "credentials check", st, b, http.StatusOK)
	var body struct {
		Results []leakResult `json:"results"`
	}
	if err := json.Unmarshal(b, &body); err != nil || len(body.Results) != len(creds) {
		t.Fatalf("check answer %s: %v (want %d results)", truncate(b, 400), err, len(creds))
	}
	return body.Results
}

// leakLike returns a well-formed latch token of prefix (valid checksum)
// that the server never issued.
func leakLike(prefix string) string {
	body := prefix + "_" + strings.Repeat("Z", 10) + randomHex(11)
	body = body[:len(prefix)+1+32]
	sum := crc32.ChecksumIEEE([]byte(body))
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var c [6]byte
	for i := 5; i >= 0; i-- {
		c[i] = alphabet[sum%62]
		sum /= 62
	}
	return body + string(c[:])
}

func leakBreakChecksum(secret string) string {
	last := secret[len(secret)-1]
	if last == '0' {
		return secret[:len(secret)-1] + "1"
	}
	return secret[:len(secret)-1] + "0"
}

// leakAudit lists the audit events of a type, as the admin.
func leakAudit(t testing.TB, s *Server, typ string) []leakEvent {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodGet, "/rest/latch/1.0/admin/audit?limit=1000&type="+url.QueryEscape(typ), nil)
	mustStatus(t, "GET audit", st, b, http.StatusOK)
	return decodeJSON[page[leakEvent]](t, b).Values
}

// leakExpire sets a token's expiry in the past in the stopped server's
// database.
func leakExpire(t testing.TB, dataDir, id string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "latch.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec("UPDATE access_tokens SET expires_at = $1 WHERE id = $2", time.Now().Add(-time.Hour).UnixMilli(), id)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("expiring token %s: %d rows", id, n)
	}
}

func TestLeaksCheck(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH(), WithSQLite())
	alice := s.createUser(t, "alice")
	active := leakCreateToken(t, s, alice.Name, alice.Password, "active")
	gone := leakCreateToken(t, s, alice.Name, alice.Password, "gone")
	expiring := leakCreateToken(t, s, alice.Name, alice.Password, "expiring")
	st, b, _ := s.do(t, http.MethodDelete, "/rest/access-tokens/1.0/users/alice/"+gone.ID, alice.Name, alice.Password, nil)
	mustStatus(t, "delete token", st, b, http.StatusNoContent)

	s.stop(t)
	leakExpire(t, s.DataDir, expiring.ID)
	s = s.restart(t, WithoutSSH())

	unknown := leakLike("latp")
	creds := []string{active.Token, gone.Token, expiring.Token, unknown, leakBreakChecksum(active.Token), "not a token"}
	want := []leakResult{
		{ID: active.ID, Kind: "latp", Status: "active"},
		{ID: gone.ID, Kind: "latp", Status: "revoked"},
		{ID: expiring.ID, Kind: "latp", Status: "expired"},
		{ID: "", Kind: "latp", Status: "unknown"},
		{ID: "", Kind: "", Status: "unknown"}, // checksum-invalid
		{ID: "", Kind: "", Status: "unknown"},
	}
	for _, who := range []struct {
		name  string
		hdr   http.Header
		owner bool
	}{
		{"anonymous", nil, false},
		{"user", http.Header{"Authorization": {basicAuth(alice.Name, alice.Password)}}, false},
		{"token", http.Header{"Authorization": {"Bearer " + active.Token}}, false},
		{"admin", http.Header{"Authorization": {basicAuth(adminName, s.AdminPassword)}}, true},
	} {
		t.Run(who.name, func(t *testing.T) {
			got := leakCheck(t, s, who.hdr, creds...)
			for i, w := range want {
				g := got[i]
				if g.ID != w.ID || g.Kind != w.Kind || g.Status != w.Status {
					t.Errorf("credential %d: got id %q kind %q status %q, want %q %q %q", i, g.ID, g.Kind, g.Status, w.ID, w.Kind, w.Status)
				}
				wantOwner := who.owner && w.Status != "unknown"
				if (g.Owner != nil) != wantOwner {
					t.Errorf("credential %d: owner present %v, want %v", i, g.Owner != nil, wantOwner)
				} else if g.Owner != nil && g.Owner.Name != "alice" {
					t.Errorf("credential %d: owner %q, want alice", i, g.Owner.Name)
				}
			}
		})
	}

	// `latch scan --verify` asks this endpoint about what it finds.
	dir := t.TempDir()
	for name, content := range map[string]string{"live.env": "TOKEN=" + active.Token + "\n", "old.env": "TOKEN=" + gone.Token + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(latchBin, "scan", "--format", "json", "--verify", s.URL, dir).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("latch scan --verify: %v (want exit 1)\n%s", err, out)
	}
	var report struct {
		Findings []struct {
			Path         string `json:"path"`
			Status       string `json:"status"`
			CredentialID string `json:"credentialId"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("scan report: %v\n%s", err, out)
	}
	verified := map[string]string{}
	for _, f := range report.Findings {
		verified[filepath.Base(f.Path)] = f.Status + " " + f.CredentialID
	}
	if verified["live.env"] != "active "+active.ID || verified["old.env"] != "revoked "+gone.ID {
		t.Errorf("latch scan --verify: %v", verified)
	}

	// And about what it finds in a history: a live token committed, then
	// removed, is still live and reported with the commit that added it.
	g := newGit(t)
	repo := t.TempDir()
	g.must(t, repo, "init", "-q")
	for i, content := range []string{"TOKEN=" + active.Token + "\n", "TOKEN=${TOKEN}\n"} {
		if err := os.WriteFile(filepath.Join(repo, "app.env"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		g.must(t, repo, "add", "-A")
		g.must(t, repo, "commit", "-qm", fmt.Sprintf("commit %d", i))
	}
	added := g.must(t, repo, "rev-parse", "HEAD~1")
	g.must(t, repo, "repack", "-q", "-adf") // read from the pack, walked in process
	out, err = exec.Command(latchBin, "scan", "--git", repo, "--format", "json", "--verify", s.URL).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("latch scan --git --verify: %v (want exit 1)\n%s", err, out)
	}
	var history struct {
		Findings []struct {
			Path         string `json:"path"`
			Commit       string `json:"commit"`
			Author       string `json:"author"`
			InHEAD       *bool  `json:"inHead"`
			Status       string `json:"status"`
			CredentialID string `json:"credentialId"`
		} `json:"findings"`
		Stats struct {
			Commits int `json:"commits"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &history); err != nil {
		t.Fatalf("history report: %v\n%s", err, out)
	}
	if len(history.Findings) != 1 || history.Stats.Commits != 2 {
		t.Fatalf("history report:\n%s", out)
	}
	if f := history.Findings[0]; f.Path != "app.env" || f.Commit != added || f.Author != "Latch E2E" ||
		f.InHEAD == nil || *f.InHEAD || f.Status != "active" || f.CredentialID != active.ID {
		t.Errorf("history finding: %+v", f)
	}

	// At most 100 credentials.
	many := make([]string, 101)
	for i := range many {
		many[i] = "x"
	}
	st, b, _ = s.request(t, http.MethodPost, leakCheckPath, nil, map[string]any{"credentials": many})
	mustStatus(t, "101 credentials", st, b, http.StatusBadRequest)
	checkError(t, "101 credentials", b, "")
	leakCheck(t, s, nil, many[:100]...)
	// Malformed JSON.
	st, b, _ = s.request(t, http.MethodPost, leakCheckPath, nil, `{"credentials":`)
	mustStatus(t, "malformed check", st, b, http.StatusBadRequest)
	checkError(t, "malformed check", b, "")
}

func TestLeaksRevoke(t *testing.T) {
	t.Parallel()
	smtp := mailtest.Start(t)
	s := startServer(t, WithoutSSH(), withSMTP(smtp.Addr))
	alice := s.createUser(t, "alice")
	tok := leakCreateToken(t, s, alice.Name, alice.Password, "deploy")
	keep := leakCreateToken(t, s, alice.Name, alice.Password, "keep")
	bearer := func(secret string) int {
		st, _, _ := s.doBearer(t, http.MethodGet, "/rest/api/1.0/users/alice", secret, nil)
		return st
	}
	if st := bearer(tok.Token); st != http.StatusOK {
		t.Fatalf("token before revocation: %d", st)
	}

	source := "https://paste.example.com/p/42"
	st, b, _ := s.request(t, http.MethodPost, leakRevokePath, nil,
		map[string]any{"credentials": []string{tok.Token, leakLike("latp"), "garbage"}, "source": source})
	mustStatus(t, "revoke", st, b, http.StatusAccepted)
	if strings.Contains(string(b), tok.ID) {
		t.Errorf("the revoke answer names the live token: %s", b)
	}
	// Refused at once: the authentication cache dropped it.
	if st := bearer(tok.Token); st != http.StatusUnauthorized {
		t.Errorf("revoked token: status %d, want 401", st)
	}
	if st := bearer(keep.Token); st != http.StatusOK {
		t.Errorf("another token of the owner: status %d, want 200", st)
	}
	if r := leakCheck(t, s, nil, tok.Token); r[0].Status != "revoked" || r[0].ID != tok.ID {
		t.Errorf("check after revocation: %+v", r[0])
	}
	// Unknown and malformed credentials answer the same.
	st, b, _ = s.request(t, http.MethodPost, leakRevokePath, nil, map[string]any{"credentials": []string{leakLike("latr")}})
	mustStatus(t, "revoke unknown", st, b, http.StatusAccepted)

	// Audited with the source, and in the log as a JSON line.
	evs := leakAudit(t, s, "credential.revoked_on_report")
	if len(evs) != 1 || evs[0].Target != "token:"+tok.ID || !strings.Contains(evs[0].Detail, source) || evs[0].Address != "127.0.0.1" {
		t.Errorf("audit events: %+v", evs)
	}
	log := s.Log(t)
	if !strings.Contains(log, `"msg":"audit"`) || !strings.Contains(log, `"event":"credential.revoked_on_report"`) {
		t.Errorf("no audit line in the server log")
	}
	// The owner is told by mail what, where and from where.
	msgs := smtp.Wait(t, 1, 30*time.Second)
	if m := msgs[0]; len(m.To) != 1 || m.To[0] != alice.Email {
		t.Errorf("notice to %v, want %s", m.To, alice.Email)
	}
	for _, want := range []string{tok.ID, `"deploy"`, source, "127.0.0.1", "revoked"} {
		if !strings.Contains(msgs[0].Subject+"\n"+msgs[0].Body, want) {
			t.Errorf("notice lacks %q:\n%s\n%s", want, msgs[0].Subject, msgs[0].Body)
		}
	}
	if strings.Contains(msgs[0].Body, tok.Token) {
		t.Error("the notice holds the secret")
	}

	// Bad requests.
	st, b, _ = s.request(t, http.MethodPost, leakRevokePath, nil, `{"credentials":[`)
	mustStatus(t, "malformed revoke", st, b, http.StatusBadRequest)
	checkError(t, "malformed revoke", b, "")
	st, b, _ = s.request(t, http.MethodPost, leakRevokePath, nil, map[string]any{"credentials": make([]string, 1001)})
	mustStatus(t, "1001 credentials", st, b, http.StatusBadRequest)
	checkError(t, "1001 credentials", b, "")
}

func TestLeaksRateLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	for _, c := range []struct {
		path  string
		burst int
	}{{leakRevokePath, 30}, {leakCheckPath, 60}} {
		var st int
		var hdr http.Header
		n := 0
		for ; n < c.burst+5; n++ {
			st, _, hdr = s.request(t, http.MethodPost, c.path, nil, map[string]any{"credentials": []string{"x"}})
			if st == http.StatusTooManyRequests {
				break
			}
		}
		if st != http.StatusTooManyRequests {
			t.Errorf("%s: no 429 after %d requests", c.path, n)
			continue
		}
		if n < c.burst-2 {
			t.Errorf("%s: 429 after only %d requests", c.path, n)
		}
		if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("%s: Retry-After %q", c.path, hdr.Get("Retry-After"))
		}
	}
}

func TestLeaksPushProtection(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	alice := s.createUser(t, "alice")
	s.createProject(t, "LEAK", "Leaks")
	s.createRepo(t, "LEAK", "app")
	s.grant(t, "LEAK", alice.Name, "PROJECT_WRITE")
	live := leakCreateToken(t, s, alice.Name, alice.Password, "live")
	url := s.gitURLAs("LEAK", "app", alice.Name, alice.Password)
	g := newGit(t)
	dir := g.initRepo(t)
	g.commitFile(t, dir, "README.md", "hello\n", "base")
	g.must(t, dir, "push", "-q", url, "main")
	leak := g.commitFile(t, dir, "config/app.env", "# app\nUSER=alice\nTOKEN="+live.Token+"\n", "config")

	t.Run("blocked", func(t *testing.T) {
		out, err := g.run(dir, "push", url, "main")
		if err == nil {
			t.Fatalf("a push carrying a live token was accepted:\n%s", out)
		}
		for _, want := range []string{"commit " + leak[:12], "config/app.env:3", live.ID, "revoke",
			"/rest/latch/1.0/credentials/revoke", "git push -o latch-allow-secret=" + live.ID} {
			if !strings.Contains(out, want) {
				t.Errorf("refusal lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, live.Token) {
			t.Error("the refusal shows the secret")
		}
		if refs := g.lsRemote(t, url); refs["refs/heads/main"] == leak {
			t.Error("main moved")
		}
		evs := leakAudit(t, s, "push.blocked")
		if len(evs) != 1 || evs[0].Actor == nil || evs[0].Actor.Name != "alice" || !strings.Contains(evs[0].Detail, live.ID) {
			t.Errorf("push.blocked events: %+v", evs)
		}
	})

	t.Run("warned", func(t *testing.T) {
		st, b := s.asAdmin(t, http.MethodPut, "/rest/latch/1.0/admin/settings", map[string]any{"scanning": map[string]any{"pushProtection": "warn"}})
		mustStatus(t, "settings warn", st, b, http.StatusOK)
		wdir := g.initRepo(t)
		g.commitFile(t, wdir, "w.txt", live.Token+"\n", "warned")
		out, err := g.run(wdir, "push", url, "main:refs/heads/warned")
		if err != nil {
			t.Fatalf("warn mode refused the push: %v\n%s", err, out)
		}
		if !strings.Contains(out, "warning") || !strings.Contains(out, "w.txt:1") || !strings.Contains(out, live.ID) {
			t.Errorf("no warning:\n%s", out)
		}
		st, b = s.asAdmin(t, http.MethodPut, "/rest/latch/1.0/admin/settings", map[string]any{"scanning": map[string]any{"pushProtection": "block"}})
		mustStatus(t, "settings block", st, b, http.StatusOK)
	})

	t.Run("bypassed", func(t *testing.T) {
		out, err := g.run(dir, "push", "-o", "latch-allow-secret="+live.ID, url, "main")
		if err != nil {
			t.Fatalf("bypass refused: %v\n%s", err, out)
		}
		if refs := g.lsRemote(t, url); refs["refs/heads/main"] != leak {
			t.Errorf("main = %s, want %s", refs["refs/heads/main"], leak)
		}
		evs := leakAudit(t, s, "push.secret_bypassed")
		if len(evs) != 1 || evs[0].Target != "token:"+live.ID || evs[0].Actor == nil || evs[0].Actor.Name != "alice" {
			t.Errorf("bypass events: %+v", evs)
		}
	})

	t.Run("revoked does not block", func(t *testing.T) {
		other := leakCreateToken(t, s, alice.Name, alice.Password, "other")
		c := g.commitFile(t, dir, "other.txt", fmt.Sprintf("k=%s\n", other.Token), "other")
		if out, err := g.run(dir, "push", url, "main"); err == nil {
			t.Fatalf("live token accepted:\n%s", out)
		}
		st, b, _ := s.request(t, http.MethodPost, leakRevokePath, nil, map[string]any{"credentials": []string{other.Token}, "source": "push refusal"})
		mustStatus(t, "revoke", st, b, http.StatusAccepted)
		if out, err := g.run(dir, "push", url, "main"); err != nil {
			t.Fatalf("a revoked token blocked the push: %v\n%s", err, out)
		}
		if refs := g.lsRemote(t, url); refs["refs/heads/main"] != c {
			t.Errorf("main = %s, want %s", refs["refs/heads/main"], c)
		}
	})
}

// Push protection applies to pushes over SSH as well, bypass included.
func TestLeaksPushProtectionSSH(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.createUser(t, "alice")
	s.createProject(t, "LEAK", "Leaks")
	s.createRepo(t, "LEAK", "app")
	s.grant(t, "LEAK", alice.Name, "PROJECT_WRITE")
	live := leakCreateToken(t, s, alice.Name, alice.Password, "live")
	key := sshKeygen(t, "ed25519", 0, "alice@laptop")
	s.addUserKey(t, alice.Name, alice.Password, key, "")
	g := s.gitSSH(newGit(t), key)
	url := s.sshURL("LEAK", "app")
	dir := g.initRepo(t)
	c := g.commitFile(t, dir, "deploy/ci.yml", "env:\n  LATCH_TOKEN: "+live.Token+"\n", "ci")
	out, err := g.run(dir, "push", url, "main")
	if err == nil {
		t.Fatalf("a push over SSH carrying a live token was accepted:\n%s", out)
	}
	for _, want := range []string{"commit " + c[:12], "deploy/ci.yml:2", live.ID, "latch-allow-secret=" + live.ID} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if out, err := g.run(dir, "push", "-o", "latch-allow-secret="+live.ID, url, "main"); err != nil {
		t.Fatalf("bypass over SSH refused: %v\n%s", err, out)
	}
	evs := leakAudit(t, s, "push.secret_bypassed")
	if len(evs) != 1 || evs[0].Actor == nil || evs[0].Actor.Name != "alice" || evs[0].Target != "token:"+live.ID {
		t.Errorf("bypass events: %+v", evs)
	}
}
