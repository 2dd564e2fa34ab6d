package proxyproto

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
)

// The binary form (proxy-protocol.txt §2.2): the 12-octet signature, then
//
//	ver_cmd  1 octet: version (high nibble, 2) and command (low: 0 LOCAL, 1 PROXY)
//	fam      1 octet: address family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//	         and transport (low: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//	len      2 octets, big endian: the octets that follow (addresses, then TLVs)
//
// INET addresses are 12 octets (source, destination, source port,
// destination port), INET6 36, UNIX 216; TLVs (§2.2.1) follow them.
const (
	v2Fixed = 16

	cmdLocal = 0x0
	cmdProxy = 0x1

	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	transUnspec = 0x0
	transStream = 0x1

	lenInet  = 12
	lenInet6 = 36
	lenUnix  = 216

	// tlvCRC32C is PP2_TYPE_CRC32C (§2.2.5): the CRC-32c of the whole
	// header with this field's value zeroed.
	tlvCRC32C = 0x03
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func parseV2(b []byte) (Header, int, error) {
	if len(b) < v2Fixed {
		return Header{}, 0, ErrIncomplete
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return Header{}, 0, invalid(2, "version %d", verCmd>>4)
	}
	length := int(binary.BigEndian.Uint16(b[14:16]))
	if v2Fixed+length > MaxV2 {
		return Header{}, 0, ErrTooLong
	}
	n := v2Fixed + length
	if len(b) < n {
		return Header{}, 0, ErrIncomplete
	}
	body := b[v2Fixed:n]
	h := Header{Version: 2}
	cmd, af, trans := verCmd&0xf, fam>>4, fam&0xf
	switch cmd {
	case cmdLocal:
		// §2.2: the proxy's own connection (a health check): the receiver
		// must use the real endpoints and discard the whole block, the
		// family included.
		return h, n, nil
	case cmdProxy:
	default:
		return Header{}, 0, invalid(2, "command %#x", cmd)
	}
	var addrLen int
	switch af {
	case famUnspec:
	case famInet:
		addrLen = lenInet
	case famInet6:
		addrLen = lenInet6
	case famUnix:
		addrLen = lenUnix
	default:
		return Header{}, 0, invalid(2, "address family %#x", af)
	}
	if trans != transUnspec && trans != transStream {
		// §2.2: DGRAM (or anything else) is no TCP connection's header.
		return Header{}, 0, invalid(2, "transport %#x is not a stream", trans)
	}
	if af != famUnspec && trans == transUnspec || af == famUnspec && trans != transUnspec {
		return Header{}, 0, invalid(2, "family %#x with transport %#x", af, trans)
	}
	if len(body) < addrLen {
		return Header{}, 0, invalid(2, "length %d is short of the %d octets of the addresses", length, addrLen)
	}
	if err := checkTLVs(b[:n], v2Fixed+addrLen); err != nil {
		return Header{}, 0, err
	}
	// §2.2: for UNSPEC and UNIX the receiver uses the connection's own
	// endpoints.
	switch af {
	case famInet:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case famInet6:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	}
	return h, n, nil
}

// checkTLVs walks the TLVs of header (the whole header, from the
// signature) from off: each is a type octet, a two-octet length and that
// many octets, and the last must end where the header does. A CRC-32c TLV
// (§2.2.5) must match. The walk is bounded by MaxV2: every TLV takes at
// least three octets.
func checkTLVs(header []byte, off int) error {
	for off < len(header) {
		if len(header)-off < 3 {
			return invalid(2, "truncated TLV at offset %d", off)
		}
		typ, l := header[off], int(binary.BigEndian.Uint16(header[off+1:off+3]))
		if off+3+l > len(header) {
			return invalid(2, "TLV type %#x of %d octets overruns the header", typ, l)
		}
		if typ == tlvCRC32C {
			if l != 4 {
				return invalid(2, "CRC32C TLV of %d octets", l)
			}
			if !crcMatches(header, off+3) {
				return invalid(2, "CRC32C mismatch")
			}
		}
		off += 3 + l
	}
	return nil
}

// crcMatches checks the CRC-32c at header[at:at+4] against the header
// computed with those four octets zeroed.
func crcMatches(header []byte, at int) bool {
	want := binary.BigEndian.Uint32(header[at : at+4])
	crc := crc32.Update(0, castagnoli, header[:at])
	crc = crc32.Update(crc, castagnoli, []byte{0, 0, 0, 0})
	crc = crc32.Update(crc, castagnoli, header[at+4:])
	return crc == want
}
