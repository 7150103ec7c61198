package gitrepo_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/gitrepo"
)

// limitManager returns a Manager (no repositories needed) with a limit.
func limitManager(t *testing.T, max int, wait time.Duration) *gitrepo.Manager {
	t.Helper()
	m, err := gitrepo.NewManager(filepath.Join(t.TempDir(), "repositories"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SetLimit(max, wait)
	return m
}

func mustAcquire(t *testing.T, m *gitrepo.Manager, key string) func() {
	t.Helper()
	release, err := m.Acquire(context.Background(), key)
	if err != nil {
		t.Fatalf("acquire %q: %v", key, err)
	}
	return release
}

// acquireAsync acquires for key in a goroutine; the channel gets the result.
type acquired struct {
	release func()
	err     error
}

func acquireAsync(ctx context.Context, m *gitrepo.Manager, key string) <-chan acquired {
	c := make(chan acquired, 1)
	go func() {
		release, err := m.Acquire(ctx, key)
		c <- acquired{release, err}
	}()
	return c
}

// waitWaiting waits until n callers wait for a slot of m.
func waitWaiting(t *testing.T, m *gitrepo.Manager, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, w := m.LimitState(); w == n {
			return
		}
		if time.Now().After(deadline) {
			_, w := m.LimitState()
			t.Fatalf("%d callers waiting, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func receive(t *testing.T, what string, c <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-c:
		return a
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting", what)
		return acquired{}
	}
}

// checkEmpty checks that m keeps no per-key state and no waiters, and that
// no slot is taken.
func checkEmpty(t *testing.T, m *gitrepo.Manager) {
	t.Helper()
	if keys, waiting := m.LimitState(); keys != 0 || waiting != 0 || m.SlotsInUse() != 0 {
		t.Errorf("after everything ended: %d keys, %d waiting, %d slots in use; want none", keys, waiting, m.SlotsInUse())
	}
}

func TestShare(t *testing.T) {
	for max, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 8: 4, 32: 16} {
		if got := gitrepo.Share(max); got != want {
			t.Errorf("Share(%d) = %d, want %d", max, got, want)
		}
	}
}

// TestLimitShare: a principal at its share gets ErrBusy after the wait while
// another principal still takes slots; the global limit still holds; and
// nothing is left behind.
func TestLimitShare(t *testing.T) {
	m := limitManager(t, 4, 20*time.Millisecond) // share 2
	a1, a2 := mustAcquire(t, m, "user:1"), mustAcquire(t, m, "user:1")
	if _, err := m.Acquire(context.Background(), "user:1"); !errors.Is(err, gitrepo.ErrBusy) {
		t.Fatalf("a third slot for the same principal: %v, want ErrBusy", err)
	}
	if m.SlotsInUse() != 2 {
		t.Errorf("the refused principal holds a slot: %d in use", m.SlotsInUse())
	}
	b1, b2 := mustAcquire(t, m, "user:2"), mustAcquire(t, m, "user:2")
	// Now the global limit is reached: every key, and no key, waits.
	for _, key := range []string{"user:3", ""} {
		if _, err := m.Acquire(context.Background(), key); !errors.Is(err, gitrepo.ErrBusy) {
			t.Errorf("acquire %q beyond the global limit: %v, want ErrBusy", key, err)
		}
	}
	for _, r := range []func(){a1, a2, b1, b2} {
		r()
	}
	a1() // releasing twice gives back one slot only
	checkEmpty(t, m)
	// Without a key only the global limit applies.
	var rs []func()
	for range 4 {
		rs = append(rs, mustAcquire(t, m, ""))
	}
	for _, r := range rs {
		r()
	}
	checkEmpty(t, m)
}

// TestLimitWaiters: a principal waiting at its share does not hold up
// others; a freed slot goes to the first waiter that may take it; the
// principal proceeds when one of its own processes ends.
func TestLimitWaiters(t *testing.T) {
	m := limitManager(t, 4, time.Minute) // share 2
	ctx := context.Background()
	a1, a2 := mustAcquire(t, m, "user:1"), mustAcquire(t, m, "user:1")
	b1 := mustAcquire(t, m, "user:2")
	a3 := acquireAsync(ctx, m, "user:1")
	waitWaiting(t, m, 1)
	b2 := mustAcquire(t, m, "user:2") // A, waiting at its share, is no obstacle
	c1 := acquireAsync(ctx, m, "user:3")
	waitWaiting(t, m, 2) // global limit reached: C waits too, after A

	b1() // frees a global slot: C may take it, A (at its share) may not
	c := receive(t, "C after a slot freed", c1)
	if c.err != nil {
		t.Fatalf("C: %v", c.err)
	}
	select {
	case a := <-a3:
		t.Fatalf("A got a slot beyond its share: %v", a.err)
	default:
	}
	waitWaiting(t, m, 1)

	a1() // A's own process ends: A proceeds
	a := receive(t, "A after its own process ended", a3)
	if a.err != nil {
		t.Fatalf("A: %v", a.err)
	}
	for _, r := range []func(){a2, a.release, b2, c.release} {
		r()
	}
	checkEmpty(t, m)
}

// TestLimitCancel: a waiter whose context ends stops waiting and leaves
// nothing behind.
func TestLimitCancel(t *testing.T) {
	m := limitManager(t, 2, time.Minute) // share 1
	a1 := mustAcquire(t, m, "addr:192.0.2.1")
	ctx, cancel := context.WithCancel(context.Background())
	a2 := acquireAsync(ctx, m, "addr:192.0.2.1")
	waitWaiting(t, m, 1)
	cancel()
	if a := receive(t, "cancelled waiter", a2); !errors.Is(a.err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v, want context.Canceled", a.err)
	}
	a1()
	checkEmpty(t, m)

	m.SetLimit(0, 0) // no limit
	for range 10 {
		mustAcquire(t, m, "user:1")
	}
}

// TestServeLimitShare: through Serve, a principal holding its share of two
// slots gets ErrBusy while another principal is served, and is served once
// its own run ends.
func TestServeLimitShare(t *testing.T) {
	s := newServer(t, nil)
	s.m.SetLimit(2, 200*time.Millisecond) // share 1
	ctx := context.Background()
	in := blockingReader{make(chan struct{})}
	first := make(chan error, 1)
	go func() {
		first <- s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: in, Stdout: io.Discard, Principal: user(1)})
	}()
	waitSlots(t, s.m, 1)
	quick := func(id int64) error {
		return s.m.Serve(ctx, gitrepo.UploadPack, s.id, gitrepo.ServeOptions{Stdin: strings.NewReader("0000"), Stdout: io.Discard, Principal: user(id)})
	}
	if err := quick(1); !errors.Is(err, gitrepo.ErrBusy) {
		t.Fatalf("second Serve of the principal holding its share = %v, want ErrBusy", err)
	}
	if err := quick(2); err != nil {
		t.Fatalf("Serve of another principal = %v", err)
	}
	close(in.done)
	if err := <-first; err != nil {
		t.Logf("first Serve: %v", err)
	}
	if err := quick(1); err != nil {
		t.Fatalf("Serve after the principal's run ended = %v", err)
	}
	checkEmpty(t, s.m)
}

