package postgres

import "time"

// SetKeepalive changes the listener's keepalive interval for a test and
// returns a function restoring it.
func SetKeepalive(d time.Duration) (restore func()) {
	old := keepaliveEvery
	keepaliveEvery = d
	return func() { keepaliveEvery = old }
}
