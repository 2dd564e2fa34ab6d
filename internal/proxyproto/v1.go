package proxyproto

import (
	"bytes"
	"net/netip"
	"strconv"
)

// parseV1 parses the text form (proxy-protocol.txt §2.1):
//
//	"PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP srcport SP dstport CRLF
//	"PROXY" SP "UNKNOWN" [ anything up to the CRLF ] CRLF
//
// single spaces, addresses in the family the protocol names, ports
// decimal 0..65535, the whole line at most MaxV1 octets.
func parseV1(b []byte) (Header, int, error) {
	end := bytes.IndexByte(b[:min(len(b), MaxV1)], '\n')
	if end < 0 {
		if len(b) >= MaxV1 {
			return Header{}, 0, ErrTooLong
		}
		return Header{}, 0, ErrIncomplete
	}
	if end == 0 || b[end-1] != '\r' {
		return Header{}, 0, invalid(1, "line does not end in CRLF")
	}
	line := b[len(sigV1) : end-1]
	n := end + 1
	h := Header{Version: 1}
	if bytes.HasPrefix(line, []byte("UNKNOWN")) && (len(line) == 7 || line[7] == ' ') {
		// §2.1: the receiver must ignore anything after UNKNOWN and use
		// the connection's own endpoints.
		return h, n, nil
	}
	f := bytes.Split(line, []byte(" "))
	if len(f) != 5 {
		return Header{}, 0, invalid(1, "want 5 fields after PROXY, got %d", len(f))
	}
	var want6 bool
	switch string(f[0]) {
	case "TCP4":
	case "TCP6":
		want6 = true
	default:
		return Header{}, 0, invalid(1, "unknown protocol %q", printable(f[0]))
	}
	src, err := v1Addr(f[1], want6)
	if err != nil {
		return Header{}, 0, err
	}
	dst, err := v1Addr(f[2], want6)
	if err != nil {
		return Header{}, 0, err
	}
	sport, err := v1Port(f[3])
	if err != nil {
		return Header{}, 0, err
	}
	dport, err := v1Port(f[4])
	if err != nil {
		return Header{}, 0, err
	}
	h.Source, h.Destination = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	return h, n, nil
}

// v1Addr parses an address of the family TCP4 or TCP6 named: dotted IPv4,
// or IPv6 text form without a zone.
func v1Addr(b []byte, want6 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	switch {
	case err != nil:
		return netip.Addr{}, invalid(1, "bad address %q", printable(b))
	case a.Zone() != "":
		return netip.Addr{}, invalid(1, "address %q has a zone", printable(b))
	case want6 != a.Is6():
		return netip.Addr{}, invalid(1, "address %q is not of the protocol's family", printable(b))
	}
	return a, nil
}

// v1Port parses a decimal port, 0..65535, digits only (§2.1: no sign, no
// leading zeros).
func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, invalid(1, "bad port %q", printable(b))
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, invalid(1, "bad port %q", printable(b))
		}
	}
	p, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, invalid(1, "port %q out of range", printable(b))
	}
	return uint16(p), nil
}

// printable is a peer's octets made safe for an error message.
func printable(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}
