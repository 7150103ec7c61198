package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch"
)

// memStore is an in-memory Store that counts writes, so that tests can prove
// that a refused document never reached it.
type memStore struct {
	mu     sync.Mutex
	vals   map[string]string
	puts   int
	putErr error
	// delay slows PutSetting down, widening the window in which
	// concurrent updates overlap.
	delay time.Duration
}

func newMemStore() *memStore { return &memStore{vals: map[string]string{}} }

func (m *memStore) Setting(_ context.Context, key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	return v, ok, nil
}

func (m *memStore) PutSetting(_ context.Context, key, value string) error {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.putErr != nil {
		return m.putErr
	}
	m.puts++
	m.vals[key] = value
	return nil
}

func (m *memStore) snapshot() (map[string]string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[string]string, len(m.vals))
	for k, v := range m.vals {
		c[k] = v
	}
	return c, m.puts
}

// knownGroups is a GroupChecker that knows the given groups.
func knownGroups(names ...string) GroupChecker {
	return func(_ context.Context, name string) (bool, error) {
		for _, n := range names {
			if n == name {
				return true, nil
			}
		}
		return false, nil
	}
}

// counter counts OnChange calls.
type counter struct{ n atomic.Int64 }

func (c *counter) get() int { return int(c.n.Load()) }
func (c *counter) reset()   { c.n.Store(0) }

func newService(t *testing.T) (*Service, *memStore, *counter) {
	t.Helper()
	st := newMemStore()
	return newServiceOn(t, st), st, nil
}

func newServiceOn(t *testing.T, st *memStore) *Service {
	t.Helper()
	s := NewService(st, knownGroups("devs", "ops", "admins"))
	if err := s.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func newCountedService(t *testing.T) (*Service, *memStore, *counter) {
	t.Helper()
	s, st, _ := newService(t)
	c := &counter{}
	s.OnChange(func() { c.n.Add(1) })
	return s, st, c
}

func mustUpdate(t *testing.T, s *Service, doc string) *Settings {
	t.Helper()
	_, after, err := s.Update(context.Background(), []byte(doc))
	if err != nil {
		t.Fatalf("Update(%s): %v", doc, err)
	}
	return after
}

// asJSON renders v as a generic JSON value, so that documents compare by
// content, not by Go representation (nil vs empty slices render alike only
// when the code keeps them as [] — which is what the API promises).
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseJSON(t *testing.T, s string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return out
}

// defaultDoc is the document of issue 6 plus the scanning and sshKeys
// sections.
const defaultDoc = `{
  "tokens":   {"requireExpiry": false, "maxExpiryDays": 0, "maxPerUser": 100,
               "createGroups": [], "useGroups": [], "onBehalfGroups": []},
  "auth":     {"passwordForGit": true, "passwordForRest": true},
  "network":  {"allowedCidrs": [], "trustedProxies": [], "clientIpHeader": "X-Forwarded-For"},
  "scanning": {"pushProtection": "block"},
  "sshKeys":  {"requireExpiry": false, "maxExpiryDays": 0}
}`

func TestDefault(t *testing.T) {
	want := parseJSON(t, defaultDoc)
	if got := asJSON(t, Default()); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() renders as\n%v\nwant\n%v", got, want)
	}
	// A new service, before and after loading an empty store.
	st := newMemStore()
	s := NewService(st, nil)
	if got := asJSON(t, s.Current()); !reflect.DeepEqual(got, want) {
		t.Errorf("NewService().Current() renders as %v, want the defaults", got)
	}
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := asJSON(t, s.Current()); !reflect.DeepEqual(got, want) {
		t.Errorf("Current() after Load of an empty store renders as %v, want the defaults", got)
	}
	if _, puts := st.snapshot(); puts != 0 {
		t.Errorf("Load wrote to the store %d times; loading must not write", puts)
	}
	// Defaults let everything through.
	cur := s.Current()
	if !cur.Network.Allowed(netip.MustParseAddr("198.51.100.1")) || !cur.Network.Allowed(netip.MustParseAddr("2001:db8::1")) {
		t.Error("default network policy refuses an address; with no allowedCidrs every address is allowed")
	}
	peer := netip.MustParseAddr("127.0.0.1")
	if got := cur.Network.ClientAddr(peer, http.Header{"X-Forwarded-For": {"203.0.113.7"}}.Values); got != peer {
		t.Errorf("default ClientAddr with a forged X-Forwarded-For = %v, want the peer %v (no proxy is trusted by default)", got, peer)
	}
	// Default returns a fresh document each time.
	d := Default()
	d.Tokens.CreateGroups = append(d.Tokens.CreateGroups, "x")
	d.Network.ClientIPHeader = "X-Other"
	if got := asJSON(t, Default()); !reflect.DeepEqual(got, want) {
		t.Error("modifying one Default() result changed another")
	}
}

