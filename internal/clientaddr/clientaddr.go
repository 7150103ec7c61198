// Package clientaddr says which client addresses latch's per-client limits
// count together.
package clientaddr

import "net/netip"

// Key returns the key a client address is counted under by latch's
// per-address limits (failed logins, leak API rate limits, anonymous
// clients' share of git processes, SSH handshakes): an IPv4
// address, also written 4-in-6, as is; an IPv6 address its /64, the
// smallest network one client is usually given, so that rotating addresses
// within it does not escape a limit.
func Key(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr
}
