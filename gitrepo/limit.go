package gitrepo

import (
	"container/list"
	"context"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/latchhq/latch"
	"github.com/latchhq/latch/internal/clientaddr"
)

// SetLimit lets at most max git processes serve clones, fetches and pushes
// at once, as Bitbucket Data Center's SCM command throttle does: Serve waits
// up to wait for a slot, then fails with ErrBusy. max <= 0 removes the
// limit. Call it before serving.
//
// Within the limit, each principal (LimitKey of ServeOptions.Principal and
// ClientAddr) holds at most Share(max) slots at once, so that one user's
// script opening many SSH sessions or parallel HTTP clones cannot make
// everyone else wait. A
// principal at its share waits for one of its own processes to end, within
// the same wait, without taking a slot others could use.
func (m *Manager) SetLimit(max int, wait time.Duration) {
	if max <= 0 {
		m.limit = nil
		return
	}
	m.limit = &limiter{max: max, share: Share(max), wait: wait, perKey: make(map[string]int)}
}

// Share is how many of the slots of a limit of that many git processes (see
// SetLimit) one principal may hold at once: half of them, and at least one.
//
// Data Center has only the global throttle, so one busy client can take
// every slot; GitHub and GitLab limit each user instead. Half keeps at least
// half of the slots for everyone else however many sessions one principal
// opens, and so lets at least two principals run whatever one of them does,
// while one principal alone (a CI runner, a developer's parallel fetches,
// the common case on a quiet server) still gets half of the server rather
// than one fixed small number that would make it wait on an idle server.
// With a limit of one the share is that slot: there is nothing to share.
func Share(slots int) int { return max(1, slots/2) }

// LimitKey returns the key under which a git process of principal p, whose
// client is at addr, counts towards its share of the git process limit (see
// SetLimit; Manager.Serve derives it from ServeOptions):
//   - a project or repository token, or an access key: the credential, which
//     is its own identity rather than its creator's;
//   - any other credential of a user (password, personal token, SSH key):
//     the user, so that HTTP and SSH, and all of a user's keys and tokens,
//     share one share;
//   - an anonymous client: its address as the other per-address limits
//     count it (clientaddr.Key: an IPv6 address by its /64).
//
// It returns "" (only the global limit applies) when there is nothing to key
// on: an anonymous client without a known address.
func LimitKey(p *latch.Principal, addr netip.Addr) string {
	if p != nil && p.CredentialID != "" {
		switch p.Credential {
		case latch.CredProjectToken, latch.CredRepoToken:
			return "token:" + p.CredentialID
		case latch.CredAccessKey:
			return "access-key:" + p.CredentialID
		}
	}
	if id := p.UserID(); id != 0 {
		return "user:" + strconv.FormatInt(id, 10)
	}
	if p.IsAnonymous() && addr.IsValid() {
		return "addr:" + clientaddr.Key(addr).String()
	}
	return ""
}

// limiter counts git processes: at most max at once, at most share of them
// per key. Waiters queue in arrival order; whenever a slot frees, the first
// waiters that may take one (their key below its share) get it, so a
// waiter at its share never holds up a later one of another key.
//
// Invariant, under mu: no queued waiter could take a slot now. A newcomer
// that can take one therefore takes it at once without overtaking anyone who
// could.
type limiter struct {
	max, share int
	wait       time.Duration

	mu      sync.Mutex
	inUse   int
	perKey  map[string]int // keys with processes running; no zero entries
	waiters list.List      // of *waiter
}

type waiter struct {
	key   string
	ready chan struct{} // closed when the waiter has been given a slot
}

// can reports whether key may take a slot now. mu is held.
func (l *limiter) can(key string) bool {
	return l.inUse < l.max && (key == "" || l.perKey[key] < l.share)
}

// take counts a slot for key. mu is held.
func (l *limiter) take(key string) {
	l.inUse++
	if key != "" {
		l.perKey[key]++
	}
}

// release gives back a slot of key and hands freed slots to the waiters
// that may now take one, in arrival order.
func (l *limiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	if key != "" {
		if l.perKey[key]--; l.perKey[key] <= 0 {
			delete(l.perKey, key)
		}
	}
	for e := l.waiters.Front(); e != nil && l.inUse < l.max; {
		next := e.Next()
		if w := e.Value.(*waiter); l.can(w.key) {
			l.take(w.key)
			l.waiters.Remove(e)
			close(w.ready)
		}
		e = next
	}
}

// acquire takes a git process slot for key ("" for only the global limit),
// waiting up to m's wait, and returns the function that gives it back. It
// fails with ErrBusy when no slot came in time and with ctx's error when
// ctx ends first.
func (m *Manager) acquire(ctx context.Context, key string) (release func(), err error) {
	l := m.limit
	if l == nil {
		return func() {}, nil
	}
	var once sync.Once
	release = func() { once.Do(func() { l.release(key) }) }

	l.mu.Lock()
	if l.can(key) {
		l.take(key)
		l.mu.Unlock()
		return release, nil
	}
	w := &waiter{key: key, ready: make(chan struct{})}
	e := l.waiters.PushBack(w)
	l.mu.Unlock()

	t := time.NewTimer(l.wait)
	defer t.Stop()
	var timedOut bool
	select {
	case <-w.ready:
		return release, nil
	case <-t.C:
		timedOut, err = true, ErrBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	l.mu.Lock()
	select {
	case <-w.ready:
		// Given a slot as the wait ended: keep it, unless the caller left.
		l.mu.Unlock()
		if timedOut {
			return release, nil
		}
		release()
		return nil, err
	default:
	}
	l.waiters.Remove(e)
	l.mu.Unlock()
	return nil, err
}
