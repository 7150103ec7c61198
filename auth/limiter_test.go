package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch"
)

// limClock is a clock the test moves by hand.
type limClock struct {
	mu  sync.Mutex
	now time.Time
}

func newLimClock() *limClock { return &limClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *limClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *limClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newLimTestLimiter() (*Limiter, *limClock) {
	l := NewLimiter()
	c := newLimClock()
	l.SetClock(c.Now)
	return l, c
}

var (
	limAddrA = netip.MustParseAddr("198.51.100.1")
	limAddrB = netip.MustParseAddr("203.0.113.7")
)

// limLocked returns the *RateLimited from Check, or nil.
func limLocked(t *testing.T, l *Limiter, login string, addr netip.Addr) *RateLimited {
	t.Helper()
	err := l.Check(login, addr)
	if err == nil {
		return nil
	}
	var rl *RateLimited
	if !errors.As(err, &rl) {
		t.Fatalf("Check(%q, %v) = %v (%T), want nil or *RateLimited", login, addr, err, err)
	}
	return rl
}

// limFailN records n failures and returns whether the last one locked.
func limFailN(l *Limiter, login string, addr netip.Addr, n int) (lastLocked bool) {
	for range n {
		lastLocked = l.Failed(login, addr)
	}
	return lastLocked
}

func TestLimiterAccountLocksAfterTenFailures(t *testing.T) {
	l, _ := newLimTestLimiter()
	for i := 1; i < AccountFailures; i++ {
		if l.Failed("alice", limAddrA) {
			t.Fatalf("failure %d locked the account; the lock comes with failure %d", i, AccountFailures)
		}
		if rl := limLocked(t, l, "alice", limAddrA); rl != nil {
			t.Fatalf("after %d failures alice is locked for %v", i, rl.RetryAfter)
		}
	}
	if !l.Failed("alice", limAddrA) {
		t.Fatalf("failure %d did not lock the account", AccountFailures)
	}
	rl := limLocked(t, l, "alice", limAddrA)
	if rl == nil {
		t.Fatal("after 10 consecutive failures alice is not locked")
	}
	if rl.RetryAfter != 30*time.Second || rl.Seconds() != 30 {
		t.Errorf("first lock: RetryAfter %v (%ds), want 30s", rl.RetryAfter, rl.Seconds())
	}
	if rl.Account != "alice" {
		t.Errorf("RateLimited.Account = %q, want alice", rl.Account)
	}
	if !errors.Is(rl, latch.ErrUnauthorized) {
		t.Error("RateLimited does not unwrap to latch.ErrUnauthorized")
	}
	if want := "Too many failed authentication attempts. Try again in 30 seconds."; rl.Error() != want {
		t.Errorf("message %q, want %q", rl.Error(), want)
	}
	// The account is locked from every address, in any case of its name.
	if limLocked(t, l, "alice", limAddrB) == nil {
		t.Error("alice's account lock does not apply from another address")
	}
	if limLocked(t, l, "ALICE", limAddrB) == nil {
		t.Error("the lock does not apply to the same login in another case")
	}
	// Others are not locked, even from the same address; nor is the
	// address for requests without a login (tokens).
	if rl := limLocked(t, l, "bob", limAddrA); rl != nil {
		t.Errorf("bob is locked (%v) because alice failed", rl.RetryAfter)
	}
	if rl := limLocked(t, l, "", limAddrA); rl != nil {
		t.Errorf("the address is locked (%v) after 10 failures; the address limit is %d a minute", rl.RetryAfter, AddressFailures)
	}
}

func TestLimiterLockDoublesUpToFifteenMinutes(t *testing.T) {
	l, clk := newLimTestLimiter()
	limFailN(l, "alice", limAddrA, AccountFailures)
	want := 30 * time.Second
	for round := 1; round <= 8; round++ {
		rl := limLocked(t, l, "alice", limAddrA)
		if rl == nil {
			t.Fatalf("round %d: not locked", round)
		}
		if rl.RetryAfter != want {
			t.Errorf("round %d: lock %v, want %v", round, rl.RetryAfter, want)
		}
		// Still locked one second before the end, unlocked at its end.
		clk.Advance(want - time.Second)
		if rl := limLocked(t, l, "alice", limAddrA); rl == nil || rl.RetryAfter != time.Second || rl.Seconds() != 1 {
			t.Fatalf("round %d: one second before the end: %+v, want 1s left", round, rl)
		}
		clk.Advance(time.Second)
		if rl := limLocked(t, l, "alice", limAddrA); rl != nil {
			t.Fatalf("round %d: still locked (%v) when the lock ended", round, rl.RetryAfter)
		}
		// One more failure after a lock locks again, for twice as long,
		// capped at 15 minutes.
		if !l.Failed("alice", limAddrA) {
			t.Fatalf("round %d: a failure right after a lock did not lock again", round)
		}
		want = min(want*2, MaxLock)
	}
	if MaxLock != 15*time.Minute {
		t.Errorf("MaxLock = %v, want 15m", MaxLock)
	}
	if rl := limLocked(t, l, "alice", limAddrA); rl == nil || rl.RetryAfter != 15*time.Minute || rl.Seconds() != 900 {
		t.Errorf("after many locks: %+v, want 15m (900 s)", rl)
	}
}

func TestLimiterSuccessResets(t *testing.T) {
	l, clk := newLimTestLimiter()
	limFailN(l, "alice", limAddrA, AccountFailures-1)
	l.Succeeded("alice")
	if limFailN(l, "alice", limAddrA, AccountFailures-1) {
		t.Fatal("9 failures after a success locked: the success did not reset the counter")
	}
	if rl := limLocked(t, l, "alice", limAddrA); rl != nil {
		t.Fatalf("locked after a success and 9 failures: %v", rl.RetryAfter)
	}
	if !l.Failed("alice", limAddrA) {
		t.Fatal("the 10th consecutive failure after the reset did not lock")
	}
	// A success after a lock starts the doubling over.
	clk.Advance(30 * time.Second)
	l.Failed("alice", limAddrA) // 60 s lock
	clk.Advance(60 * time.Second)
	l.Succeeded("ALICE") // login case does not matter
	if limFailN(l, "alice", limAddrA, AccountFailures-1) {
		t.Fatal("9 failures after a success locked")
	}
	l.Failed("alice", limAddrA)
	if rl := limLocked(t, l, "alice", limAddrA); rl == nil || rl.RetryAfter != 30*time.Second {
		t.Errorf("first lock after a success: %+v, want 30s again", rl)
	}
	// Succeeded for another account or for "" changes nothing.
	l.Succeeded("bob")
	l.Succeeded("")
	if limLocked(t, l, "alice", limAddrA) == nil {
		t.Error("another account's success unlocked alice")
	}
}

func TestLimiterAccountsIndependent(t *testing.T) {
	l, clk := newLimTestLimiter()
	// Interleaved failures: each account counts its own.
	for i := range AccountFailures - 1 {
		l.Failed("alice", netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}))
		l.Failed("bob", limAddrB)
	}
	if limLocked(t, l, "alice", limAddrA) != nil || limLocked(t, l, "bob", limAddrB) != nil {
		t.Fatal("locked after 9 failures each")
	}
	// Failures from different addresses add up for the account.
	if !l.Failed("alice", limAddrB) {
		t.Fatal("alice's 10th failure, from another address, did not lock her account")
	}
	if limLocked(t, l, "bob", limAddrB) != nil {
		t.Error("bob locked by alice's failure")
	}
	l.Succeeded("bob")
	clk.Advance(10 * time.Second)
	limFailN(l, "bob", limAddrB, AccountFailures)
	a, b := limLocked(t, l, "alice", limAddrA), limLocked(t, l, "bob", limAddrB)
	if a == nil || b == nil {
		t.Fatalf("alice %+v, bob %+v: both should be locked", a, b)
	}
	if a.RetryAfter != 20*time.Second || b.RetryAfter != 30*time.Second {
		t.Errorf("alice %v left (want 20s), bob %v left (want 30s): locks must be per account", a.RetryAfter, b.RetryAfter)
	}
	// Bearer tokens carry no login: they meet address locks only.
	if rl := limLocked(t, l, "", limAddrB); rl != nil {
		t.Errorf("Check with no login from bob's address: locked %v", rl.RetryAfter)
	}
	// Failures with no login do not lock an account named "".
	l2, _ := newLimTestLimiter()
	limFailN(l2, "", limAddrA, AccountFailures*2)
	if rl := limLocked(t, l2, "", limAddrB); rl != nil {
		t.Errorf("failures with no login locked other addresses: %v", rl.RetryAfter)
	}
	if rl := limLocked(t, l2, "carol", limAddrB); rl != nil {
		t.Errorf("failures with no login locked carol: %v", rl.RetryAfter)
	}
}

