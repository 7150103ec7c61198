package gitrepo

// SlotsInUse reports how many git process slots are taken (see SetLimit),
// so that tests can wait for a Serve to hold one.
func (m *Manager) SlotsInUse() int { return len(m.slots) }
