package server

import (
	"net"
	"net/netip"
)

// client.go: who the client is. It starts as the TCP peer; a PROXY
// header (a load balancer in front) or XCLIENT (a trusted front end)
// replaces it, and everything that looks at the client — the per-IP
// limits, the AUTH throttle, logs, the Received field, the Backend's
// checks, the trusted networks — looks at this one.

// setClient makes a the session's client address and decides again
// whether it is trusted (Listener.TrustedNetworks).
func (s *session) setClient(a net.Addr) {
	s.info.Remote = a
	s.info.Trusted = s.listener.trusts(a)
	s.log = s.srv.log.With("conn", s.info.ID, "listener", s.info.Listener, "remote", a.String())
}

// clientIP is the client's IP address in text form: the key of the
// per-IP limits and the AUTH throttle.
func (s *session) clientIP() string { return remoteIP(s.info.Remote) }

// trusts reports whether a is in the listener's trusted networks.
func (l *Listener) trusts(a net.Addr) bool { return inNetworks(l.TrustedNetworks, a) }

// addrIP is the IP address of a TCP address, IPv4-mapped IPv6 addresses
// unmapped (so that 127.0.0.0/8 matches ::ffff:127.0.0.1).
func addrIP(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	if a == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
