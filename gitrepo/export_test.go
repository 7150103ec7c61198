package gitrepo

import "context"

// SlotsInUse reports how many git process slots are taken (see SetLimit),
// so that tests can wait for a Serve to hold one.
func (m *Manager) SlotsInUse() int {
	if m.limit == nil {
		return 0
	}
	m.limit.mu.Lock()
	defer m.limit.mu.Unlock()
	return m.limit.inUse
}

// LimitState reports how many keys hold git process slots and how many
// callers wait for one, so that tests can see waiters queue and per-key
// state go away.
func (m *Manager) LimitState() (keys, waiting int) {
	if m.limit == nil {
		return 0, 0
	}
	m.limit.mu.Lock()
	defer m.limit.mu.Unlock()
	return len(m.limit.perKey), m.limit.waiters.Len()
}

// Acquire takes a git process slot for key as Serve does.
func (m *Manager) Acquire(ctx context.Context, key string) (release func(), err error) {
	return m.acquire(ctx, key)
}