func TestLoadKeepsDefaultsForMissing(t *testing.T) {
	st := newMemStore()
	st.vals[storeKey] = `{"tokens":{"maxExpiryDays":30,"maxPerUser":100},"auth":{"passwordForGit":false,"passwordForRest":true}}`
	s := NewService(st, nil)
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := s.Current()
	if c.Tokens.MaxExpiryDays != 30 || c.Auth.PasswordForGit {
		t.Errorf("stored values not loaded: %+v %+v", c.Tokens, c.Auth)
	}
	if c.Network.ClientIPHeader != "X-Forwarded-For" || c.Scanning.PushProtection != PushBlock {
		t.Errorf("sections missing from the store must keep their defaults: %+v %+v", c.Network, c.Scanning)
	}
	// A corrupted stored document is an error, not silently the defaults.
	st.vals[storeKey] = `{"tokens":`
	if err := s.Load(context.Background()); err == nil {
		t.Error("Load of a corrupted stored document succeeded")
	}
	if s.Current() != c {
		t.Error("a failed Load replaced the settings in force")
	}
}

func TestUpdateReplacesNamedSectionsOnly(t *testing.T) {
	s, st, changes := newCountedService(t)
	ctx := context.Background()

	after := mustUpdate(t, s, `{
	  "tokens": {"requireExpiry": true, "maxExpiryDays": 90, "maxPerUser": 5, "createGroups": ["devs"], "useGroups": ["ops"], "onBehalfGroups": ["admins"]},
	  "network": {"allowedCidrs": ["203.0.113.0/24", "2001:db8::/32"], "trustedProxies": ["10.0.0.1"], "clientIpHeader": "X-Real-IP"}
	}`)
	if changes.get() != 1 {
		t.Errorf("OnChange called %d times after one update, want 1", changes.get())
	}
	if s.Current() != after {
		t.Error("Update's returned document is not Current()")
	}
	want1 := parseJSON(t, `{
	  "tokens": {"requireExpiry": true, "maxExpiryDays": 90, "maxPerUser": 5, "createGroups": ["devs"], "useGroups": ["ops"], "onBehalfGroups": ["admins"]},
	  "auth": {"passwordForGit": true, "passwordForRest": true},
	  "network": {"allowedCidrs": ["203.0.113.0/24", "2001:db8::/32"], "trustedProxies": ["10.0.0.1/32"], "clientIpHeader": "X-Real-IP"},
	  "scanning": {"pushProtection": "block"},
	  "sshKeys": {"requireExpiry": false, "maxExpiryDays": 0}
	}`)
	if got := asJSON(t, after); !reflect.DeepEqual(got, want1) {
		t.Errorf("after the first PUT:\n got %v\nwant %v", got, want1)
	}

	// Naming only auth leaves tokens and network as they are.
	before := s.Current()
	b2, after2, err := s.Update(ctx, []byte(`{"auth":{"passwordForGit":false}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b2 != before {
		t.Error("Update's 'before' is not the document that was in force")
	}
	want2 := parseJSON(t, `{
	  "tokens": {"requireExpiry": true, "maxExpiryDays": 90, "maxPerUser": 5, "createGroups": ["devs"], "useGroups": ["ops"], "onBehalfGroups": ["admins"]},
	  "auth": {"passwordForGit": false, "passwordForRest": true},
	  "network": {"allowedCidrs": ["203.0.113.0/24", "2001:db8::/32"], "trustedProxies": ["10.0.0.1/32"], "clientIpHeader": "X-Real-IP"},
	  "scanning": {"pushProtection": "block"},
	  "sshKeys": {"requireExpiry": false, "maxExpiryDays": 0}
	}`)
	if got := asJSON(t, after2); !reflect.DeepEqual(got, want2) {
		t.Errorf("after PUT {auth}:\n got %v\nwant %v", got, want2)
	}
	// The earlier document is untouched (readers may still hold it).
	if got := asJSON(t, before); !reflect.DeepEqual(got, want1) {
		t.Errorf("Update modified the previous document in place: %v", got)
	}
	// The parsed ranges follow the untouched section.
	if !after2.Network.Allowed(netip.MustParseAddr("203.0.113.9")) || after2.Network.Allowed(netip.MustParseAddr("198.51.100.1")) {
		t.Error("network ranges of a section the PUT did not name no longer apply")
	}

	// A named section is replaced whole: omitted fields take their defaults.
	after3 := mustUpdate(t, s, `{"tokens":{"maxPerUser":7}}`)
	want3 := parseJSON(t, `{
	  "tokens": {"requireExpiry": false, "maxExpiryDays": 0, "maxPerUser": 7, "createGroups": [], "useGroups": [], "onBehalfGroups": []},
	  "auth": {"passwordForGit": false, "passwordForRest": true},
	  "network": {"allowedCidrs": ["203.0.113.0/24", "2001:db8::/32"], "trustedProxies": ["10.0.0.1/32"], "clientIpHeader": "X-Real-IP"},
	  "scanning": {"pushProtection": "block"},
	  "sshKeys": {"requireExpiry": false, "maxExpiryDays": 0}
	}`)
	if got := asJSON(t, after3); !reflect.DeepEqual(got, want3) {
		t.Errorf("after PUT {tokens:{maxPerUser:7}}:\n got %v\nwant %v", got, want3)
	}
	after4 := mustUpdate(t, s, `{"network":{}, "scanning":{"pushProtection":"warn"}, "sshKeys":{"requireExpiry":true,"maxExpiryDays":365}}`)
	if after4.SSHKeys != (SSHKeyPolicy{RequireExpiry: true, MaxExpiryDays: 365}) || after4.Tokens.MaxPerUser != 7 {
		t.Errorf("after PUT {sshKeys}: sshKeys %+v, tokens %+v", after4.SSHKeys, after4.Tokens)
	}
	if got := asJSON(t, after4.Network); !reflect.DeepEqual(got, parseJSON(t, `{"allowedCidrs":[],"trustedProxies":[],"clientIpHeader":"X-Forwarded-For"}`)) {
		t.Errorf("PUT {network:{}} must reset the network section to its defaults, got %v", got)
	}
	if !after4.Network.Allowed(netip.MustParseAddr("198.51.100.1")) {
		t.Error("after network ranges were cleared an address is still refused")
	}
	if after4.Scanning.PushProtection != PushWarn {
		t.Errorf("pushProtection = %q, want warn", after4.Scanning.PushProtection)
	}
	// The empty document changes nothing (but is a valid PUT).
	after5 := mustUpdate(t, s, `{}`)
	if !reflect.DeepEqual(asJSON(t, after5), asJSON(t, after4)) {
		t.Errorf("PUT {} changed the settings: %v", asJSON(t, after5))
	}

	// What is stored is what is in force, and a new node loading the store
	// sees the same document.
	vals, _ := st.snapshot()
	if got := parseJSON(t, vals[storeKey]); !reflect.DeepEqual(got, asJSON(t, s.Current())) {
		t.Errorf("stored document %s differs from Current()", vals[storeKey])
	}
	other := NewService(st, nil)
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(asJSON(t, other.Current()), asJSON(t, s.Current())) {
		t.Errorf("another node loads %v, want %v", asJSON(t, other.Current()), asJSON(t, s.Current()))
	}
	mustUpdate(t, s, `{"network":{"allowedCidrs":["203.0.113.0/24"]}}`)
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if other.Current().Network.Allowed(netip.MustParseAddr("198.51.100.1")) {
		t.Error("ranges loaded from the store by another node are not in force there")
	}
}

func TestUpdateNormalizesRanges(t *testing.T) {
	s, _, _ := newService(t)
	after := mustUpdate(t, s, `{"network":{"allowedCidrs":[" 203.0.113.77/24 ", "198.51.100.1", "2001:DB8::1/32", "::1"],"trustedProxies":["127.0.0.1/8"]}}`)
	want := []string{"203.0.113.0/24", "198.51.100.1/32", "2001:db8::/32", "::1/128"}
	if !reflect.DeepEqual(after.Network.AllowedCIDRs, want) {
		t.Errorf("allowedCidrs = %q, want %q (masked, single addresses as /32 or /128)", after.Network.AllowedCIDRs, want)
	}
	if !reflect.DeepEqual(after.Network.TrustedProxies, []string{"127.0.0.0/8"}) {
		t.Errorf("trustedProxies = %q, want [127.0.0.0/8]", after.Network.TrustedProxies)
	}
	for addr, want := range map[string]bool{
		"203.0.113.1": true, "203.0.114.1": false, "198.51.100.1": true, "198.51.100.2": false,
		"2001:db8:ffff::9": true, "2001:db9::1": false, "::1": true, "::ffff:203.0.113.5": true, "127.0.0.1": false,
	} {
		if got := after.Network.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

// badDocs are documents Update must refuse with ErrInvalid and a message
// naming field.
func badDocs() []struct{ name, doc, field string } {
	manyCIDRs := make([]string, 101)
	for i := range manyCIDRs {
		manyCIDRs[i] = fmt.Sprintf(`"10.0.%d.0/24"`, i)
	}
	manyGroups := make([]string, 101)
	for i := range manyGroups {
		manyGroups[i] = `"devs"`
	}
	return []struct{ name, doc, field string }{
		{"negative maxExpiryDays", `{"tokens":{"maxExpiryDays":-1}}`, "tokens.maxExpiryDays"},
		{"maxExpiryDays over 3650", `{"tokens":{"maxExpiryDays":3651}}`, "tokens.maxExpiryDays"},
		{"fractional maxExpiryDays", `{"tokens":{"maxExpiryDays":1.5}}`, "tokens.maxExpiryDays"},
		{"maxPerUser 0", `{"tokens":{"maxPerUser":0}}`, "tokens.maxPerUser"},
		{"negative maxPerUser", `{"tokens":{"maxPerUser":-3}}`, "tokens.maxPerUser"},
		{"maxPerUser over limit", `{"tokens":{"maxPerUser":10001}}`, "tokens.maxPerUser"},
		{"requireExpiry a string", `{"tokens":{"requireExpiry":"yes"}}`, "tokens.requireExpiry"},
		{"createGroups a string", `{"tokens":{"createGroups":"devs"}}`, "tokens.createGroups"},
		{"unknown createGroups group", `{"tokens":{"createGroups":["nope"]}}`, "tokens.createGroups"},
		{"unknown useGroups group", `{"tokens":{"useGroups":["devs","ghosts"]}}`, "tokens.useGroups"},
		{"unknown onBehalfGroups group", `{"tokens":{"onBehalfGroups":["ghosts"]}}`, "tokens.onBehalfGroups"},
		{"empty group name", `{"tokens":{"onBehalfGroups":[""]}}`, "tokens.onBehalfGroups"},
		{"too many groups", `{"tokens":{"createGroups":[` + strings.Join(manyGroups, ",") + `]}}`, "tokens.createGroups"},
		{"unknown key in tokens", `{"tokens":{"maxExpiry":30}}`, "tokens.maxExpiry"},
		{"passwordForGit a number", `{"auth":{"passwordForGit":1}}`, "auth.passwordForGit"},
		{"unknown key in auth", `{"auth":{"passwordForSsh":false}}`, "auth.passwordForSsh"},
		{"CIDR prefix too long", `{"network":{"allowedCidrs":["10.0.0.0/33"]}}`, "network.allowedCidrs"},
		{"CIDR garbage", `{"network":{"allowedCidrs":["203.0.113.0/24","not-a-range"]}}`, "network.allowedCidrs"},
		{"CIDR empty string", `{"network":{"allowedCidrs":[""]}}`, "network.allowedCidrs"},
		{"CIDR a number", `{"network":{"allowedCidrs":[10]}}`, "network.allowedCidrs"},
		{"allowedCidrs a string", `{"network":{"allowedCidrs":"10.0.0.0/8"}}`, "network.allowedCidrs"},
		{"too many CIDRs", `{"network":{"allowedCidrs":[` + strings.Join(manyCIDRs, ",") + `]}}`, "network.allowedCidrs"},
		{"bad trusted proxy", `{"network":{"trustedProxies":["300.1.1.1"]}}`, "network.trustedProxies"},
		{"header name with a space", `{"network":{"clientIpHeader":"X Forwarded For"}}`, "network.clientIpHeader"},
		{"header name with a colon", `{"network":{"clientIpHeader":"X-Forwarded-For:"}}`, "network.clientIpHeader"},
		{"empty header name", `{"network":{"clientIpHeader":""}}`, "network.clientIpHeader"},
		{"header name with CRLF", `{"network":{"clientIpHeader":"X-A\r\nX-B"}}`, "network.clientIpHeader"},
		{"negative SSH key maxExpiryDays", `{"sshKeys":{"maxExpiryDays":-1}}`, "sshKeys.maxExpiryDays"},
		{"SSH key maxExpiryDays over 3650", `{"sshKeys":{"maxExpiryDays":3651}}`, "sshKeys.maxExpiryDays"},
		{"unknown key in sshKeys", `{"sshKeys":{"maxPerUser":5}}`, "sshKeys.maxPerUser"},
		{"bad pushProtection", `{"scanning":{"pushProtection":"maybe"}}`, "scanning.pushProtection"},
		{"pushProtection wrong case", `{"scanning":{"pushProtection":"BLOCK"}}`, "scanning.pushProtection"},
		{"unknown section", `{"tokenz":{}}`, "tokenz"},
		{"null section", `{"network":null}`, "network"},
		{"array section", `{"tokens":[]}`, "tokens"},
		{"string section", `{"auth":"off"}`, "auth"},
		{"valid section beside a bad one", `{"auth":{"passwordForGit":false,"passwordForRest":false},"tokens":{"maxPerUser":0}}`, "tokens.maxPerUser"},
		{"trailing garbage in a section", `{"tokens":{"maxPerUser":5} }x`, ""},
		{"non-object: array", `[]`, ""},
		{"non-object: string", `"tokens"`, ""},
		{"non-object: null", `null`, ""},
		{"non-object: number", `42`, ""},
		{"empty body", ``, ""},
		{"truncated JSON", `{"tokens":{"maxPerUser":5}`, ""},
	}
}

func TestUpdateRefusesBadDocuments(t *testing.T) {
	s, st, changes := newCountedService(t)
	// Start from non-default settings, so that "unchanged" means something.
	mustUpdate(t, s, `{"tokens":{"maxExpiryDays":30,"createGroups":["devs"]},"network":{"allowedCidrs":["203.0.113.0/24"],"trustedProxies":["127.0.0.1"]}}`)
	base := s.Current()
	baseJSON := asJSON(t, base)
	stored, puts := st.snapshot()
	changes.reset()

	cases := badDocs()
	if len(cases) < 15 {
		t.Fatalf("only %d bad documents", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, after, err := s.Update(context.Background(), []byte(c.doc))
			if err == nil {
				t.Fatalf("Update(%.120s) succeeded, want ErrInvalid naming %q; settings now %v", c.doc, c.field, asJSON(t, after))
			}
			if before != nil || after != nil {
				t.Errorf("a refused Update returned documents (%v, %v)", before, after)
			}
			if !errors.Is(err, latch.ErrInvalid) {
				t.Errorf("error %q is not latch.ErrInvalid", err)
			}
			var le *latch.Error
			if !errors.As(err, &le) {
				t.Errorf("error %T is not a *latch.Error (the REST layer needs its message)", err)
			} else if le.Message == "" {
				t.Error("empty message")
			}
			if c.field != "" && !strings.Contains(err.Error(), c.field) {
				t.Errorf("message %q does not name the field %q", err, c.field)
			}
			if c.field == "" && !strings.Contains(strings.ToLower(err.Error()), "object") {
				t.Errorf("message %q does not say the settings must be a JSON object", err)
			}
			if s.Current() != base || !reflect.DeepEqual(asJSON(t, s.Current()), baseJSON) {
				t.Errorf("a refused document changed the settings in force: %v", asJSON(t, s.Current()))
			}
			if got, n := st.snapshot(); n != puts || !reflect.DeepEqual(got, stored) {
				t.Errorf("a refused document reached the store (%d writes, was %d): %v", n, puts, got)
			}
			if changes.get() != 0 {
				t.Errorf("OnChange called %d times for a refused document", changes.get())
			}
		})
	}
	// The service still works after all those refusals.
	after := mustUpdate(t, s, `{"tokens":{"maxPerUser":3}}`)
	if after.Tokens.MaxPerUser != 3 {
		t.Errorf("maxPerUser = %d after a valid PUT", after.Tokens.MaxPerUser)
	}
}

func TestUpdateLimitsAccepted(t *testing.T) {
	s, _, _ := newService(t)
	after := mustUpdate(t, s, `{"tokens":{"maxExpiryDays":3650,"maxPerUser":10000,"requireExpiry":true}}`)
	if after.Tokens.MaxExpiryDays != 3650 || after.Tokens.MaxPerUser != 10000 {
		t.Errorf("the documented limits themselves are refused or altered: %+v", after.Tokens)
	}
	after = mustUpdate(t, s, `{"tokens":{"maxExpiryDays":0,"maxPerUser":1}}`)
	if after.Tokens.MaxExpiryDays != 0 || after.Tokens.MaxPerUser != 1 {
		t.Errorf("the lower limits are refused or altered: %+v", after.Tokens)
	}
	// null lists mean empty lists, rendered as [].
	after = mustUpdate(t, s, `{"tokens":{"createGroups":null},"network":{"allowedCidrs":null}}`)
	if got := asJSON(t, after); !reflect.DeepEqual(got.(map[string]any)["tokens"].(map[string]any)["createGroups"], []any{}) ||
		!reflect.DeepEqual(got.(map[string]any)["network"].(map[string]any)["allowedCidrs"], []any{}) {
		t.Errorf("null lists must render as [], got %v", got)
	}
	// Header names are accepted in any case and as given.
	after = mustUpdate(t, s, `{"network":{"clientIpHeader":"x-real-ip","trustedProxies":["10.0.0.1"]}}`)
	if got := after.Network.ClientAddr(netip.MustParseAddr("10.0.0.1"), http.Header{"X-Real-Ip": {"203.0.113.4"}}.Values); got != netip.MustParseAddr("203.0.113.4") {
		t.Errorf("clientIpHeader x-real-ip: ClientAddr = %v, want 203.0.113.4", got)
	}
}

func TestUpdateGroupCheckerAndStoreErrors(t *testing.T) {
	boom := errors.New("database down")
	st := newMemStore()
	s := NewService(st, func(context.Context, string) (bool, error) { return false, boom })
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := s.Current()
	_, _, err := s.Update(context.Background(), []byte(`{"tokens":{"useGroups":["devs"]}}`))
	if !errors.Is(err, boom) {
		t.Errorf("a failing group check answered %v, want the store's error", err)
	}
	if errors.Is(err, latch.ErrInvalid) {
		t.Error("a failing group check reads as invalid input (a 400 for a server fault)")
	}
	if s.Current() != base {
		t.Error("a failed group check changed the settings")
	}
	// Without groups named, the checker is not consulted.
	if _, _, err := s.Update(context.Background(), []byte(`{"auth":{"passwordForGit":false}}`)); err != nil {
		t.Errorf("an update naming no group failed: %v", err)
	}

	s2, st2, changes := newCountedService(t)
	base2 := s2.Current()
	st2.putErr = boom
	if _, _, err := s2.Update(context.Background(), []byte(`{"auth":{"passwordForRest":false}}`)); !errors.Is(err, boom) {
		t.Errorf("a failing store answered %v, want its error", err)
	}
	if s2.Current() != base2 || !s2.Current().Auth.PasswordForRest {
		t.Error("settings changed in memory although the store refused them (nodes would disagree)")
	}
	if changes.get() != 0 {
		t.Error("OnChange called although nothing changed")
	}
}

func TestConcurrentUpdatesAndReads(t *testing.T) {
	s, _, _ := newService(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 50 {
				_, _, _ = s.Update(context.Background(), []byte(fmt.Sprintf(`{"tokens":{"maxPerUser":%d},"network":{"allowedCidrs":["10.%d.0.0/16"],"trustedProxies":["127.0.0.1"]}}`, i*50+j+1, i)))
			}
		}()
		go func() {
			defer wg.Done()
			for range 500 {
				c := s.Current()
				_ = c.Network.Allowed(netip.MustParseAddr("10.1.2.3"))
				_ = c.Network.ClientAddr(netip.MustParseAddr("127.0.0.1"), http.Header{"X-Forwarded-For": {"10.3.3.3"}}.Values)
				_ = InGroups(c.Tokens.UseGroups, []string{"devs"})
			}
		}()
	}
	wg.Wait()
	c := s.Current()
	if len(c.Network.AllowedCIDRs) != 1 || len(c.Network.allowed) != 1 {
		t.Errorf("after concurrent updates the document is inconsistent: %v / %v", c.Network.AllowedCIDRs, c.Network.allowed)
	}
}

// TestUpdateKeysAreCaseSensitive: a key that differs from a setting's name
// only in case is an unknown key (as in Data Center, whose JSON binding is
// case-sensitive), not silently that setting.
func TestUpdateKeysAreCaseSensitive(t *testing.T) {
	for _, c := range []struct{ doc, field string }{
		{`{"tokens":{"RequireExpiry":true}}`, "tokens.RequireExpiry"},
		{`{"network":{"allowedCIDRs":["203.0.113.0/24"]}}`, "network.allowedCIDRs"},
		{`{"Auth":{"passwordForGit":false}}`, "Auth"},
	} {
		s, _, _ := newService(t)
		_, after, err := s.Update(context.Background(), []byte(c.doc))
		if err == nil {
			t.Errorf("Update(%s) accepted a key that is not in the document; settings now %v", c.doc, asJSON(t, after))
			continue
		}
		if !errors.Is(err, latch.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Update(%s) = %v, want ErrInvalid naming %s", c.doc, err, c.field)
		}
	}
}

// TestConcurrentUpdatesOfDifferentSections: two PUTs naming different
// sections, at the same time, must both take effect: each replaces only the
// section it names.
func TestConcurrentUpdatesOfDifferentSections(t *testing.T) {
	for round := range 5 {
		s, st, _ := newService(t)
		st.delay = 20 * time.Millisecond
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, _, _ = s.Update(context.Background(), []byte(`{"auth":{"passwordForGit":false}}`))
		}()
		go func() {
			defer wg.Done()
			<-start
			_, _, _ = s.Update(context.Background(), []byte(`{"network":{"allowedCidrs":["203.0.113.0/24"]}}`))
		}()
		close(start)
		wg.Wait()
		c := s.Current()
		if c.Auth.PasswordForGit || len(c.Network.AllowedCIDRs) != 1 {
			t.Fatalf("round %d: concurrent PUT {auth} and PUT {network}: one was lost: auth %+v, allowedCidrs %v",
				round, c.Auth, c.Network.AllowedCIDRs)
		}
		vals, _ := st.snapshot()
		if !strings.Contains(vals[storeKey], `"passwordForGit":false`) || !strings.Contains(vals[storeKey], "203.0.113.0/24") {
			t.Fatalf("round %d: the stored document lost one of two concurrent PUTs: %s", round, vals[storeKey])
		}
	}
}

// TestUpdateAcrossNodes: settings live in the database so that every node
// sees them. Two nodes share one store; a PUT on the second node of one
// section must neither undo what the first node stored for another section,
// nor leave the first node enforcing stale settings.
func TestUpdateAcrossNodes(t *testing.T) {
	st := newMemStore()
	a := newServiceOn(t, st)
	b := newServiceOn(t, st)
	mustUpdate(t, a, `{"auth":{"passwordForGit":false,"passwordForRest":false}}`)
	mustUpdate(t, b, `{"network":{"allowedCidrs":["203.0.113.0/24"]}}`)
	vals, _ := st.snapshot()
	var stored Settings
	if err := json.Unmarshal([]byte(vals[storeKey]), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Auth.PasswordForGit || stored.Auth.PasswordForRest {
		t.Errorf("node B's PUT {network} overwrote node A's earlier PUT {auth} in the database: stored auth %+v (B built its document on its stale in-memory copy)", stored.Auth)
	}
	if len(stored.Network.AllowedCIDRs) != 1 {
		t.Errorf("stored allowedCidrs %v, want [203.0.113.0/24]", stored.Network.AllowedCIDRs)
	}
}

// policy returns a network policy through the public update path.
func policy(t *testing.T, network string) *NetworkPolicy {
	t.Helper()
	s, _, _ := newService(t)
	return &mustUpdate(t, s, `{"network":`+network+`}`).Network
}

func TestClientAddr(t *testing.T) {
	a := netip.MustParseAddr
	xff := func(vals ...string) http.Header { return http.Header{"X-Forwarded-For": vals} }
	noProxy := policy(t, `{}`)
	lo := policy(t, `{"trustedProxies":["127.0.0.1/32"]}`)
	chain := policy(t, `{"trustedProxies":["127.0.0.1/32","10.0.0.0/8"]}`)
	v6 := policy(t, `{"trustedProxies":["::1/128","fd00::/8"]}`)
	realIP := policy(t, `{"trustedProxies":["127.0.0.1/32"],"clientIpHeader":"X-Real-IP"}`)

	cases := []struct {
		name string
		pol  *NetworkPolicy
		peer string
		hdr  http.Header
		want string
	}{
		{"no proxies: forged header ignored", noProxy, "127.0.0.1", xff("203.0.113.7"), "127.0.0.1"},
		{"no proxies: no header", noProxy, "198.51.100.1", nil, "198.51.100.1"},
		{"untrusted peer: forged header ignored", lo, "198.51.100.1", xff("203.0.113.7"), "198.51.100.1"},
		{"untrusted peer in a trusted range's neighbour", chain, "11.0.0.1", xff("203.0.113.7"), "11.0.0.1"},
		{"untrusted IPv4-mapped peer: forged header ignored", lo, "::ffff:198.51.100.1", xff("203.0.113.7"), "198.51.100.1"},
		{"trusted proxy, one hop", lo, "127.0.0.1", xff("203.0.113.7"), "203.0.113.7"},
		{"trusted proxy, no header", lo, "127.0.0.1", nil, "127.0.0.1"},
		{"trusted proxy, empty header", lo, "127.0.0.1", xff(""), "127.0.0.1"},
		{"trusted proxy, spaces", lo, "127.0.0.1", xff("  203.0.113.7  "), "203.0.113.7"},
		{"client-forged left hop ignored", lo, "127.0.0.1", xff("198.51.100.1, 203.0.113.7"), "203.0.113.7"},
		{"many forged left hops ignored", lo, "127.0.0.1", xff("1.1.1.1,2.2.2.2, 3.3.3.3,203.0.113.7"), "203.0.113.7"},
		{"chain: trusted hops skipped", chain, "127.0.0.1", xff("198.51.100.1, 203.0.113.7, 10.1.1.1, 10.2.2.2"), "203.0.113.7"},
		{"chain: peer in second range", chain, "10.9.9.9", xff("203.0.113.7, 10.1.1.1"), "203.0.113.7"},
		{"chain over several header lines", chain, "127.0.0.1", xff("198.51.100.1", "203.0.113.7, 10.0.0.2", "10.0.0.3"), "203.0.113.7"},
		{"all hops trusted: left-most", chain, "127.0.0.1", xff("10.0.0.2, 10.0.0.3"), "10.0.0.2"},
		{"garbage right-most hop: nothing further left trusted", lo, "127.0.0.1", xff("203.0.113.7, garbage"), "127.0.0.1"},
		{"garbage behind trusted hops", chain, "127.0.0.1", xff("203.0.113.7, not-an-ip, 10.0.0.2"), "10.0.0.2"},
		{"garbage left of the client ignored", lo, "127.0.0.1", xff("garbage, 203.0.113.7"), "203.0.113.7"},
		{"empty hop in the middle", chain, "127.0.0.1", xff("198.51.100.1,,10.0.0.2"), "10.0.0.2"},
		{"unknown token", lo, "127.0.0.1", xff("unknown"), "127.0.0.1"},
		{"hop with port", lo, "127.0.0.1", xff("203.0.113.7:51234"), "203.0.113.7"},
		{"IPv6 hop", lo, "127.0.0.1", xff("2001:db8::7"), "2001:db8::7"},
		{"bracketed IPv6 hop with port", lo, "127.0.0.1", xff("[2001:db8::7]:443"), "2001:db8::7"},
		{"IPv4-mapped hop unmapped", lo, "127.0.0.1", xff("::ffff:203.0.113.7"), "203.0.113.7"},
		{"IPv4-mapped trusted peer", lo, "::ffff:127.0.0.1", xff("203.0.113.7"), "203.0.113.7"},
		{"IPv4-mapped trusted hop skipped", chain, "127.0.0.1", xff("203.0.113.7, ::ffff:10.0.0.5"), "203.0.113.7"},
		{"IPv6 proxy", v6, "::1", xff("203.0.113.7"), "203.0.113.7"},
		{"IPv6 proxy chain", v6, "::1", xff("2001:db8::9, fd00::2"), "2001:db8::9"},
		{"IPv6 untrusted peer", v6, "2001:db8::66", xff("203.0.113.7"), "2001:db8::66"},
		{"custom header read", realIP, "127.0.0.1", http.Header{"X-Real-Ip": {"203.0.113.8"}}, "203.0.113.8"},
		{"custom header: X-Forwarded-For ignored", realIP, "127.0.0.1", xff("203.0.113.7"), "127.0.0.1"},
		{"custom header from untrusted peer ignored", realIP, "198.51.100.1", http.Header{"X-Real-Ip": {"203.0.113.8"}}, "198.51.100.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := c.hdr
			if hdr == nil {
				hdr = http.Header{}
			}
			got := c.pol.ClientAddr(a(c.peer), hdr.Values)
			if got != a(c.want) {
				t.Errorf("ClientAddr(peer %s, %v) = %v, want %v", c.peer, c.hdr, got, c.want)
			}
			if got.Is4In6() {
				t.Errorf("ClientAddr returned an IPv4-mapped address %v; compare and log addresses unmapped", got)
			}
		})
	}
}

func TestInRangesAndAllowed(t *testing.T) {
	ranges := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	for addr, want := range map[string]bool{
		"203.0.113.0": true, "203.0.113.255": true, "203.0.112.255": false, "203.0.114.0": false,
		"::ffff:203.0.113.9": true, "2001:db8::1": true, "2001:db9::": false, "::": false, "0.0.0.0": false,
	} {
		if got := InRanges(ranges, netip.MustParseAddr(addr)); got != want {
			t.Errorf("InRanges(%s) = %v, want %v", addr, got, want)
		}
	}
	if InRanges(nil, netip.MustParseAddr("203.0.113.1")) {
		t.Error("InRanges with no ranges is true")
	}
	if InRanges(ranges, netip.Addr{}) {
		t.Error("the zero address is in range")
	}
	p := policy(t, `{"allowedCidrs":["203.0.113.0/24"]}`)
	if p.Allowed(netip.Addr{}) {
		t.Error("an unknown client address is allowed when ranges are set")
	}
}

func TestInGroups(t *testing.T) {
	cases := []struct {
		list, user []string
		want       bool
	}{
		{nil, nil, true},
		{[]string{}, []string{"devs"}, true},
		{[]string{"devs"}, nil, false},
		{[]string{"devs"}, []string{"ops"}, false},
		{[]string{"devs"}, []string{"ops", "devs"}, true},
		{[]string{"ops", "devs"}, []string{"devs"}, true},
		{[]string{"devs"}, []string{"Devs"}, false},
	}
	for _, c := range cases {
		if got := InGroups(c.list, c.user); got != c.want {
			t.Errorf("InGroups(%q, %q) = %v, want %v", c.list, c.user, got, c.want)
		}
	}
}
