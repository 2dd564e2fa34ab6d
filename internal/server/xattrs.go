package server

import (
	"net/netip"
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
)

// xattrs.go: the attribute lists of Postfix's XCLIENT and XFORWARD
// commands (XCLIENT_README, XFORWARD_README):
//
//	command   = verb 1*( SP attribute-name "=" attribute-value )
//	attribute-value = xtext (RFC 3461 §4)
//
// names case-insensitive; a value of [UNAVAILABLE] (or, for NAME,
// [TEMPUNAVAIL]) says that the front end does not know it.

// maxAttrs bounds the attributes of one command (each may come once or
// more; the last wins). The line length bounds them too.
const maxAttrs = 16

// attr is one attribute as the command gave it, its value xtext-decoded.
type attr struct {
	name  string // upper case
	value string
}

// unavailable reports whether a decoded value says "not known".
func unavailable(v string) bool {
	return strings.EqualFold(v, "[UNAVAILABLE]") || strings.EqualFold(v, "[TEMPUNAVAIL]")
}

// parseAttrs splits and decodes an attribute list, accepting only the
// names in known. The reply is the refusal when ok is false: 501 5.5.4
// for a missing list, an unknown name or a value that is not xtext.
func parseAttrs(verb, arg string, known []string) (attrs []attr, r smtp.Reply, ok bool) {
	fields := strings.Fields(arg)
	if len(fields) == 0 || len(fields) > maxAttrs {
		return nil, replyAttrSyntax(verb), false
	}
	for _, f := range fields {
		name, value, found := strings.Cut(f, "=")
		name = strings.ToUpper(name)
		if !found || !contains(known, name) {
			return nil, replyBadAttrName(verb, name), false
		}
		v, err := smtp.DecodeXtext(value)
		if err != nil || strings.ContainsAny(v, "\x00\r\n") {
			return nil, replyBadAttrValue(verb, name), false
		}
		attrs = append(attrs, attr{name: name, value: v})
	}
	return attrs, smtp.Reply{}, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseAttrAddr parses an ADDR value: dotted IPv4, or IPv6 after the
// "IPV6:" prefix Postfix writes (a bare IPv6 address is taken too).
func parseAttrAddr(v string) (netip.Addr, bool) {
	if len(v) > 5 && strings.EqualFold(v[:5], "IPV6:") {
		v = v[5:]
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseAttrPort parses a PORT value, 0..65535.
func parseAttrPort(v string) (uint16, bool) {
	if v == "" || len(v) > 5 {
		return 0, false
	}
	p, err := strconv.ParseUint(v, 10, 16)
	return uint16(p), err == nil
}

// parseAttrProto parses PROTO: SMTP or ESMTP, in any case.
func parseAttrProto(v string) (string, bool) {
	switch p := strings.ToUpper(v); p {
	case "SMTP", "ESMTP":
		return p, true
	}
	return "", false
}

// attrName checks a host name value (NAME, HELO): printable ASCII without
// spaces, at most 255 octets. The Received field sanitizes it again.
func attrName(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	return true
}
