package auth

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/internal/clientaddr"
)

// Brute-force limits: an account is locked after AccountFailures consecutive
// failures and a client address (an IPv6 /64) after AddressFailures failures
// within a minute. Each lock lasts twice the previous one, from the base up to
// MaxLock.
const (
	AccountFailures = 10
	AddressFailures = 100
	accountBaseLock = 30 * time.Second
	addressBaseLock = time.Minute
	MaxLock         = 15 * time.Minute
	limiterEntries  = 100_000
	limiterTTL      = 2 * MaxLock
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

// Limiter counts failed authentications per account and per client address
// (per /64 for IPv6, see clientaddr.Key). Accounts are opaque, case-insensitive keys
// chosen by the caller. State is kept in memory per node, bounded in size.
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

// Check returns a *RateLimited while attempts from addr, or password
// attempts on account (when not ""), must wait.
func (l *Limiter) Check(account string, addr netip.Addr) error {
	if err := l.CheckAddr(addr); err != nil {
		return err
	}
	if account == "" {
		return nil
	}
	return l.CheckAccount(account)
}

// CheckAddr returns a *RateLimited while attempts from addr must wait.
func (l *Limiter) CheckAddr(addr netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if st, ok := l.addrs.Get(clientaddr.Key(addr)); ok && now.Before(st.until) {
		return &RateLimited{RetryAfter: st.until.Sub(now)}
	}
	return nil
}

// CheckAccount returns a *RateLimited while password attempts on account
// must wait.
func (l *Limiter) CheckAccount(account string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if st, ok := l.accounts.Get(strings.ToLower(account)); ok && now.Before(st.until) {
		return &RateLimited{RetryAfter: st.until.Sub(now), Account: account}
	}
	return nil
}

// Failed records a failed attempt from addr, against account when it is not
// "", and reports whether it started a lock. Entries are re-added on every
// failure so that their expiry outlives any lock they hold.
func (l *Limiter) Failed(account string, addr netip.Addr) (locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	addr = clientaddr.Key(addr)
	st, _ := l.addrs.Get(addr)
	if st == nil {
		st = &lockState{}
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
	l.addrs.Add(addr, st)
	if account == "" {
		return locked
	}
	account = strings.ToLower(account)
	as, _ := l.accounts.Get(account)
	if as == nil {
		as = &lockState{}
	}
	as.count++
	if as.count >= AccountFailures {
		as.lock = nextLock(as.lock, accountBaseLock)
		as.until = now.Add(as.lock)
		// One more failure after the lock ends locks again, for twice as long.
		as.count = AccountFailures - 1
		locked = true
	}
	l.accounts.Add(account, as)
	return locked
}

func nextLock(prev, base time.Duration) time.Duration {
	if prev == 0 {
		return base
	}
	return min(prev*2, MaxLock)
}

// Succeeded resets the account's counter.
func (l *Limiter) Succeeded(account string) {
	if account == "" {
		return
	}
	l.mu.Lock()
	l.accounts.Remove(strings.ToLower(account))
	l.mu.Unlock()
}
