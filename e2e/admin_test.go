package e2e

// Administrator control (issue 6) end to end: the settings document and its
// API, and the helpers the other admin_*_test.go files share. Each top-level
// test runs in parallel on its own server, since settings are per instance.
//
//	admin_test.go          settings API: defaults, PUT semantics, validation, persistence
//	admin_policy_test.go   expiry policy, password policy, network ranges, groups
//	admin_limits_test.go   brute-force limits, rotation, last use
//	admin_audit_test.go    the audit trail of one scripted day

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Helpers (prefixed adm: the package is shared with other test files)

const (
	admSettings = "/rest/latch/1.0/admin/settings"
	admAudit    = "/rest/latch/1.0/admin/audit"
	admTokAPI   = "/rest/access-tokens/1.0"
	// admProbe is a REST resource any authenticated principal may read: a
	// refused credential answers 401 there, an accepted one 200.
	admProbe = "/rest/api/1.0/projects"
)

func admRotatePath(id string) string   { return "/rest/latch/1.0/access-tokens/" + id + "/rotate" }
func admUserTokens(slug string) string { return admTokAPI + "/users/" + slug }

// admDefaultSettings is the document of issue 6 with its defaults, plus
// the scanning and sshKeys sections.
const admDefaultSettings = `{
  "tokens":   {"requireExpiry": false, "maxExpiryDays": 0, "maxPerUser": 100,
               "createGroups": [], "useGroups": [], "onBehalfGroups": []},
  "auth":     {"passwordForGit": true, "passwordForRest": true},
  "network":  {"allowedCidrs": [], "trustedProxies": [], "clientIpHeader": "X-Forwarded-For"},
  "scanning": {"pushProtection": "block"},
  "sshKeys":  {"requireExpiry": false, "maxExpiryDays": 0}
}`

// admTok is an access token as the REST API renders it, with latch's
// extra fields.
type admTok struct {
	ID                       string   `json:"id"`
	CreatedDate              int64    `json:"createdDate"`
	ExpiryDate               *int64   `json:"expiryDate"`
	LastAuthenticated        *int64   `json:"lastAuthenticated"`
	LastAuthenticatedAddress *string  `json:"lastAuthenticatedAddress"`
	Name                     string   `json:"name"`
	Permissions              []string `json:"permissions"`
	AllowedCIDRs             []string `json:"allowedCidrs"`
	User                     restUser `json:"user"`
	Token                    string   `json:"token"`
}

// admEvent is an audit event as GET /rest/latch/1.0/admin/audit renders it.
type admEvent struct {
	ID        int64  `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
	Actor     *struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"actor"`
	CredentialKind string `json:"credentialKind"`
	CredentialID   string `json:"credentialId"`
	Target         string `json:"target"`
	Address        string `json:"address"`
	UserAgent      string `json:"userAgent"`
	Outcome        string `json:"outcome"`
	Detail         string `json:"detail"`
}

func (e admEvent) actorName() string {
	if e.Actor == nil {
		return ""
	}
	return e.Actor.Name
}

// admJSON parses a JSON text into a generic value.
func admJSON(t testing.TB, what string, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, truncate(b, 400))
	}
	return v
}

// admSameJSON fails unless got and want hold the same JSON value.
func admSameJSON(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	g, w := admJSON(t, what, got), admJSON(t, what+" (want)", []byte(want))
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, admCompact(got), admCompact([]byte(want)))
	}
}

func admCompact(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	c, _ := json.Marshal(v)
	return string(c)
}

// admPut PUTs a settings document as the admin and requires 200.
func (s *Server) admPut(t testing.TB, doc string) []byte {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodPut, admSettings, doc)
	mustStatus(t, "PUT settings "+doc, st, b, http.StatusOK)
	return b
}

// admGetSettings GETs the settings document as the admin.
func (s *Server) admGetSettings(t testing.TB) []byte {
	t.Helper()
	st, b := s.asAdmin(t, http.MethodGet, admSettings, nil)
	mustStatus(t, "GET settings", st, b, http.StatusOK)
	return b
}

