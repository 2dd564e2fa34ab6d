package inbound

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"smtpkit/internal/dnsbl"
	"smtpkit/internal/server"
)

// screen.go: connection screening on mx with DNS block and allow lists
// (RFC 5782), as postscreen does it. The lookups start at Connect, before
// the greeting, so they run while the client is greeted (and during the
// pregreet wait); the verdict is read at the first RCPT, where a blocked
// client is refused, and by greylisting, which skips allow-listed
// clients (allowlisted). Trusted and authenticated clients are never
// checked: a trusted one is never looked up, an authenticated one's
// verdict is never applied.

// screenConnect starts the list lookups for a client on mx (not for a
// trusted one). They are not cancelled when the session ends: a client
// that hangs up early is still counted, and its answers are in the cache
// when it comes back (bots do); the lookups end within the timeout.
func (b *Backend) screenConnect(ctx context.Context, s *server.SessionInfo, st *sessionState) {
	if b.opts.DNSBL == nil || s.Role != server.RoleMX || s.Trusted {
		return
	}
	ip, ok := clientIP(s.Remote)
	if !ok {
		return
	}
	st.dnsbl = b.opts.DNSBL.Start(context.WithoutCancel(ctx), ip)
}

// screenRecipient refuses RCPT from a client the lists block: 554 5.7.1
// naming the list and its answer, as Postfix's reject_rbl_client does.
// The refusal is logged once per session.
func (b *Backend) screenRecipient(s *server.SessionInfo) error {
	if s.AuthUser != "" || s.Trusted {
		return nil
	}
	st := b.sessions.get(s)
	if st == nil || st.dnsbl == nil {
		return nil
	}
	v := st.dnsbl.Wait()
	if !v.Blocked {
		return nil
	}
	hit, _ := v.Blocker()
	st.mu.Lock()
	first := !st.dnsblLogged
	st.dnsblLogged = true
	st.mu.Unlock()
	if first {
		b.opts.Logger.Info("client blocked by dnsbl", "conn", s.ID, "remote", v.IP.String(),
			"zone", hit.Zone, "answer", hit.Answer.String(), "score", v.Score, "listed_by", len(v.Hits))
	}
	return errDNSBLBlocked(v.IP, hit)
}

// allowlisted reports whether the allow lists outweigh the block lists
// for the session's client (a negative score), waiting for the lookups
// when they are still running. False when no lookup was made (no
// [[dnsbl]], a trusted client, not mx) or for a nil state.
func (st *sessionState) allowlisted() bool {
	if st == nil || st.dnsbl == nil {
		return false
	}
	return st.dnsbl.Wait().Allowlisted
}

// screenDisconnect counts the lists that listed the client, once per
// session: at once when the lookups are over, else when they end.
func (b *Backend) screenDisconnect(st *sessionState) {
	if st == nil || st.dnsbl == nil || b.opts.Events == nil {
		return
	}
	if v, ok := st.dnsbl.Result(); ok {
		b.countHits(v)
		return
	}
	go func(l *dnsbl.Lookup) { b.countHits(l.Wait()) }(st.dnsbl)
}

// countHits counts each zone that listed the client once (a zone given
// with several answer filters may hit more than once).
func (b *Backend) countHits(v dnsbl.Verdict) {
	for i, h := range v.Hits {
		if !slices.ContainsFunc(v.Hits[:i], func(e dnsbl.Hit) bool { return e.Zone == h.Zone }) {
			b.opts.Events.DNSBLHit(h.Zone)
		}
	}
}

// clientIP is the IP address of the session's client, unmapped.
func clientIP(a net.Addr) (netip.Addr, bool) {
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
