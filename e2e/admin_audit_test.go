package e2e

// The audit trail of one scripted day of activity, checked event by event
// through GET /rest/latch/1.0/admin/audit and in the server's JSON log.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// admWant is an expected audit event; empty fields are not checked, except
// that Outcome defaults to "success".
type admWant struct {
	Type, Actor, Target, Address, CredentialID, Outcome string
	// ActorOneOf, when set, lists acceptable actor names instead of Actor.
	ActorOneOf []string
}

func (w admWant) String() string {
	return fmt.Sprintf("%s actor=%s target=%s address=%s cred=%s outcome=%s", w.Type, w.Actor, w.Target, w.Address, w.CredentialID, w.Outcome)
}

func (e admEvent) String() string {
	return fmt.Sprintf("%s actor=%s target=%s address=%s cred=%s outcome=%s detail=%q", e.Type, e.actorName(), e.Target, e.Address, e.CredentialID, e.Outcome, e.Detail)
}

func TestAdminAuditDay(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	const ua = "latch-e2e-audit-day/1.0"
	ada := s.createUser(t, "ada") // ADMIN: may read the audit trail
	ned := s.createUser(t, "ned") // no global permission
	s.grant(t, "", ada.Name, "ADMIN")
	time.Sleep(5 * time.Millisecond)
	t0 := time.Now().UnixMilli()

	// req sends a request with our user agent.
	req := func(method, path, auth string, body any, kv ...string) (int, []byte, http.Header) {
		t.Helper()
		return s.request(t, method, path, admHdr(auth, append([]string{"User-Agent", ua}, kv...)...), body)
	}
	adminAuth := basicAuth(adminName, s.AdminPassword)
	must := func(what string, want int, st int, b []byte) {
		t.Helper()
		mustStatus(t, what, st, b, want)
	}
	var want []admWant
	expect := func(w ...admWant) { want = append(want, w...) }

	// 1. The administrator creates dana.
	danaPw := "pw-" + randomHex(12)
	s.addSecret(danaPw)
	st, b, _ := req(http.MethodPost, "/rest/api/1.0/admin/users?"+url.Values{"name": {"dana"}, "password": {danaPw},
		"displayName": {"Dana"}, "emailAddress": {"dana@example.com"}}.Encode(), adminAuth, nil)
	mustStatus(t, "create dana", st, b, http.StatusOK, http.StatusCreated, http.StatusNoContent)
	expect(admWant{Type: "user.created", Actor: adminName, Target: "user:dana", Address: "127.0.0.1"})
	danaAuth := basicAuth("dana", danaPw)

	// 2. dana creates a token.
	st, b, _ = req(http.MethodPut, admUserTokens("dana"), danaAuth, map[string]any{"name": "deploy", "permissions": []string{"REPO_READ"}})
	must("dana creates a token", http.StatusOK, st, b)
	tk := decodeJSON[admTok](t, b)
	s.addSecret(tk.Token)
	target := "token:" + tk.ID
	expect(admWant{Type: "token.created", Actor: "dana", Target: target, Address: "127.0.0.1"})

	// 3. dana uses it: first use from 127.0.0.1; the second use is not new.
	st, b, _ = req(http.MethodGet, admProbe, admBearer(tk.Token), nil)
	must("first use", http.StatusOK, st, b)
	expect(admWant{Type: "token.new_address", Actor: "dana", Target: target, CredentialID: tk.ID, Address: "127.0.0.1"})
	st, b, _ = req(http.MethodGet, admProbe, admBearer(tk.Token), nil)
	must("second use", http.StatusOK, st, b)

	// 4. The administrator trusts the local proxy.
	st, b, _ = req(http.MethodPut, admSettings, adminAuth, `{"network":{"trustedProxies":["127.0.0.1/32"]}}`)
	must("trust the proxy", http.StatusOK, st, b)
	expect(admWant{Type: "settings.changed", Actor: adminName, Target: "settings", Address: "127.0.0.1"})

	// 5. dana uses the token from a new address, through the proxy.
	st, b, _ = req(http.MethodGet, admProbe, admBearer(tk.Token), nil, "X-Forwarded-For", "203.0.113.50")
	must("use from 203.0.113.50", http.StatusOK, st, b)
	expect(admWant{Type: "token.new_address", Actor: "dana", Target: target, CredentialID: tk.ID, Address: "203.0.113.50"})

	// 6. dana renames it, then rotates it.
	st, b, _ = req(http.MethodPost, admUserTokens("dana")+"/"+tk.ID, danaAuth, map[string]any{"name": "deploy-2"})
	must("update", http.StatusOK, st, b)
	expect(admWant{Type: "token.updated", Actor: "dana", Target: target, Address: "127.0.0.1"})
	st, b, _ = req(http.MethodPost, admRotatePath(tk.ID), danaAuth, map[string]any{"graceSeconds": 0})
	must("rotate", http.StatusOK, st, b)
	rot := decodeJSON[admTok](t, b)
	s.addSecret(rot.Token)
	expect(admWant{Type: "token.rotated", Actor: "dana", Target: target, Address: "127.0.0.1"})

	// 7. A failed login.
	st, b, _ = req(http.MethodGet, admProbe, basicAuth("dana", "not-her-password"), nil)
	must("wrong password", http.StatusUnauthorized, st, b)
	expect(admWant{Type: "login.failed", Actor: "dana", Target: "user:dana", Address: "127.0.0.1", Outcome: "refused"})

	// 8. Refused tokens: presented with another user's name; the rotated-out
	// secret.
	st, b, _ = req(http.MethodGet, admProbe, basicAuth("ned", rot.Token), nil)
	must("token with the wrong user name", http.StatusUnauthorized, st, b)
	expect(admWant{Type: "token.refused", ActorOneOf: []string{"ned", "dana"}, Target: target, CredentialID: tk.ID, Address: "127.0.0.1", Outcome: "refused"})

	// 9. Another settings change.
	st, b, _ = req(http.MethodPut, admSettings, adminAuth, `{"tokens":{"maxPerUser":50}}`)
	must("settings", http.StatusOK, st, b)
	expect(admWant{Type: "settings.changed", Actor: adminName, Target: "settings", Address: "127.0.0.1"})

	// 10. dana revokes the token; a later use of it is refused.
	st, b, _ = req(http.MethodDelete, admUserTokens("dana")+"/"+tk.ID, danaAuth, nil)
	must("revoke", http.StatusNoContent, st, b)
	expect(admWant{Type: "token.revoked", Actor: "dana", Target: target, Address: "127.0.0.1"})
	st, b, _ = req(http.MethodGet, admProbe, admBearer(rot.Token), nil, "X-Forwarded-For", "203.0.113.51")
	must("revoked token", http.StatusUnauthorized, st, b)
	expect(admWant{Type: "token.refused", Actor: "dana", Target: target, CredentialID: tk.ID, Address: "203.0.113.51", Outcome: "refused"})

	// 11. Someone tries dana's password ten times: the tenth locks the
	// account; the eleventh, even with the right password, waits.
	for i := 1; i <= 10; i++ {
		st, b, _ = req(http.MethodGet, admProbe, basicAuth("dana", fmt.Sprintf("guess-%d", i)), nil, "X-Forwarded-For", "198.51.100.99")
		must(fmt.Sprintf("guess %d", i), http.StatusUnauthorized, st, b)
		expect(admWant{Type: "login.failed", Actor: "dana", Target: "user:dana", Address: "198.51.100.99", Outcome: "refused"})
	}
	expect(admWant{Type: "auth.rate_limited", Actor: "dana", Target: "user:dana", Address: "198.51.100.99", Outcome: "refused"})
	st, b, h := req(http.MethodGet, admProbe, danaAuth, nil)
	admRetryAfter(t, "dana after 10 failures", st, b, h, 30)

	// 12. The administrator deletes dana.
	st, b, _ = req(http.MethodDelete, "/rest/api/1.0/admin/users?name=dana", adminAuth, nil)
	mustStatus(t, "delete dana", st, b, http.StatusOK, http.StatusNoContent)
	expect(admWant{Type: "user.deleted", Actor: adminName, Target: "user:dana", Address: "127.0.0.1"})
	tEnd := time.Now().UnixMilli()

	// The trail, oldest first.
	raw := getJSON[page[json.RawMessage]](t, s, fmt.Sprintf("%s?since=%d&limit=1000", admAudit, t0), adminName, s.AdminPassword)
	var got []admEvent
	for _, r := range raw.Values {
		var e admEvent
		if err := json.Unmarshal(r, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	slices.Reverse(got)

	t.Run("event by event", func(t *testing.T) {
		for i := 0; i < max(len(got), len(want)); i++ {
			switch {
			case i >= len(got):
				t.Errorf("event %d missing: want %v", i, want[i])
				continue
			case i >= len(want):
				t.Errorf("event %d unexpected: %v", i, got[i])
				continue
			}
			g, w := got[i], want[i]
			if w.Outcome == "" {
				w.Outcome = "success"
			}
			var bad []string
			if g.Type != w.Type {
				bad = append(bad, "type")
			}
			if w.ActorOneOf != nil {
				if !slices.Contains(w.ActorOneOf, g.actorName()) {
					bad = append(bad, "actor")
				}
			} else if g.actorName() != w.Actor {
				bad = append(bad, "actor")
			}
			if g.Target != w.Target {
				bad = append(bad, "target")
			}
			if w.Address != "" && g.Address != w.Address {
				bad = append(bad, "address")
			}
			if w.CredentialID != "" && g.CredentialID != w.CredentialID {
				bad = append(bad, "credentialId")
			}
			if g.Outcome != w.Outcome {
				bad = append(bad, "outcome")
			}
			if g.UserAgent != ua {
				bad = append(bad, "userAgent")
			}
			if g.Timestamp < t0 || g.Timestamp > tEnd {
				bad = append(bad, "timestamp")
			}
			if i > 0 && (g.Timestamp < got[i-1].Timestamp || g.ID <= got[i-1].ID) {
				bad = append(bad, "order")
			}
			if len(bad) > 0 {
				t.Errorf("event %d: wrong %v\n got %v (ua %q, ts %d)\nwant %v", i, bad, g, g.UserAgent, g.Timestamp, w)
			}
		}
		// Actors are identified by id as well as by name.
		for _, g := range got {
			if g.Actor != nil && g.Actor.Name == adminName && g.Actor.ID == 0 {
				t.Errorf("event %v: the admin actor has no id", g)
			}
		}
	})

	t.Run("no secret in any event", func(t *testing.T) {
		full := getJSON[json.RawMessage](t, s, admAudit+"?limit=1000", adminName, s.AdminPassword)
		for _, sec := range []string{tk.Token, rot.Token, danaPw, s.AdminPassword, ada.Password, ned.Password} {
			if bytes.Contains(full, []byte(sec)) {
				t.Errorf("the audit trail contains a secret (%s)", redactAdm(sec))
			}
		}
		// The server log is checked for every registered secret when the
		// server stops (harness); the guesses are not registered secrets
		// but must not be logged either.
		if strings.Contains(s.Log(t), "guess-1") || strings.Contains(s.Log(t), "not-her-password") {
			t.Error("the server log contains a password that was tried")
		}
	})

	t.Run("every event is one JSON log line", func(t *testing.T) {
		var logged []map[string]any
		f, err := os.Open(s.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		dupReported := false
		for sc.Scan() {
			line := sc.Bytes()
			var m map[string]any
			if json.Unmarshal(line, &m) != nil || m["msg"] != "audit" {
				continue
			}
			if dup := admDuplicateKey(line); dup != "" && !dupReported {
				t.Errorf("audit log line has the key %q twice (ambiguous JSON; strict parsers reject it): %s", dup, truncate(line, 300))
				dupReported = true
			}
			logged = append(logged, m)
		}
		// Match the day's events, in order, to log lines.
		j := 0
		for _, e := range got {
			found := false
			for ; j < len(logged); j++ {
				m := logged[j]
				if m["event"] == e.Type && m["target"] == e.Target && m["address"] == e.Address &&
					m["actor"] == e.actorName() && m["outcome"] == e.Outcome && m["credential_id"] == e.CredentialID {
					found = true
					j++
					break
				}
			}
			if !found {
				t.Errorf("event %v has no matching \"msg\":\"audit\" log line (in order)", e)
				return
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		list := func(q string) []admEvent {
			t.Helper()
			return getJSON[page[admEvent]](t, s, admAudit+"?limit=1000&"+q, adminName, s.AdminPassword).Values
		}
		// type
		for _, typ := range []string{"token.created", "login.failed", "settings.changed", "token.refused"} {
			var exp []int64
			for _, e := range got {
				if e.Type == typ {
					exp = append(exp, e.ID)
				}
			}
			slices.Reverse(exp)
			if ids := admIDs(list(fmt.Sprintf("type=%s&since=%d", typ, t0))); !slices.Equal(ids, exp) {
				t.Errorf("type=%s: ids %v, want %v", typ, ids, exp)
			}
		}
		if evs := list("type=no.such.type"); len(evs) != 0 {
			t.Errorf("type=no.such.type: %d events", len(evs))
		}
		// actor
		for _, actor := range []string{"dana", adminName} {
			var exp []int64
			for _, e := range got {
				if e.actorName() == actor {
					exp = append(exp, e.ID)
				}
			}
			slices.Reverse(exp)
			if ids := admIDs(list(fmt.Sprintf("actor=%s&since=%d", actor, t0))); !slices.Equal(ids, exp) {
				t.Errorf("actor=%s: ids %v, want %v", actor, ids, exp)
			}
		}
		// since/until: inclusive/exclusive epoch ms, combined with type.
		if len(got) > 6 {
			since, until := got[2].Timestamp, got[len(got)-3].Timestamp
			var exp []int64
			for _, e := range got {
				if e.Timestamp >= since && e.Timestamp < until {
					exp = append(exp, e.ID)
				}
			}
			slices.Reverse(exp)
			if ids := admIDs(list(fmt.Sprintf("since=%d&until=%d", since, until))); !slices.Equal(ids, exp) {
				t.Errorf("since=%d&until=%d: ids %v, want %v", since, until, ids, exp)
			}
			var exp2 []int64
			for _, e := range got {
				if e.Timestamp >= since && e.Timestamp < until && e.actorName() == "dana" && e.Type == "login.failed" {
					exp2 = append(exp2, e.ID)
				}
			}
			slices.Reverse(exp2)
			if ids := admIDs(list(fmt.Sprintf("since=%d&until=%d&actor=dana&type=login.failed", since, until))); !slices.Equal(ids, exp2) {
				t.Errorf("combined filters: ids %v, want %v", ids, exp2)
			}
		}
		if evs := list(fmt.Sprintf("until=%d", t0)); slices.ContainsFunc(evs, func(e admEvent) bool { return e.Timestamp >= t0 }) {
			t.Error("until is not exclusive / not applied")
		}
		if evs := list(fmt.Sprintf("since=%d", tEnd+60_000)); len(evs) != 0 {
			t.Errorf("since in the future: %d events", len(evs))
		}
		for _, q := range []string{"since=yesterday", "until=-5", "since=1.5", "limit=-1", "start=x"} {
			st, b, _ := s.do(t, http.MethodGet, admAudit+"?"+q, adminName, s.AdminPassword, nil)
			if st != http.StatusBadRequest {
				t.Errorf("GET audit?%s: %d, want 400; %s", q, st, truncate(b, 200))
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		all := admIDs(getJSON[page[admEvent]](t, s, fmt.Sprintf("%s?since=%d&limit=1000", admAudit, t0), adminName, s.AdminPassword).Values)
		var paged []int64
		start := 0
		for i := 0; ; i++ {
			if i > 100 {
				t.Fatal("too many pages")
			}
			p := getJSON[page[admEvent]](t, s, fmt.Sprintf("%s?since=%d&limit=3&start=%d", admAudit, t0, start), adminName, s.AdminPassword)
			if p.Limit != 3 || p.Start != start || p.Size != len(p.Values) || len(p.Values) > 3 {
				t.Errorf("page at %d: limit %d start %d size %d values %d", start, p.Limit, p.Start, p.Size, len(p.Values))
			}
			paged = append(paged, admIDs(p.Values)...)
			if p.IsLastPage {
				if p.NextPageStart != nil {
					t.Errorf("last page has nextPageStart %d", *p.NextPageStart)
				}
				break
			}
			if p.NextPageStart == nil || *p.NextPageStart != start+3 {
				t.Fatalf("page at %d: nextPageStart %v, want %d", start, p.NextPageStart, start+3)
			}
			start = *p.NextPageStart
		}
		if !slices.Equal(paged, all) {
			t.Errorf("paging by 3 gives %v, one page gives %v", paged, all)
		}
	})

	t.Run("administrators only", func(t *testing.T) {
		st, b, _ := s.do(t, http.MethodGet, admAudit, ned.Name, ned.Password, nil)
		if st != http.StatusUnauthorized {
			t.Errorf("GET audit as a plain user: %d, want 401; %s", st, truncate(b, 200))
		} else {
			checkError(t, "GET audit as a plain user", b, "")
		}
		st, b, _ = s.do(t, http.MethodGet, admAudit, "", "", nil)
		if st != http.StatusUnauthorized {
			t.Errorf("GET audit anonymously: %d, want 401; %s", st, truncate(b, 200))
		}
		st, b, _ = s.do(t, http.MethodGet, admAudit+"?limit=1", ada.Name, ada.Password, nil)
		mustStatus(t, "GET audit as ADMIN", st, b, http.StatusOK)
		// Reading it is not itself an event, and creates no noise.
		after := admIDs(getJSON[page[admEvent]](t, s, fmt.Sprintf("%s?since=%d&limit=1000", admAudit, t0), adminName, s.AdminPassword).Values)
		if len(after) != len(got) {
			t.Errorf("reading the audit trail added %d events", len(after)-len(got))
		}
	})
}

func admIDs(evs []admEvent) []int64 {
	ids := make([]int64, 0, len(evs))
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

// admDuplicateKey returns a top-level key that appears twice in a JSON
// object, or "".
func admDuplicateKey(line []byte) string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}
