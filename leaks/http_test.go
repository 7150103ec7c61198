package leaks_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/leaks"
	"github.com/latchhq/latch/token"
)

const checkPath = "/rest/latch/1.0/credentials/check"
const revokePath = "/rest/latch/1.0/credentials/revoke"

func TestCheckStatuses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	active := e.createToken(t, e.alice, "ci")
	expired := e.plantToken(t, e.alice.User, "100000000001", time.Now().Add(-time.Minute).UnixMilli())
	future := e.plantToken(t, e.alice.User, "100000000002", time.Now().Add(time.Hour).UnixMilli())
	deleted := e.createToken(t, e.alice, "gone")
	if err := e.b.DeleteToken(ctx, e.alice, backend.TokenOwnerRef{UserSlug: "alice"}, deleted.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _ := token.Generate(token.Personal)
	otherKind, _ := token.Generate(token.API)
	bad := active.Secret[:len(active.Secret)-1] + flip(active.Secret[len(active.Secret)-1])

	creds := []string{active.Secret, expired, future, deleted.Secret, unknown, otherKind, bad, "hello", ""}
	want := []leaks.CheckResult{
		{ID: active.ID, Kind: "latp", Status: "active"},
		{ID: "100000000001", Kind: "latp", Status: "expired"},
		{ID: "100000000002", Kind: "latp", Status: "active"},
		{ID: deleted.ID, Kind: "latp", Status: "revoked"},
		{ID: "", Kind: "latp", Status: "unknown"},
		{ID: "", Kind: "lata", Status: "unknown"},
		{ID: "", Kind: "", Status: "unknown"},
		{ID: "", Kind: "", Status: "unknown"},
		{ID: "", Kind: "", Status: "unknown"},
	}
	for _, who := range []struct {
		name  string
		p     *latch.Principal
		owner bool
	}{{"anonymous", nil, false}, {"user", e.alice, false}, {"admin", e.admin, true}} {
		t.Run(who.name, func(t *testing.T) {
			w := e.post(t, who.p, "192.0.2.1", checkPath, jsonBody(t, map[string]any{"credentials": creds}))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := decode[leaks.CheckResponse](t, w).Results
			if len(got) != len(want) {
				t.Fatalf("%d results, want %d: %s", len(got), len(want), w.Body)
			}
			for i := range want {
				g := got[i]
				owner := g.Owner
				g.Owner = nil
				if g != want[i] {
					t.Errorf("credential %d: got %+v, want %+v", i, g, want[i])
				}
				// The owner is shown to administrators, for every token latch
				// knows (a revoked one's as remembered when it was revoked).
				hasOwner := who.owner && want[i].Status != "unknown"
				if (owner != nil) != hasOwner {
					t.Errorf("credential %d: owner %+v, want present=%v", i, owner, hasOwner)
				}
				if owner != nil && owner.Name != "alice" {
					t.Errorf("credential %d: owner %q, want alice", i, owner.Name)
				}
			}
			if who.owner && !strings.Contains(w.Body.String(), `"owner":{"name":"alice"`) {
				t.Errorf("admin answer lacks the owner: %s", w.Body)
			}
			if strings.Contains(w.Body.String(), active.Secret) {
				t.Error("the answer echoes a secret")
			}
		})
	}
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

// A string that is not a well-formed latch token with a correct checksum is
// unknown without any database query.
func TestCheckInvalidWithoutQuery(t *testing.T) {
	e := newEnv(t)
	active := e.createToken(t, e.alice, "ci")
	body := active.Secret[:token.PrefixLen+1+token.RandomLen]
	var creds []string
	for _, k := range token.Kinds {
		tok, _ := token.Generate(k)
		creds = append(creds, tok[:len(tok)-1]+flip(tok[len(tok)-1]))
	}
	creds = append(creds,
		active.Secret[:len(active.Secret)-1]+flip(active.Secret[len(active.Secret)-1]),  // wrong checksum
		"latx_"+body[5:]+token.EncodeChecksum(token.Checksum([]byte("latx_"+body[5:]))), // unknown prefix
		strings.ToUpper(active.Secret[:4])+active.Secret[4:],                            // upper-case prefix
		active.Secret+"x", active.Secret[1:], "", "latp_", strings.Repeat("a", 10000),
	)
	before := e.st.lookups.Load()
	w := e.post(t, nil, "192.0.2.2", checkPath, jsonBody(t, map[string]any{"credentials": creds}))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	for i, r := range decode[leaks.CheckResponse](t, w).Results {
		if r.Status != "unknown" || r.ID != "" {
			t.Errorf("credential %d: %+v, want unknown", i, r)
		}
	}
	if n := e.st.lookups.Load() - before; n != 0 {
		t.Errorf("%d database lookups for checksum-invalid strings, want 0", n)
	}
	// A well-formed one costs one lookup when live.
	before = e.st.lookups.Load()
	e.post(t, nil, "192.0.2.2", checkPath, jsonBody(t, map[string]any{"credentials": []string{active.Secret}}))
	if n := e.st.lookups.Load() - before; n != 1 {
		t.Errorf("%d lookups for one live token, want 1", n)
	}
}

func TestCheckBadRequests(t *testing.T) {
	e := newEnv(t)
	many := make([]string, leaks.MaxCheck+1)
	for i := range many {
		many[i] = "x"
	}
	if w := e.post(t, nil, "192.0.2.3", checkPath, jsonBody(t, map[string]any{"credentials": many})); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), "At most 100 credentials") {
		t.Errorf("101 checks: status %d, want 400: %s", w.Code, w.Body)
	}
	for _, c := range []struct{ name, body string }{
		{"not JSON", `{"credentials":[`},
		{"wrong type", `{"credentials":"latp_x"}`},
		{"not strings", `{"credentials":[1,2]}`},
		{"missing", `{}`},
		{"empty body", ``},
		{"two values", `{"credentials":[]} {}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{checkPath, revokePath} {
				w := e.post(t, nil, "192.0.2.3", path, c.body)
				if w.Code != http.StatusBadRequest {
					t.Errorf("%s: status %d, want 400: %s", path, w.Code, w.Body)
				}
				body := decode[dcrest.ErrorBody](t, w)
				if len(body.Errors) != 1 || body.Errors[0].Message == "" {
					t.Errorf("%s: not the Data Center error envelope: %s", path, w.Body)
				}
			}
		})
	}
	// Exactly the maximum passes.
	w := e.post(t, nil, "192.0.2.4", checkPath, jsonBody(t, map[string]any{"credentials": many[:leaks.MaxCheck]}))
	if w.Code != http.StatusOK || len(decode[leaks.CheckResponse](t, w).Results) != leaks.MaxCheck {
		t.Errorf("100 credentials: status %d", w.Code)
	}
	manyRevoke := make([]string, leaks.MaxRevoke+1)
	if w := e.post(t, nil, "192.0.2.4", revokePath, jsonBody(t, map[string]any{"credentials": manyRevoke})); w.Code != http.StatusBadRequest {
		t.Errorf("1001 revocations: status %d, want 400", w.Code)
	}
	if w := e.post(t, nil, "192.0.2.4", revokePath, jsonBody(t, map[string]any{"credentials": manyRevoke[:leaks.MaxRevoke]})); w.Code != http.StatusAccepted {
		t.Errorf("1000 revocations: status %d, want 202", w.Code)
	}
}

func TestRateLimits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	e := newEnv(t, func(c *leaks.Config) {
		c.CheckRate = leaks.Rate{PerSecond: 1, Burst: 3}
		c.RevokeRate = leaks.Rate{PerSecond: 1.0 / 60, Burst: 2}
		c.Now = clock
	})
	body := `{"credentials":["x"]}`
	for i := range 3 {
		if w := e.post(t, nil, "198.51.100.1", checkPath, body); w.Code != http.StatusOK {
			t.Fatalf("check %d: status %d", i, w.Code)
		}
	}
	w := e.post(t, nil, "198.51.100.1", checkPath, body)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("4th check: status %d Retry-After %q, want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	if b := decode[dcrest.ErrorBody](t, w); len(b.Errors) != 1 {
		t.Errorf("429 body: %s", w.Body)
	}
	// Another address has its own bucket; the revoke bucket is separate.
	if w := e.post(t, nil, "198.51.100.2", checkPath, body); w.Code != http.StatusOK {
		t.Errorf("other address: status %d", w.Code)
	}
	for i := range 2 {
		if w := e.post(t, nil, "198.51.100.1", revokePath, body); w.Code != http.StatusAccepted {
			t.Fatalf("revoke %d: status %d", i, w.Code)
		}
	}
	w = e.post(t, nil, "198.51.100.1", revokePath, body)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("3rd revoke: status %d", w.Code)
	}
	if ra, _ := strconv.Atoi(w.Header().Get("Retry-After")); ra < 59 || ra > 60 {
		t.Errorf("revoke Retry-After %q, want about 60", w.Header().Get("Retry-After"))
	}
	// Time refills the bucket.
	now = now.Add(time.Second)
	if w := e.post(t, nil, "198.51.100.1", checkPath, body); w.Code != http.StatusOK {
		t.Errorf("check after a second: status %d", w.Code)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	live := e.createToken(t, e.alice, "deploy")
	other := e.createToken(t, e.alice, "other")
	expired := e.plantToken(t, e.alice.User, "100000000003", time.Now().Add(-time.Hour).UnixMilli())
	unknown, _ := token.Generate(token.Personal)
	source := "https://paste.example.com/abc\x1b[31m line 3"
	creds := []string{"not a token", unknown, live.Secret, live.Secret, expired}
	w := e.post(t, nil, "203.0.113.9", revokePath, jsonBody(t, map[string]any{"credentials": creds, "source": source}))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), live.ID) {
		t.Error("the answer reveals which credential was live")
	}
	// Revoked at once, through the backend's token hooks (caches drop it).
	if _, err := e.st.TokenByID(ctx, live.ID); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("the live token still exists: %v", err)
	}
	if got := e.hooks.got(); !slices.Contains(got, live.ID) {
		t.Errorf("token hooks told %v, want %s among them", got, live.ID)
	}
	if _, err := e.st.TokenByID(ctx, other.ID); err != nil {
		t.Errorf("an unreported token was touched: %v", err)
	}
	if _, err := e.st.TokenByID(ctx, "100000000003"); err != nil {
		t.Errorf("an expired token is not live and stays: %v", err)
	}
	// It now reads as revoked.
	w = e.post(t, nil, "203.0.113.9", checkPath, jsonBody(t, map[string]any{"credentials": []string{live.Secret}}))
	if r := decode[leaks.CheckResponse](t, w).Results; r[0].Status != "revoked" || r[0].ID != live.ID {
		t.Errorf("after revocation: %+v", r)
	}
	// Audited once, with the source.
	evs := e.audit.ofType(audit.CredentialLeaked)
	if len(evs) != 1 {
		t.Fatalf("%d %s events, want 1: %+v", len(evs), audit.CredentialLeaked, evs)
	}
	if ev := evs[0]; ev.Target != "token:"+live.ID || !strings.Contains(ev.Detail, "https://paste.example.com/abc") ||
		strings.Contains(ev.Detail, "\x1b") || strings.Contains(ev.Detail, live.Secret) {
		t.Errorf("audit event %+v", ev)
	}
	// The owner is told what, where, when and from where.
	msgs := e.mails(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	m := msgs[0]
	for _, want := range []string{live.ID, `"deploy"`, "https://paste.example.com/abc", "203.0.113.9", "UTC", baseURL} {
		if !strings.Contains(m.subject+m.body, want) {
			t.Errorf("mail lacks %q:\n%s\n%s", want, m.subject, m.body)
		}
	}
	if m.to != "alice@example.com" || strings.Contains(m.body, live.Secret) {
		t.Errorf("mail to %q, or it holds the secret:\n%s", m.to, m.body)
	}
	// Reporting it again changes nothing.
	e.post(t, nil, "203.0.113.9", revokePath, jsonBody(t, map[string]any{"credentials": []string{live.Secret}}))
	if n := len(e.audit.ofType(audit.CredentialLeaked)); n != 1 {
		t.Errorf("a second report audited again: %d events", n)
	}
	if n := len(e.mails(t)); n != 1 {
		t.Errorf("a second report mailed again: %d mails", n)
	}
}

func TestRevokeProjectToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.b.CreateProject(ctx, e.admin, backend.ProjectInput{Key: ptr("PRJ"), Name: ptr("Project")}); err != nil {
		t.Fatal(err)
	}
	name := "ci"
	v, err := e.b.CreateToken(ctx, e.admin, backend.TokenOwnerRef{ProjectKey: "PRJ"}, backend.TokenInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	w := e.post(t, nil, "203.0.113.10", revokePath, jsonBody(t, map[string]any{"credentials": []string{v.Secret}}))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status %d", w.Code)
	}
	if _, err := e.st.TokenByID(ctx, v.ID); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("project token still exists: %v", err)
	}
	if _, err := e.st.UserByID(ctx, v.Owner.ID); !errors.Is(err, latch.ErrNotFound) {
		t.Errorf("service user of the token still exists: %v", err)
	}
	msgs := e.mails(t)
	if len(msgs) != 1 || msgs[0].to != "admin@localhost" || !strings.Contains(msgs[0].body, "project PRJ") ||
		!strings.Contains(msgs[0].body, "not given") {
		t.Errorf("mail to the creator: %+v", msgs)
	}
}

func ptr[T any](v T) *T { return &v }
