// Package leaks closes the loop on leaked latch credentials on the server:
//
//   - POST /rest/latch/1.0/credentials/check answers, for up to 100 secrets,
//     whether each is an active, revoked, expired or unknown latch token (the
//     owner only for system administrators). A string that is not a
//     well-formed latch token with a correct checksum is unknown without a
//     database query.
//   - POST /rest/latch/1.0/credentials/revoke takes up to 1,000 secrets
//     found somewhere (no authentication: whoever holds a leaked secret may
//     kill it), revokes each live one at once, tells its owner by mail
//     (queued in the outbox in the revocation's transaction) and records the
//     event in the audit trail. It always answers 202, so that it
//     reveals nothing about which secrets were live.
//   - Push protection (a gitrepo.PushHandler): before a push is accepted, the
//     blobs it adds are scanned for latch credentials; a live one refuses the
//     push (settings: scanning.pushProtection "block"), or only warns ("warn").
//     The pusher may let one finding through with
//     `git push -o latch-allow-secret={id}`, which is audited.
//
// Both endpoints are rate-limited per client address.
package leaks

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/backend"
	"github.com/latchhq/latch/dcrest"
	"github.com/latchhq/latch/internal/clientaddr"
	"github.com/latchhq/latch/scan"
	"github.com/latchhq/latch/settings"
)

// Policy gives the administrator settings in force.
type Policy interface {
	Current() *settings.Settings
}

// Limits of the endpoints.
const (
	// MaxCheck is the most secrets one check request may carry.
	MaxCheck = 100
	// MaxRevoke is the most secrets one revoke request may carry.
	MaxRevoke = 1000
	// maxSource is how much of a report's source is kept (mail, audit).
	maxSource = 500
	// limiterEntries bounds the per-address limiter state.
	limiterEntries = 65536
	limiterTTL     = time.Hour
)

// Rate is a per-address request rate: Burst requests at once, refilled at
// PerSecond.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Default rates: a validity check is cheap and scanners call it in bursts;
// revocation is rarer (GitHub allows 60 an hour).
var (
	DefaultCheckRate  = Rate{PerSecond: 1, Burst: 60}
	DefaultRevokeRate = Rate{PerSecond: 1.0 / 60, Burst: 30}
)

// Config is what New needs. Backend is required; the others have defaults.
type Config struct {
	Backend *backend.Backend
	// Policy gives the push protection mode; nil means the defaults
	// (block).
	Policy Policy
	// Audit records revocations, blocked pushes and bypasses.
	Audit audit.Recorder
	// Links renders owners and names the server in messages.
	Links dcrest.Links
	Log   *slog.Logger
	// CheckRate and RevokeRate limit each client address; zero values take
	// the defaults.
	CheckRate, RevokeRate Rate
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service serves the check and revoke endpoints and protects pushes.
type Service struct {
	b        *backend.Backend
	policy   Policy
	audit    audit.Recorder
	links    dcrest.Links
	log      *slog.Logger
	now      func() time.Time
	scanner  *scan.Scanner
	checkLim *limiter
	revLim   *limiter
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{
		b: cfg.Backend, policy: cfg.Policy, audit: cfg.Audit, links: cfg.Links, log: cfg.Log,
		now: cfg.Now, scanner: scan.NewScanner(scan.LatchRules()...),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.audit == nil {
		s.audit = audit.Nop{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.CheckRate == (Rate{}) {
		cfg.CheckRate = DefaultCheckRate
	}
	if cfg.RevokeRate == (Rate{}) {
		cfg.RevokeRate = DefaultRevokeRate
	}
	s.checkLim = newLimiter(cfg.CheckRate)
	s.revLim = newLimiter(cfg.RevokeRate)
	return s
}

// pushMode returns the push protection mode in force.
func (s *Service) pushMode() string {
	if s.policy == nil {
		return settings.PushBlock
	}
	if m := s.policy.Current().Scanning.PushProtection; m != "" {
		return m
	}
	return settings.PushBlock
}

// limiter keeps one token bucket per client address, in a bounded map: an
// address not seen for limiterTTL, or pushed out by limiterEntries others,
// starts again with a full bucket.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	m    *expirable.LRU[netip.Addr, *rate.Limiter]
}

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r, m: expirable.NewLRU[netip.Addr, *rate.Limiter](limiterEntries, nil, limiterTTL)}
}

// allow takes one request from addr's bucket; when it is empty it returns
// false and how long until a request would pass.
func (l *limiter) allow(addr netip.Addr, now time.Time) (bool, time.Duration) {
	addr = clientaddr.Key(addr)
	l.mu.Lock()
	lim, ok := l.m.Get(addr)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.rate.PerSecond), l.rate.Burst)
		l.m.Add(addr, lim)
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Hour
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
