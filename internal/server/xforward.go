package server

import (
	"log/slog"
	"net/netip"

	"smtpkit/internal/smtp"
)

// xforward.go: XFORWARD, Postfix's command by which an MTA or content
// filter in front (Postfix's smtp client with smtp_send_xforward_command
// = yes) passes on the original client of the message it relays
// (XFORWARD_README). It changes only what is recorded — the "message
// accepted" log line and the Received field name the original client,
// with the relaying peer kept in a comment — never policy: relay rights,
// limits and checks stay with the real peer. Advertised and accepted only
// from Listener.XClientFrom, outside a mail transaction; the attributes
// add up over several commands and are forgotten at the end of the
// transaction (end of data, RSET, HELO/EHLO), as XFORWARD_README says.

// xforwardAttrs are the attributes this server takes (XFORWARD_README).
var xforwardAttrs = []string{"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"}

// forwarded is what XFORWARD said about the transaction's original
// client; "" = not said or [UNAVAILABLE].
type forwarded struct {
	set                                 bool
	name, port, proto, helo, ident, src string
	addr                                netip.Addr
}

// apply adds the command's attributes to f.
func (f *forwarded) apply(arg string) (smtp.Reply, bool) {
	attrs, r, ok := parseAttrs("XFORWARD", arg, xforwardAttrs)
	if !ok {
		return r, false
	}
	for _, a := range attrs {
		v := ifKnown(a.value, unavailable(a.value))
		switch a.name {
		case "NAME", "HELO":
			if v != "" && !attrName(v) {
				return replyBadAttrValue("XFORWARD", a.name), false
			}
			if a.name == "NAME" {
				f.name = v
			} else {
				f.helo = v
			}
		case "ADDR":
			f.addr = netip.Addr{}
			if v != "" {
				if f.addr, ok = parseAttrAddr(v); !ok {
					return replyBadAttrValue("XFORWARD", a.name), false
				}
			}
		case "PORT":
			if _, ok := parseAttrPort(v); v != "" && !ok {
				return replyBadAttrValue("XFORWARD", a.name), false
			}
			f.port = v
		case "PROTO":
			if v != "" && !attrName(v) {
				return replyBadAttrValue("XFORWARD", a.name), false
			}
			f.proto = v
		case "IDENT":
			if v != "" && !attrName(v) {
				return replyBadAttrValue("XFORWARD", a.name), false
			}
			f.ident = v
		case "SOURCE":
			switch v {
			case "", "LOCAL", "REMOTE":
			default:
				return replyBadAttrValue("XFORWARD", a.name), false
			}
			f.src = v
		}
	}
	f.set = true
	return smtp.Reply{}, true
}

// cmdXForward records the attributes for the transaction to come; a
// command with a bad attribute changes nothing.
func (s *session) cmdXForward(arg string) {
	f := s.fwd
	if r, ok := f.apply(arg); !ok {
		s.reply(r)
		return
	}
	s.fwd = f
	s.reply(replyOK)
}

// logAttrs are the forwarded client's fields of the "message accepted"
// line, none when XFORWARD was not given.
func (f *forwarded) logAttrs() []slog.Attr {
	if !f.set {
		return nil
	}
	var addr string
	if f.addr.IsValid() {
		addr = f.addr.String()
	}
	return []slog.Attr{slog.String("orig_client", addr), slog.String("orig_name", f.name),
		slog.String("orig_helo", f.helo), slog.String("orig_ident", f.ident), slog.String("orig_source", f.src)}
}
