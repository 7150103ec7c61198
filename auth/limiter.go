package auth

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/latchhq/latch"
)

// Brute-force limits: an account is locked after AccountFailures consecutive
// failures and a client address after AddressFailures failures within a
// minute. Each lock lasts twice the previous one, from the base up to
// MaxLock.
const (
	AccountFailures = 10
	AddressFailures = 100
	accountBaseLock = 30 * time.Second
	addressBaseLock = time.Minute
	MaxLock         = 15 * time.Minute
	limiterEntries  = 100_000
	limiterTTL      = 30 * time.Minute
)

// RateLimited is returned while an account or address is locked.
type RateLimited struct {
	RetryAfter time.Duration
	// Account is set when the account, not the address, is locked.
	Account string
}

func (e *RateLimited) Error() string {
	return fmt.Sprintf("Too many failed authentication attempts. Try again in %d seconds.", e.Seconds())
}

// Seconds is RetryAfter rounded up to whole seconds, as Retry-After carries it.
func (e *RateLimited) Seconds() int {
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// Unwrap makes errors.Is(err, latch.ErrUnauthorized) hold.
func (e *RateLimited) Unwrap() error { return latch.ErrUnauthorized }

type lockState struct {
	failures []time.Time // address: failures in the last minute; account: len counts consecutive failures
	count    int
	until    time.Time
	lock     time.Duration // the last lock's length
}

// Limiter counts failed authentications per account and per client address.
// State is kept in memory per node, bounded in size.
type Limiter struct {
	mu       sync.Mutex
	accounts *expirable.LRU[string, *lockState]
	addrs    *expirable.LRU[netip.Addr, *lockState]
	now      func() time.Time
}

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter {
	return &Limiter{
		accounts: expirable.NewLRU[string, *lockState](limiterEntries, nil, limiterTTL),
		addrs:    expirable.NewLRU[netip.Addr, *lockState](limiterEntries, nil, limiterTTL),
		now:      time.Now,
	}
}

// SetClock replaces the clock, for tests.
func (l *Limiter) SetClock(now func() time.Time) { l.now = now }

func accountKey(login string) string { return strings.ToLower(login) }

// Check returns a *RateLimited when attempts for login (may be "") from addr
// must wait.
func (l *Limiter) Check(login string, addr netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if st, ok := l.addrs.Get(addr); ok && now.Before(st.until) {
		return &RateLimited{RetryAfter: st.until.Sub(now)}
	}
	if login != "" {
		if st, ok := l.accounts.Get(accountKey(login)); ok && now.Before(st.until) {
			return &RateLimited{RetryAfter: st.until.Sub(now), Account: login}
		}
	}
	return nil
}

// Failed records a failed attempt and reports whether it started a lock.
func (l *Limiter) Failed(login string, addr netip.Addr) (locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st, ok := l.addrs.Get(addr)
	if !ok {
		st = &lockState{}
		l.addrs.Add(addr, st)
	}
	cut := now.Add(-time.Minute)
	kept := st.failures[:0]
	for _, t := range st.failures {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	st.failures = append(kept, now)
	if len(st.failures) >= AddressFailures {
		st.lock = nextLock(st.lock, addressBaseLock)
		st.until = now.Add(st.lock)
		st.failures = st.failures[:0]
		locked = true
	}
	if login == "" {
		return locked
	}
	key := accountKey(login)
	as, ok := l.accounts.Get(key)
	if !ok {
		as = &lockState{}
		l.accounts.Add(key, as)
	}
	as.count++
	if as.count >= AccountFailures {
		as.lock = nextLock(as.lock, accountBaseLock)
		as.until = now.Add(as.lock)
		// One more failure after the lock ends locks again, for twice as long.
		as.count = AccountFailures - 1
		locked = true
	}
	return locked
}

func nextLock(prev, base time.Duration) time.Duration {
	if prev == 0 {
		return base
	}
	return min(prev*2, MaxLock)
}

// Succeeded resets the account's counter.
func (l *Limiter) Succeeded(login string) {
	if login == "" {
		return
	}
	l.mu.Lock()
	l.accounts.Remove(accountKey(login))
	l.mu.Unlock()
}