func TestLimiterAddressLock(t *testing.T) {
	l, clk := newLimTestLimiter()
	// 99 failures in a minute, each for a different account (a password
	// spray) or none (tokens): not yet.
	for i := 1; i < AddressFailures; i++ {
		login := ""
		if i%2 == 0 {
			login = fmt.Sprintf("user%d", i)
		}
		if l.Failed(login, limAddrA) {
			t.Fatalf("failure %d from one address locked it", i)
		}
		clk.Advance(500 * time.Millisecond)
	}
	if rl := limLocked(t, l, "", limAddrA); rl != nil {
		t.Fatalf("locked after %d failures", AddressFailures-1)
	}
	if !l.Failed("", limAddrA) {
		t.Fatalf("failure %d within a minute did not lock the address", AddressFailures)
	}
	rl := limLocked(t, l, "", limAddrA)
	if rl == nil {
		t.Fatal("address not locked")
	}
	if rl.RetryAfter != time.Minute || rl.Seconds() != 60 {
		t.Errorf("address lock %v, want 60s", rl.RetryAfter)
	}
	if rl.Account != "" {
		t.Errorf("address lock names account %q", rl.Account)
	}
	// Every login from that address waits, even one that never failed.
	if limLocked(t, l, "newcomer", limAddrA) == nil {
		t.Error("the locked address still lets a login through")
	}
	// Other addresses, and the sprayed accounts from elsewhere, are fine.
	if rl := limLocked(t, l, "", limAddrB); rl != nil {
		t.Errorf("another address is locked: %v", rl.RetryAfter)
	}
	if rl := limLocked(t, l, "user2", limAddrB); rl != nil {
		t.Errorf("a sprayed account is locked from another address: %v", rl.RetryAfter)
	}
	// The lock ends, and the next lock doubles.
	clk.Advance(time.Minute)
	if rl := limLocked(t, l, "", limAddrA); rl != nil {
		t.Fatalf("still locked after the minute: %v", rl.RetryAfter)
	}
	want := 2 * time.Minute
	for round := 0; round < 6; round++ {
		if limFailN(l, "", limAddrA, AddressFailures-1) {
			t.Fatalf("round %d: locked before %d failures", round, AddressFailures)
		}
		if !l.Failed("", limAddrA) {
			t.Fatalf("round %d: %d failures did not lock", round, AddressFailures)
		}
		rl := limLocked(t, l, "", limAddrA)
		if rl == nil || rl.RetryAfter != want {
			t.Fatalf("round %d: lock %+v, want %v", round, rl, want)
		}
		clk.Advance(want)
		want = min(want*2, MaxLock)
	}
}

