package greylist

import (
	"net/netip"
	"strings"
)

// Triplet is what greylisting remembers about a delivery attempt: the
// client's network, the envelope sender and the recipient (the "triplet"
// of Harris's 2003 paper, as postgrey and milter-greylist key it).
//
// The client is its /24 (IPv4) or /64 (IPv6), not its address: a large
// sender retries from another host of the same farm, and an IPv6 host
// may change its interface identifier between attempts.
type Triplet struct {
	Net    netip.Prefix
	Sender string // normalized (NormalizeSender)
	Rcpt   string // lower-cased
}

// Prefix lengths of the client network (issue #15).
const (
	v4Bits = 24
	v6Bits = 64
)

// NewTriplet builds the triplet of a client address, an envelope sender
// ("" for the null reverse-path) and a recipient, as "local@domain".
func NewTriplet(ip netip.Addr, sender, rcpt string) Triplet {
	return Triplet{Net: Network(ip), Sender: NormalizeSender(sender), Rcpt: lowerASCII(rcpt)}
}

// Network is the client network ip belongs to: its /24 for IPv4 (also
// for an IPv4-mapped IPv6 address), its /64 for IPv6, the zero Prefix for
// the zero Addr.
func Network(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := v6Bits
	if ip.Is4() {
		bits = v4Bits
	}
	p, _ := ip.Prefix(bits)
	return p
}

// nullSender stands for the null reverse-path (RFC 5321 §4.5.5) in a
// triplet: bounces are greylisted like any other mail.
const nullSender = "<>"

// NormalizeSender maps the envelope senders that change with every
// message of one correspondent onto one key, so that the retry of a
// message (or the next message of a mailing list) finds the triplet of
// the first:
//
//   - the address is lower-cased (ASCII letters: RFC 5321 §2.4 leaves
//     the case of a local part to its domain, which is at worst one more
//     key); the null sender is "<>";
//   - an SRS address (SRS0=hash=tt=domain=local@forwarder, and SRS1
//     with its first forwarder) becomes the original sender
//     local@domain: the hash and timestamp change daily;
//   - a BATV tag (prvs=tag=local, msprvs1=tag=local, btv1==tag==local)
//     is removed: the tag changes with every message;
//   - a "+extension" of the local part is removed (sub-addressing and
//     VERP lists: list+bounce-123@…);
//   - every word of the local part (the runs between ".", "-", "_", "=")
//     that holds a digit becomes "#" (VERP and bounce-tracking serial
//     numbers: bounce-12345-joe=example.com@… → bounce-#-joe=example.com@…).
//
// The domain is kept as it is (lower-cased).
func NormalizeSender(addr string) string {
	if addr == "" || addr == nullSender {
		return nullSender
	}
	addr = lowerASCII(addr)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return maskDigits(stripExtension(stripBATV(addr)))
	}
	local, domain := addr[:at], addr[at+1:]
	if l, d, ok := decodeSRS(local); ok {
		local, domain = l, d
	}
	return maskDigits(stripExtension(stripBATV(local))) + "@" + domain
}

// decodeSRS returns the original sender an SRS local part carries (Shevek's
// "Sender Rewriting Scheme" paper, the format libsrs2 and internal/srs
// write): SRS0=HHHH=TT=domain=local and SRS1=HHHH=forwarder==HHHH=TT=domain=local.
// The first separator may also be "+" or "-".
func decodeSRS(local string) (l, domain string, ok bool) {
	if len(local) < 5 || !strings.HasPrefix(local, "srs") || !strings.ContainsRune("=+-", rune(local[4])) {
		return "", "", false
	}
	rest := local[5:]
	switch local[3] {
	case '0':
	case '1':
		// HHHH=forwarder==HHHH=TT=domain=local: after the first
		// forwarder comes the SRS0 part without its "SRS0".
		_, after, found := strings.Cut(rest, "==")
		if !found {
			return "", "", false
		}
		rest = after
	default:
		return "", "", false
	}
	// HHHH=TT=domain=local; the local part may hold "=" itself.
	f := strings.SplitN(rest, "=", 4)
	if len(f) != 4 || f[2] == "" || f[3] == "" {
		return "", "", false
	}
	return f[3], f[2], true
}

// stripBATV removes a BATV tag (draft-levine-smtp-batv-01 §4.1
// "prvs=tag=local", and the variants "msprvs1=" of some large senders and
// "btv1==tag==local" of Barracuda).
func stripBATV(local string) string {
	for _, p := range []struct{ prefix, sep string }{{"prvs=", "="}, {"msprvs1=", "="}, {"btv1==", "=="}} {
		if rest, ok := strings.CutPrefix(local, p.prefix); ok {
			if _, core, ok := strings.Cut(rest, p.sep); ok && core != "" {
				return core
			}
		}
	}
	return local
}

// stripExtension removes "+extension" from a local part.
func stripExtension(local string) string {
	if i := strings.IndexByte(local, '+'); i > 0 {
		return local[:i]
	}
	return local
}

// maskDigits replaces each word of local that holds a digit by "#".
func maskDigits(local string) string {
	var b strings.Builder
	b.Grow(len(local))
	word := func(w string) {
		if strings.ContainsAny(w, "0123456789") {
			b.WriteByte('#')
		} else {
			b.WriteString(w)
		}
	}
	start := 0
	for i := 0; i < len(local); i++ {
		if strings.IndexByte(".-_=", local[i]) >= 0 {
			word(local[start:i])
			b.WriteByte(local[i])
			start = i + 1
		}
	}
	word(local[start:])
	return b.String()
}

// lowerASCII lower-cases the ASCII letters of s, leaving other bytes
// (UTF-8 of RFC 6531 addresses, or anything else) as they are.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
