package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/settings"
	"github.com/latchhq/latch/store"
)

// pwStore is an in-memory UserStore of users with passwords, counting its
// lookups. A stored hash is "hash:" and the password, which the
// authenticator's verify hook checks (see newPwAuthenticator).
type pwStore struct {
	mu      sync.Mutex
	users   map[string]*latch.User // by name
	admins  map[int64]bool
	logins  int
	access  int
	hashes  int
	audited []store.AuditEvent
}

func (s *pwStore) UserByNameOrEmail(_ context.Context, login string) (*latch.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logins++
	u, ok := s.users[strings.ToLower(login)]
	if !ok {
		return nil, latch.Errorf(latch.ErrNotFound, "no such user")
	}
	c := *u
	return &c, nil
}

func (s *pwStore) PasswordHash(_ context.Context, id int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hashes++
	for _, u := range s.users {
		if u.ID == id {
			return "hash:" + u.Name + "-password", nil
		}
	}
	return "", latch.Errorf(latch.ErrNotFound, "no password")
}

func (s *pwStore) Access(_ context.Context, id int64, _ latch.Resource) (latch.Access, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access++
	if s.admins[id] {
		return latch.Access{Global: latch.LevelSysAdmin}, nil
	}
	return latch.Access{}, nil
}

func (s *pwStore) Record(_ context.Context, e store.AuditEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audited = append(s.audited, e)
}

// lookups returns the store lookups so far: logins, access, hashes.
func (s *pwStore) lookups() [3]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return [3]int{s.logins, s.access, s.hashes}
}

// pwAuth is an Authenticator over a pwStore holding a system administrator
// root and a user alice, with REST passwords off, counting password checks.
type pwAuth struct {
	*Authenticator
	st      *pwStore
	limiter *Limiter
	mu      sync.Mutex
	checks  int
}

func newPwAuthenticator(t *testing.T) *pwAuth {
	t.Helper()
	st := &pwStore{
		users: map[string]*latch.User{
			"root":  {ID: 1, Name: "root", Active: true, Type: latch.UserNormal},
			"alice": {ID: 2, Name: "alice", Active: true, Type: latch.UserNormal},
		},
		admins: map[int64]bool{1: true},
	}
	s := settings.Default()
	s.Auth.PasswordForRest = false
	p := &pwAuth{st: st, limiter: NewLimiter()}
	p.Authenticator = NewAuthenticator(st, fixedPolicy{s}, p.limiter, st)
	p.dummyHash() // computed once, outside the count
	p.verifyHook = func(encoded, password string) bool {
		p.mu.Lock()
		p.checks++
		p.mu.Unlock()
		return encoded == "hash:"+password
	}
	return p
}

func (p *pwAuth) passwordChecks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checks
}

func (p *pwAuth) rest(user, password string, addr netip.Addr) (*latch.Principal, error) {
	return p.Authenticate(context.Background(), Attempt{
		Credentials: Credentials{Scheme: SchemeBasic, Username: user, Secret: password}, Via: ViaREST, Addr: addr,
	})
}

// TestBasicDisabledCountsAgainstTheAddress: with REST passwords off, Basic
// attempts with a password count against the client address like failed
// passwords, so that after AddressFailures the address waits (429) and the
// audit trail stops growing; they do not lock the accounts named.
func TestBasicDisabledCountsAgainstTheAddress(t *testing.T) {
	p := newPwAuthenticator(t)
	addr := netip.MustParseAddr("192.0.2.7")
	names := []string{"alice", "nobody"}
	for i := range AddressFailures {
		name := names[i%len(names)]
		password := "wrong"
		if name == "alice" {
			password = "alice-password" // right, but refused all the same
		}
		if _, err := p.rest(name, password, addr); !errors.Is(err, ErrBasicDisabled) {
			t.Fatalf("attempt %d (%s): %v, want ErrBasicDisabled", i+1, name, err)
		}
	}
	_, err := p.rest("alice", "alice-password", addr)
	var rl *RateLimited
	if !errors.As(err, &rl) || rl.Account != "" {
		t.Fatalf("after %d refused attempts: %v, want the address rate limited", AddressFailures, err)
	}
	rows := len(p.st.audited)
	if _, err := p.rest("nobody", "x", addr); !errors.As(err, &rl) {
		t.Fatalf("a later attempt: %v, want rate limited", err)
	}
	if n := len(p.st.audited); n != rows {
		t.Errorf("a rate-limited attempt added %d audit rows", n-rows)
	}
	var limited bool
	for _, e := range p.st.audited {
		limited = limited || e.Type == audit.RateLimited && e.Address == addr.String()
	}
	if !limited {
		t.Error("the address lock is not in the audit trail")
	}
	// No account is locked: alice still gets in with her password over
	// Git, and root over REST, from elsewhere.
	other := netip.MustParseAddr("192.0.2.8")
	pr, err := p.Authenticate(context.Background(), Attempt{
		Credentials: Credentials{Scheme: SchemeBasic, Username: "alice", Secret: "alice-password"}, Via: ViaGit, Addr: other,
	})
	if err != nil || pr.User == nil || pr.User.Name != "alice" {
		t.Errorf("alice over Git from another address: %v, %v", pr, err)
	}
	if pr, err := p.rest("root", "root-password", other); err != nil || pr.User == nil || pr.User.Name != "root" {
		t.Errorf("the system administrator from another address: %v, %v", pr, err)
	}
}

