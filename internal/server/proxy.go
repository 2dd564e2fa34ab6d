package server

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"smtpkit/internal/proxyproto"
)

// proxy.go: a listener behind a load balancer that speaks the PROXY
// protocol (haproxy's proxy-protocol.txt, internal/proxyproto). From a
// peer in Listener.ProxyFrom the header is required and comes before
// anything else: before the implicit-TLS handshake, before the per-IP
// admission (so that the limits count the real client) and before the
// greeting. A missing or broken header closes the connection without a
// reply (§2: the receiver must not guess). From any other peer a header
// is refused: it is not SMTP, and believing it would let anyone choose
// their address.

// proxyHeaderTimeout bounds the wait for the header. HAProxy sends it
// with the connection; a peer in proxy_from that says nothing for this
// long is not a working balancer.
const proxyHeaderTimeout = 10 * time.Second

// expectsProxy reports whether a connection from peer must begin with a
// PROXY header: the listener has proxy_protocol and peer is in proxy_from.
func (l *Listener) expectsProxy(peer net.Addr) bool {
	return l.ProxyProtocol && inNetworks(l.ProxyFrom, peer)
}

// inNetworks reports whether a's IP is in one of the prefixes.
func inNetworks(prefixes []netip.Prefix, a net.Addr) bool {
	ip, ok := addrIP(a)
	if !ok {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// startProxied starts a session whose client a PROXY header will name:
// only the total limit is checked now (admitConn); serve reads the header
// and then admits the client under its own address.
func (s *Server) startProxied(c net.Conn, l *Listener) {
	sess := s.newSessionOn(c, l)
	sess.proxied = true
	if ok, why := s.admitConn(sess); !ok {
		s.refuse(sess, why)
		return
	}
	sess.admitted = true
	go sess.serve()
}

// refuse answers a connection 421 and closes it, without a session. On
// an implicit-TLS listener it closes without a word: the client's first
// bytes are a TLS ClientHello and it reads only TLS records (RFC 8314
// §3.3), so a plaintext 421 would reach it as garbage ("first record
// does not look like a TLS handshake"), and a handshake to say 421 inside
// would spend the CPU the limit is there to save.
func (s *Server) refuse(sess *session, why string) {
	c := sess.conn.raw
	implicit := sess.listener.TLS == TLSImplicit
	go func() {
		if !implicit {
			c.SetWriteDeadline(s.now().Add(5 * time.Second))
			c.Write([]byte(replyRefused(s.opts.Hostname, why).String()))
		}
		c.Close()
	}()
	sess.log.Warn("connection refused", "reason", why, "implicit_tls", implicit)
	s.obs.ConnectionRefused(sess.info.Listener, connRefusal(why))
}

// acceptProxied reads the PROXY header of a proxied session, makes the
// client it names the session's client and admits it under the per-IP
// limits. It reports false when the session must end: the header was
// missing or broken (closed without a word), or the client is over a
// limit (421, as for any other connection).
func (s *session) acceptProxied() bool {
	peer := s.info.Remote
	h, err := s.readProxyHeader()
	if err != nil {
		s.log.Warn("PROXY protocol header missing or invalid, closing", "proxy", peer.String(), "err", err)
		s.srv.obs.ConnectionRefused(s.info.Listener, ReasonProxyHeader)
		return false
	}
	if h.HasAddresses() {
		src := netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port())
		s.setClient(net.TCPAddrFromAddrPort(src))
	}
	s.log.Info("proxied", "proxy", peer.String(), "proxy_version", h.Version, "proxy_local", !h.HasAddresses())
	if ok, why := s.srv.admitClient(s); !ok {
		s.conn.transport.SetWriteDeadline(s.srv.now().Add(finalWriteGrace))
		s.conn.transport.Write([]byte(replyRefused(s.srv.opts.Hostname, why).String()))
		s.log.Warn("connection refused", "reason", why)
		s.srv.obs.ConnectionRefused(s.info.Listener, connRefusal(why))
		return false
	}
	s.srv.obs.ConnectionAccepted(s.info.Listener)
	return true
}

// readProxyHeader reads the header from the raw connection under
// proxyHeaderTimeout. The wait counts as idle, so that a shutdown ends
// it. Octets that arrived after the header (a TLS ClientHello in the
// same segment) are put in front of the connection.
func (s *session) readProxyHeader() (proxyproto.Header, error) {
	c := &s.conn
	c.raw.SetReadDeadline(c.deadlineIn(proxyHeaderTimeout))
	c.setIdle(true, false)
	h, rest, err := proxyproto.Read(c.raw)
	c.setIdle(false, false)
	c.raw.SetReadDeadline(time.Time{})
	if err != nil {
		return h, err
	}
	if len(rest) > 0 {
		c.transport = &prefixConn{Conn: c.raw, rest: rest}
	}
	return h, nil
}

// prefixConn is a connection with octets already read from it in front.
type prefixConn struct {
	net.Conn
	rest []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		if p.rest = p.rest[n:]; len(p.rest) == 0 {
			p.rest = nil // the header's read buffer is not kept for the session
		}
		return n, nil
	}
	return p.Conn.Read(b)
}

// isProxyHeader reports whether a command line is the start of a PROXY
// header: a v1 line, or the empty line the v2 signature begins with
// followed by the rest of it (when it has arrived with it, as it does).
func (s *session) isProxyHeader(line []byte) bool {
	if len(line) >= 6 && string(line[:6]) == "PROXY " {
		return true
	}
	if len(line) != 0 || s.conn.reader == nil {
		return false
	}
	next, _ := s.conn.reader.Peek(min(s.conn.reader.Buffered(), 10))
	if len(next) < 10 {
		return false
	}
	_, _, err := proxyproto.Parse(append([]byte("\r\n"), next...))
	return !errors.Is(err, proxyproto.ErrNotProxy)
}

// refuseProxyHeader ends a session whose peer sent a PROXY header it may
// not send, without a reply: what follows is not SMTP.
func (s *session) refuseProxyHeader() {
	why := "the listener has no proxy_protocol"
	if s.listener.ProxyProtocol {
		why = "the peer is not in proxy_from"
	}
	s.log.Warn("PROXY protocol header refused, closing", "why", why)
	s.srv.obs.ConnectionRefused(s.info.Listener, ReasonProxyHeader)
	s.quit = true
}