func TestLimitKey(t *testing.T) {
	user := &latch.User{ID: 7}
	v4 := netip.MustParseAddr("192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8:1:2:3:4:5:6")
	for _, tc := range []struct {
		name string
		p    *latch.Principal
		addr netip.Addr
		want string
	}{
		{"password", &latch.Principal{User: user, Credential: latch.CredPassword}, v4, "user:7"},
		{"personal token", &latch.Principal{User: user, Credential: latch.CredPersonalToken, CredentialID: "t1"}, v4, "user:7"},
		{"user SSH key", &latch.Principal{User: user, Credential: latch.CredUserKey, CredentialID: "3"}, v4, "user:7"},
		{"project token", &latch.Principal{User: user, Credential: latch.CredProjectToken, CredentialID: "t2",
			Grants: []latch.Grant{{}}}, v4, "token:t2"},
		{"repository token", &latch.Principal{User: user, Credential: latch.CredRepoToken, CredentialID: "t3",
			Grants: []latch.Grant{{}}}, v4, "token:t3"},
		{"access key", &latch.Principal{Credential: latch.CredAccessKey, CredentialID: "9", Grants: []latch.Grant{}}, v4, "access-key:9"},
		{"anonymous IPv4", latch.Anonymous, v4, "addr:192.0.2.7"},
		{"anonymous IPv4 in IPv6", nil, netip.MustParseAddr("::ffff:192.0.2.7"), "addr:192.0.2.7"},
		{"anonymous IPv6 /64", latch.Anonymous, v6, "addr:2001:db8:1:2::"},
		{"anonymous without address", latch.Anonymous, netip.Addr{}, ""},
	} {
		if got := gitrepo.LimitKey(tc.p, tc.addr); got != tc.want {
			t.Errorf("%s: LimitKey = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// user is the principal of user id signed in with a password.
func user(id int64) *latch.Principal {
	return &latch.Principal{User: &latch.User{ID: id}, Credential: latch.CredPassword}
}
