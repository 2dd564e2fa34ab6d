package server

import (
	"net"
	"net/netip"

	"smtpkit/internal/smtp"
)

// xclient.go: XCLIENT, Postfix's command by which a trusted front end (a
// proxy, a filter, a test tool such as swaks --xclient) tells the server
// who the real client is (XCLIENT_README). It is advertised and accepted
// only from Listener.XClientFrom, judged on the client the session began
// with (after a PROXY header), so that a front end may send it again.
// Outside a mail transaction only.
//
// XCLIENT starts the session over, as Postfix does: the transaction, the
// HELO name and the authentication are gone (LOGIN sets the latter
// again), the Backend sees the old client leave and the new one arrive
// (SessionHooks Disconnect, Connect: a DNSBL or milter looks at the new
// one), and the answer is a new 220 greeting. The client then greets
// with HELO/EHLO again, whose name replaces a HELO attribute's. ADDR
// goes through setClient: trust, the AUTH throttle, logs, the Received
// field and the Backend's checks see the new address. The per-IP
// connection count stays with the address the session was admitted
// under (the front end's).

// xclientAttrs are the attributes this server takes (XCLIENT_README).
var xclientAttrs = []string{"NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT"}

// xclientGate: XCLIENT exists only for xclient_from peers.
func (s *session) xclientGate() (smtp.Reply, bool) {
	if !s.xclientOK {
		return replyXNotAuthorized, false
	}
	return smtp.Reply{}, true
}

// refuseInTxn refuses XCLIENT and XFORWARD inside a mail transaction.
func refuseInTxn(*session, string) smtp.Reply { return replyXInTransaction }

// xclient is a parsed XCLIENT command: what it changes.
type xclient struct {
	name, helo, login, proto string
	nameSet, heloSet         bool
	loginSet                 bool
	addr                     netip.Addr // invalid: not given or [UNAVAILABLE]
	port                     int        // -1: not given
	dest                     string     // DESTADDR[:DESTPORT], for the log
}

// parseXClient checks every attribute before anything changes.
func parseXClient(arg string) (x xclient, r smtp.Reply, ok bool) {
	attrs, r, ok := parseAttrs("XCLIENT", arg, xclientAttrs)
	if !ok {
		return x, r, false
	}
	x.port = -1
	var destAddr, destPort string
	for _, a := range attrs {
		v, unknown := a.value, unavailable(a.value)
		switch a.name {
		case "NAME":
			if !unknown && !attrName(v) {
				return x, replyBadAttrValue("XCLIENT", a.name), false
			}
			x.nameSet, x.name = true, ifKnown(v, unknown)
		case "HELO":
			if !unknown && !attrName(v) {
				return x, replyBadAttrValue("XCLIENT", a.name), false
			}
			x.heloSet, x.helo = true, ifKnown(v, unknown)
		case "LOGIN":
			x.loginSet, x.login = true, ifKnown(v, unknown)
		case "ADDR":
			x.addr = netip.Addr{}
			if !unknown {
				if x.addr, ok = parseAttrAddr(v); !ok {
					return x, replyBadAttrValue("XCLIENT", a.name), false
				}
			}
		case "PORT":
			x.port = -1
			if !unknown {
				p, ok := parseAttrPort(v)
				if !ok {
					return x, replyBadAttrValue("XCLIENT", a.name), false
				}
				x.port = int(p)
			}
		case "PROTO":
			if !unknown {
				if x.proto, ok = parseAttrProto(v); !ok {
					return x, replyBadAttrValue("XCLIENT", a.name), false
				}
			}
		case "DESTADDR":
			destAddr = v
		case "DESTPORT":
			destPort = v
		}
	}
	x.dest = destAddr
	if destPort != "" {
		x.dest = net.JoinHostPort(destAddr, destPort)
	}
	return x, smtp.Reply{}, true
}

func ifKnown(v string, unknown bool) string {
	if unknown {
		return ""
	}
	return v
}

// cmdXClient applies XCLIENT and starts the session over. The gate runs
// first: a peer that may not use XCLIENT learns nothing of its syntax.
func (s *session) cmdXClient(arg string) {
	x, r, ok := parseXClient(arg)
	if !ok {
		s.reply(r)
		return
	}
	prev := s.info.Remote
	s.abortTxn()
	s.disconnectHook()
	s.state, s.esmtp = stateGreeted, false
	s.info.Helo, s.info.AuthUser, s.fwd = "", "", forwarded{}
	if x.heloSet {
		s.info.Helo = x.helo
	}
	if x.nameSet {
		s.info.ClientName = x.name
	} else if x.addr.IsValid() {
		s.info.ClientName = "" // the name was the old address's
	}
	if x.loginSet {
		s.info.AuthUser = x.login
	}
	if x.addr.IsValid() || x.port >= 0 {
		s.setClient(xclientAddr(prev, x))
	}
	s.log.Info("xclient", "front_end", prev.String(), "name", s.info.ClientName, "helo", s.info.Helo,
		"login", s.info.AuthUser, "proto", x.proto, "dest", x.dest, "trusted", s.info.Trusted)
	if !s.connectHook() {
		return // its refusal was sent instead of the greeting
	}
	s.reply(replyGreeting(s.srv.opts.Hostname))
}

// xclientAddr is the client address after XCLIENT: ADDR and PORT where
// given, the previous ones where not.
func xclientAddr(prev net.Addr, x xclient) net.Addr {
	ap := netip.AddrPort{}
	if ta, ok := prev.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	}
	ip, port := ap.Addr().Unmap(), ap.Port()
	if x.addr.IsValid() {
		ip = x.addr
	}
	if x.port >= 0 {
		port = uint16(x.port)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, port))
}