func TestLimiterAddressWindowSlides(t *testing.T) {
	l, clk := newLimTestLimiter()
	limFailN(l, "", limAddrA, AddressFailures-1)
	clk.Advance(61 * time.Second)
	// The 99 earlier failures are more than a minute old.
	if l.Failed("", limAddrA) {
		t.Fatal("failures older than a minute still count toward the address lock")
	}
	if rl := limLocked(t, l, "", limAddrA); rl != nil {
		t.Fatalf("locked by failures older than a minute: %v", rl.RetryAfter)
	}
	// 100 in a rolling minute lock, wherever the minute starts.
	l2, clk2 := newLimTestLimiter()
	limFailN(l2, "", limAddrA, 50)
	clk2.Advance(40 * time.Second)
	limFailN(l2, "", limAddrA, 49)
	clk2.Advance(19 * time.Second)
	if !l2.Failed("", limAddrA) {
		t.Error("100 failures within 59 seconds did not lock the address")
	}
}

func TestLimiterIPv4MappedAddress(t *testing.T) {
	l, _ := newLimTestLimiter()
	mapped := netip.MustParseAddr("::ffff:198.51.100.1")
	for range AddressFailures {
		l.Failed("", mapped.Unmap())
	}
	if limLocked(t, l, "", limAddrA) == nil {
		t.Error("address lock not found for the same address")
	}
}

