package server

// The Received trace header the server prepends to every message it
// accepts (RFC 5321 §4.4).

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"time"
)

// appendReceived appends the Received header for a message (RFC 5321 §4.4)
// to b, with the protocol keywords of RFC 3848 and RFC 6531 §3.7.3, and
// the TLS version and cipher in a comment, dated when the data began
// (txn.started, which begin has just set). It runs for every message, so
// it appends instead of formatting.
func (s *session) appendReceived(b []byte, id string) []byte {
	b = append(b, "Received: from "...)
	if f := &s.fwd; f.set && f.addr.IsValid() {
		// XFORWARD: the original client in the from clause, the peer
		// that relayed it in a comment (CFWS before "by", RFC 5321 §4.4).
		b = appendFrom(b, f.helo, f.name, net.TCPAddrFromAddrPort(netip.AddrPortFrom(f.addr, 0)))
		b = append(b, "\r\n\t(forwarded by "...)
		b = appendFrom(b, s.info.Helo, s.info.ClientName, s.info.Remote)
		b = append(b, ')')
	} else {
		b = appendFrom(b, s.info.Helo, s.info.ClientName, s.info.Remote)
	}
	b = append(b, "\r\n\tby "...)
	b = append(b, s.srv.opts.Hostname...)
	b = append(b, " (smtpkit) with "...)
	b = s.appendProtocolKeyword(b)
	b = append(b, " id "...)
	b = append(b, id...)
	if st := s.info.TLS; st != nil {
		b = append(b, "\r\n\t(using "...)
		b = append(b, tls.VersionName(st.Version)...)
		b = append(b, " with cipher "...)
		b = append(b, tls.CipherSuiteName(st.CipherSuite)...)
		b = append(b, ')')
	}
	if len(s.txn.rcpts) == 1 {
		b = append(b, "\r\n\tfor <"...)
		b = s.txn.rcpts[0].AppendTo(b)
		b = append(b, '>')
	}
	b = append(b, ";\r\n\t"...)
	b = s.txn.started.AppendFormat(b, time.RFC1123Z)
	return append(b, "\r\n"...)
}

// appendFrom appends the client part of the from clause (RFC 5321 §4.4
// Extended-Domain): the HELO name ("unknown" when none), then in
// parentheses the host name if a front end told it and the address
// literal.
func appendFrom(b []byte, helo, name string, a net.Addr) []byte {
	if helo == "" {
		helo = "unknown"
	}
	b = appendSanitized(b, helo)
	b = append(b, " ("...)
	if name != "" {
		b = appendSanitized(b, name)
		b = append(b, ' ')
	}
	b = appendAddrLiteral(b, a)
	return append(b, ')')
}

// appendProtocolKeyword appends the "with" keyword: ESMTP plus S for TLS
// and A for AUTH (RFC 3848), UTF8SMTP… when SMTPUTF8 was used (RFC 6531
// §3.7.3).
func (s *session) appendProtocolKeyword(b []byte) []byte {
	if !s.esmtp {
		return append(b, "SMTP"...)
	}
	if s.txn.smtputf8 {
		b = append(b, "UTF8SMTP"...)
	} else {
		b = append(b, "ESMTP"...)
	}
	if s.info.TLS != nil {
		b = append(b, 'S')
	}
	if s.info.AuthUser != "" {
		b = append(b, 'A')
	}
	return b
}

// appendAddrLiteral appends the client's address as an RFC 5321 §4.1.3
// address literal: [192.0.2.1] or [IPv6:2001:db8::1].
func appendAddrLiteral(b []byte, a net.Addr) []byte {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			ip = ip.Unmap()
			b = append(b, '[')
			if ip.Is6() {
				b = append(b, "IPv6:"...)
			}
			return append(ip.AppendTo(b), ']')
		}
	}
	return append(b, addrLiteral(a)...)
}

func addrLiteral(a net.Addr) string {
	ip := remoteIP(a)
	if strings.Contains(ip, ":") {
		return "[IPv6:" + ip + "]"
	}
	return "[" + ip + "]"
}

// appendSanitized appends a peer-supplied string (at most 255 octets of
// it) so that it cannot break the header: only printable ASCII survives,
// anything else, each parenthesis and each non-ASCII character become '?'.
func appendSanitized(b []byte, v string) []byte {
	if len(v) > 255 {
		v = v[:255]
	}
	for _, r := range v {
		if r < 0x21 || r > 0x7e || r == '(' || r == ')' {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return b
}