// TestBasicDisabledSameWorkForEveryName: with REST passwords off, every
// Basic attempt does the same work whatever the name: one password check,
// and for a known name the same lookups, so that timing tells neither
// which accounts exist nor which are system administrators.
func TestBasicDisabledSameWorkForEveryName(t *testing.T) {
	p := newPwAuthenticator(t)
	addr := netip.MustParseAddr("192.0.2.7")
	lookups := map[string][3]int{}
	for _, c := range []struct{ what, user, password string }{
		{"a system administrator's wrong password", "root", "wrong"},
		{"a user's wrong password", "alice", "wrong"},
		{"a user's right password", "alice", "alice-password"},
		{"an unknown name", "nobody", "wrong"},
		{"an overlong password", "root", strings.Repeat("x", MaxPasswordLen+1)},
	} {
		checks, before := p.passwordChecks(), p.st.lookups()
		_, err := p.rest(c.user, c.password, addr)
		if !errors.Is(err, ErrBasicDisabled) {
			t.Errorf("%s: %v, want ErrBasicDisabled", c.what, err)
		}
		if n := p.passwordChecks() - checks; n != 1 {
			t.Errorf("%s: %d password checks, want 1", c.what, n)
		}
		after := p.st.lookups()
		lookups[c.what] = [3]int{after[0] - before[0], after[1] - before[1], after[2] - before[2]}
	}
	admin, user := lookups["a system administrator's wrong password"], lookups["a user's wrong password"]
	if admin != user || admin != lookups["a user's right password"] {
		t.Errorf("lookups differ: system administrator %v, user %v, user with the right password %v",
			admin, user, lookups["a user's right password"])
	}
	// A locked system administrator is answered like everyone else.
	for range AccountFailures {
		p.limiter.Failed("root", netip.MustParseAddr("198.51.100.1"))
	}
	checks := p.passwordChecks()
	if _, err := p.rest("root", "root-password", addr); !errors.Is(err, ErrBasicDisabled) {
		t.Errorf("a locked system administrator: %v, want ErrBasicDisabled", err)
	}
	if n := p.passwordChecks() - checks; n != 1 {
		t.Errorf("a locked system administrator: %d password checks, want 1", n)
	}
}

// TestGitPasswordsOffCountAgainstTheAddress: with Git passwords off, password
// attempts on Git count against the client address as on REST (and never
// against the account, whose password they never check), so that the
// address ends up waiting and the audit trail stops growing.
func TestGitPasswordsOffCountAgainstTheAddress(t *testing.T) {
	st := &pwStore{
		users:  map[string]*latch.User{"alice": {ID: 2, Name: "alice", Active: true, Type: latch.UserNormal}},
		admins: map[int64]bool{},
	}
	s := settings.Default()
	s.Auth.PasswordForGit = false
	a := NewAuthenticator(st, fixedPolicy{s}, NewLimiter(), st)
	a.verifyHook = func(encoded, password string) bool { return encoded == "hash:"+password }
	addr := netip.MustParseAddr("192.0.2.9")
	git := func() error {
		_, err := a.Authenticate(context.Background(), Attempt{
			Credentials: Credentials{Scheme: SchemeBasic, Username: "alice", Secret: "alice-password"}, Via: ViaGit, Addr: addr,
		})
		return err
	}
	for i := range AddressFailures {
		if err := git(); !errors.Is(err, ErrPasswordForGitDisabled) {
			t.Fatalf("attempt %d: %v, want ErrPasswordForGitDisabled", i+1, err)
		}
	}
	var rl *RateLimited
	if err := git(); !errors.As(err, &rl) || rl.Account != "" {
		t.Fatalf("after %d refused attempts: %v, want the address rate limited", AddressFailures, err)
	}
	rows := len(st.audited)
	if err := git(); !errors.As(err, &rl) {
		t.Fatalf("a later attempt: %v, want rate limited", err)
	}
	if n := len(st.audited); n != rows {
		t.Errorf("a rate-limited attempt added %d audit rows", n-rows)
	}
	// The attempts never checked a password: alice's account is not locked.
	pr, err := a.Authenticate(context.Background(), Attempt{
		Credentials: Credentials{Scheme: SchemeBasic, Username: "alice", Secret: "alice-password"}, Via: ViaREST,
		Addr: netip.MustParseAddr("192.0.2.10"),
	})
	if err != nil || pr.User == nil || pr.User.Name != "alice" {
		t.Errorf("alice over REST from another address: %v, %v", pr, err)
	}
}