// TestLimiterIPv6Slash64: an IPv6 client usually holds a whole /64, so
// failures from its addresses count together; another /64 is not locked.
func TestLimiterIPv6Slash64(t *testing.T) {
	l, _ := newLimTestLimiter()
	for i := range 2 * AddressFailures {
		addr := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 8: byte(i >> 8), 14: byte(i), 15: 1})
		l.Failed("", addr)
	}
	for _, s := range []string{"2001:db8:0:1::1", "2001:db8:0:1:ffff:ffff:ffff:ffff"} {
		if limLocked(t, l, "", netip.MustParseAddr(s)) == nil {
			t.Errorf("%s is not locked after %d failures from its /64", s, 2*AddressFailures)
		}
	}
	for _, s := range []string{"2001:db8:0:2::1", "2001:db8::1"} {
		if rl := limLocked(t, l, "", netip.MustParseAddr(s)); rl != nil {
			t.Errorf("%s, in another /64, is locked: %v", s, rl.RetryAfter)
		}
	}
	// IPv4 addresses stay apart, written plainly or 4-in-6.
	l2, _ := newLimTestLimiter()
	limFailN(l2, "", netip.MustParseAddr("::ffff:198.51.100.1"), AddressFailures)
	if limLocked(t, l2, "", limAddrA) == nil {
		t.Error("a 4-in-6 address's failures do not lock its IPv4 address")
	}
	if rl := limLocked(t, l2, "", netip.MustParseAddr("198.51.100.2")); rl != nil {
		t.Errorf("a neighbouring IPv4 address is locked: %v", rl.RetryAfter)
	}
}

func TestRateLimitedSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int{
		30 * time.Second: 30, 29*time.Second + time.Millisecond: 30, 1: 1, time.Second: 1, 899*time.Second + 1: 900,
	} {
		if got := (&RateLimited{RetryAfter: d}).Seconds(); got != want {
			t.Errorf("Seconds() of %v = %d, want %d", d, got, want)
		}
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l, _ := newLimTestLimiter()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			login := fmt.Sprintf("user%d", g)
			for range AccountFailures {
				_ = l.Check(login, limAddrA)
				l.Failed(login, limAddrB)
			}
		}()
	}
	wg.Wait()
	for g := range 8 {
		if limLocked(t, l, fmt.Sprintf("user%d", g), limAddrA) == nil {
			t.Errorf("user%d not locked after %d concurrent failures", g, AccountFailures)
		}
	}
	if limLocked(t, l, "", limAddrB) != nil {
		t.Errorf("address locked after %d failures", 8*AccountFailures)
	}
}