// admCreateToken PUTs body to the token collection coll as user:pass,
// requires 200 and returns the token, registering its secret so that the
// server log is checked for it.
func (s *Server) admCreateToken(t testing.TB, coll, user, pass string, body any) admTok {
	t.Helper()
	st, b, _ := s.do(t, http.MethodPut, coll, user, pass, body)
	mustStatus(t, "PUT "+coll, st, b, http.StatusOK)
	tok := decodeJSON[admTok](t, b)
	if tok.Token == "" {
		t.Fatalf("PUT %s: no secret in the creation response: %s", coll, truncate(b, 300))
	}
	s.addSecret(tok.Token)
	return tok
}

// admTokens lists a token collection as user:pass.
func (s *Server) admTokens(t testing.TB, coll, user, pass string) []admTok {
	t.Helper()
	return getJSON[page[admTok]](t, s, coll+"?limit=1000", user, pass).Values
}

func admFind(ts []admTok, id string) (admTok, bool) {
	for _, tk := range ts {
		if tk.ID == id {
			return tk, true
		}
	}
	return admTok{}, false
}

// admHdr builds request headers: "Authorization" from auth (a full header
// value, or "" for none) and any extra name/value pairs.
func admHdr(auth string, kv ...string) http.Header {
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func admBearer(tok string) string { return "Bearer " + tok }

// admProbeStatus GETs admProbe with hdr and returns the status and body.
func (s *Server) admProbeStatus(t testing.TB, hdr http.Header) (int, []byte) {
	t.Helper()
	st, b, _ := s.request(t, http.MethodGet, admProbe, hdr, nil)
	return st, b
}

// admExpect checks that a request with hdr to admProbe answers want.
func (s *Server) admExpect(t testing.TB, what string, hdr http.Header, want int) {
	t.Helper()
	st, b := s.admProbeStatus(t, hdr)
	if st != want {
		t.Errorf("%s: GET %s answered %d, want %d; body %s", what, admProbe, st, want, truncate(b, 300))
	}
}

// admClone runs git clone of url (with opts before the subcommand) into a
// new directory and returns its output and error.
func admClone(t testing.TB, g *gitClient, url string, opts ...string) (string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clone")
	return g.run("", append(opts, "clone", "-q", url, dir)...)
}

// admMessages returns the messages of a Data Center error envelope.
func admMessages(t testing.TB, what string, b []byte) string {
	t.Helper()
	errs := checkError(t, what, b, "")
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, " | ")
}

// ---------------------------------------------------------------------------
// Settings API

func TestAdminSettingsAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	ada := s.createUser(t, "ada")   // ADMIN, not SYS_ADMIN
	carl := s.createUser(t, "carl") // no global permission
	s.grant(t, "", ada.Name, "ADMIN")

	t.Run("default document", func(t *testing.T) {
		admSameJSON(t, "GET settings on a new instance", s.admGetSettings(t), admDefaultSettings)
		// /latest too, as every latch API.
		st, b := s.asAdmin(t, http.MethodGet, "/rest/latch/latest/admin/settings", nil)
		mustStatus(t, "GET /latest settings", st, b, http.StatusOK)
		admSameJSON(t, "GET /latest settings", b, admDefaultSettings)
	})

	t.Run("only system administrators", func(t *testing.T) {
		for _, c := range []struct{ who, user, pass string }{
			{"ADMIN", ada.Name, ada.Password}, {"plain user", carl.Name, carl.Password}, {"anonymous", "", ""},
		} {
			for _, m := range []string{http.MethodGet, http.MethodPut} {
				var body any
				if m == http.MethodPut {
					body = `{"auth":{"passwordForRest":false}}`
				}
				st, b, _ := s.do(t, m, admSettings, c.user, c.pass, body)
				if st != http.StatusUnauthorized {
					t.Errorf("%s settings as %s: %d, want 401; body %s", m, c.who, st, truncate(b, 300))
					continue
				}
				checkError(t, m+" settings as "+c.who, b, "")
				if strings.Contains(string(b), "passwordForRest") || strings.Contains(string(b), "clientIpHeader") {
					t.Errorf("%s settings as %s: the refusal leaks the document: %s", m, c.who, truncate(b, 300))
				}
			}
		}
		admSameJSON(t, "GET settings after refused PUTs", s.admGetSettings(t), admDefaultSettings)
		// A system administrator's token cannot change settings either:
		// tokens do not act on credentials and policy.
		tok := s.admCreateToken(t, admUserTokens(adminName), adminName, s.AdminPassword,
			map[string]any{"name": "admin-ci", "permissions": []string{"REPO_ADMIN", "PROJECT_ADMIN"}})
		st, b, _ := s.request(t, http.MethodPut, admSettings, admHdr(admBearer(tok.Token)), `{"auth":{"passwordForRest":false}}`)
		if st == http.StatusOK {
			t.Errorf("PUT settings with the admin's REPO_ADMIN token succeeded: %s", truncate(b, 300))
		}
		admSameJSON(t, "GET settings after a PUT with a token", s.admGetSettings(t), admDefaultSettings)
	})

	t.Run("PUT replaces named sections and keeps the others", func(t *testing.T) {
		s.createGroup(t, "devs")
		got := s.admPut(t, `{"tokens":{"requireExpiry":true,"maxExpiryDays":90,"maxPerUser":20,"createGroups":["devs"]},
			"network":{"allowedCidrs":["203.0.113.9/24","127.0.0.1"],"trustedProxies":["10.0.0.1/32"],"clientIpHeader":"X-Real-IP"}}`)
		want := `{
		  "tokens":   {"requireExpiry": true, "maxExpiryDays": 90, "maxPerUser": 20, "createGroups": ["devs"], "useGroups": [], "onBehalfGroups": []},
		  "auth":     {"passwordForGit": true, "passwordForRest": true},
		  "network":  {"allowedCidrs": ["203.0.113.0/24","127.0.0.1/32"], "trustedProxies": ["10.0.0.1/32"], "clientIpHeader": "X-Real-IP"},
		  "scanning": {"pushProtection": "block"},
		  "sshKeys":  {"requireExpiry": false, "maxExpiryDays": 0}}`
		admSameJSON(t, "PUT answer", got, want)
		admSameJSON(t, "GET after PUT", s.admGetSettings(t), want)

		// Naming only auth keeps tokens and network.
		want2 := strings.Replace(want, `"passwordForGit": true`, `"passwordForGit": false`, 1)
		admSameJSON(t, "PUT {auth}", s.admPut(t, `{"auth":{"passwordForGit":false}}`), want2)
		// A named section is replaced whole: what it omits takes the default.
		want3 := strings.Replace(want2, `{"requireExpiry": true, "maxExpiryDays": 90, "maxPerUser": 20, "createGroups": ["devs"], "useGroups": [], "onBehalfGroups": []}`,
			`{"requireExpiry": false, "maxExpiryDays": 0, "maxPerUser": 20, "createGroups": [], "useGroups": [], "onBehalfGroups": []}`, 1)
		admSameJSON(t, "PUT {tokens:{maxPerUser:20}}", s.admPut(t, `{"tokens":{"maxPerUser":20}}`), want3)
		// {} changes nothing.
		admSameJSON(t, "PUT {}", s.admPut(t, `{}`), want3)
		admSameJSON(t, "GET", s.admGetSettings(t), want3)
		// Back to the defaults, section by section.
		admSameJSON(t, "PUT every section empty", s.admPut(t, `{"tokens":{},"auth":{},"network":{},"scanning":{},"sshKeys":{}}`), admDefaultSettings)
	})

	t.Run("bad documents answer 400 naming the field and change nothing", func(t *testing.T) {
		before := s.admPut(t, `{"tokens":{"maxExpiryDays":30},"network":{"allowedCidrs":["127.0.0.0/8"]}}`)
		cases := []struct{ name, doc, field string }{
			{"negative maxExpiryDays", `{"tokens":{"maxExpiryDays":-1}}`, "maxExpiryDays"},
			{"maxExpiryDays over 3650", `{"tokens":{"maxExpiryDays":3651}}`, "maxExpiryDays"},
			{"maxPerUser 0", `{"tokens":{"maxPerUser":0}}`, "maxPerUser"},
			{"bad CIDR", `{"network":{"allowedCidrs":["10.0.0.0/33"]}}`, "allowedCidrs"},
			{"bad proxy", `{"network":{"trustedProxies":["proxy.example.com"]}}`, "trustedProxies"},
			{"unknown group", `{"tokens":{"useGroups":["no-such-group"]}}`, "useGroups"},
			{"unknown key", `{"auth":{"passwordForSsh":false}}`, "passwordForSsh"},
			{"unknown section", `{"ldap":{}}`, "ldap"},
			{"wrong type", `{"auth":{"passwordForRest":"no"}}`, "passwordForRest"},
			{"null section", `{"tokens":null}`, "tokens"},
			{"bad header name", `{"network":{"clientIpHeader":"X Forwarded"}}`, "clientIpHeader"},
			{"bad pushProtection", `{"scanning":{"pushProtection":"sometimes"}}`, "pushProtection"},
			{"good section beside a bad one", `{"auth":{"passwordForRest":false},"tokens":{"maxPerUser":-1}}`, "maxPerUser"},
			{"not an object", `["tokens"]`, ""},
			{"not JSON", `tokens=1`, ""},
			{"empty body", ``, ""},
		}
		for _, c := range cases {
			st, b := s.asAdmin(t, http.MethodPut, admSettings, c.doc)
			if st != http.StatusBadRequest {
				t.Errorf("%s: PUT %s answered %d, want 400; body %s", c.name, c.doc, st, truncate(b, 300))
				continue
			}
			errs := checkError(t, c.name, b, "com.atlassian.bitbucket.validation.ArgumentValidationException")
			if c.field != "" && len(errs) > 0 && !strings.Contains(errs[0].Message, c.field) {
				t.Errorf("%s: message %q does not name the field %s", c.name, errs[0].Message, c.field)
			}
		}
		big := `{"network":{"allowedCidrs":["` + strings.Repeat("1", 2<<20) + `"]}}`
		if st, b := s.asAdmin(t, http.MethodPut, admSettings, big); st != http.StatusRequestEntityTooLarge && st != http.StatusBadRequest {
			t.Errorf("PUT of a 2 MB document: %d, want 413 (or 400); %s", st, truncate(b, 200))
		}
		admSameJSON(t, "GET after refused PUTs", s.admGetSettings(t), string(before))
		// Password REST access still works: the refused {auth} section
		// was not applied.
		st, b, _ := s.do(t, http.MethodGet, admProbe, carl.Name, carl.Password, nil)
		mustStatus(t, "REST with a password after a refused PUT {auth:{passwordForRest:false}}", st, b, http.StatusOK)
	})

	t.Run("settings live in the database", func(t *testing.T) {
		doc := s.admPut(t, `{"tokens":{"maxExpiryDays":45,"onBehalfGroups":["devs"]},"auth":{"passwordForGit":false},
			"network":{"allowedCidrs":["127.0.0.0/8","203.0.113.0/24"]},"scanning":{"pushProtection":"warn"}}`)
		s2 := s.restart(t, WithoutSSH())
		st, b := s2.asAdmin(t, http.MethodGet, admSettings, nil)
		mustStatus(t, "GET settings after restart", st, b, http.StatusOK)
		admSameJSON(t, "settings after restart", b, string(doc))
		// And they are in force after the restart, not only shown.
		g := newGit(t)
		repo := "SET"
		s2.createProject(t, repo, "Settings")
		s2.createRepo(t, repo, "r")
		s2.grant(t, repo, carl.Name, "PROJECT_READ")
		out, err := admClone(t, g, s2.gitURLAs(repo, "r", carl.Name, carl.Password))
		if err == nil {
			t.Errorf("after a restart, passwordForGit false is not in force: clone with a password succeeded\n%s", out)
		}
		s = s2
	})
}

// TestAdminSettingsTakeEffectAtOnce checks that a PUT applies to the very
// next request, with no restart and no cache to wait for.
func TestAdminSettingsTakeEffectAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, WithoutSSH())
	u := s.createUser(t, "quick")
	tok := s.admCreateToken(t, admUserTokens(u.Name), u.Name, u.Password, map[string]any{"name": "q", "permissions": []string{"REPO_READ"}})
	hdr := admHdr(admBearer(tok.Token))
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 3 && time.Now().Before(deadline); i++ {
		s.admExpect(t, "token before the range is set", hdr, http.StatusOK)
		s.admPut(t, `{"network":{"allowedCidrs":["203.0.113.0/24"]}}`)
		s.admExpect(t, "token right after allowedCidrs excludes 127.0.0.1", hdr, http.StatusUnauthorized)
		s.admPut(t, `{"network":{}}`)
	}
}
