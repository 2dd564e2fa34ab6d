// Package proxyproto reads the PROXY protocol header a load balancer
// (HAProxy, and others that speak it) puts in front of a proxied TCP
// connection to carry the client's address: the text form of version 1
// and the binary form of version 2, as haproxy's proxy-protocol.txt
// specifies them (section 2.1 and 2.2). It parses; the server decides
// whom to believe (proxy_from) and what to do with the address.
//
// Both forms are bounded: a version 1 line is at most 107 octets with its
// CRLF (§2.1), a version 2 header at most MaxV2 octets here (16 fixed
// octets and the address block with its TLVs, which this package skips
// after checking their framing).
package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Header is what one PROXY header says.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Source and Destination are the client's and the proxy's addresses
	// as the proxy saw them. They are the zero value when the header
	// carries none (HasAddresses): version 1 UNKNOWN, version 2 LOCAL
	// (the proxy's own health check) or a family other than TCP over
	// IPv4 and IPv6 (AF_UNSPEC, AF_UNIX). The receiver then uses the
	// connection's own endpoints (§2.1, §2.2).
	Source, Destination netip.AddrPort
}

// HasAddresses reports whether the header carries the client's address.
func (h Header) HasAddresses() bool { return h.Source.IsValid() }

// Limits of the two forms.
const (
	// MaxV1 is the longest version 1 line with its CRLF (§2.1: "PROXY
	// UNKNOWN" with two maximal IPv6 addresses and ports is 107).
	MaxV1 = 107
	// MaxV2 bounds a version 2 header: 16 fixed octets and up to 1008
	// octets of addresses and TLVs. The protocol allows 65535; HAProxy's
	// own TLVs (ALPN, authority, SSL, unique id, CRC) fit many times.
	MaxV2 = 1024
)

// Errors of Parse and Read. Every one but ErrIncomplete means that the
// connection must be closed: it did not begin with a PROXY header.
var (
	// ErrIncomplete: b is a prefix of a header; more octets are needed.
	ErrIncomplete = errors.New("proxyproto: incomplete header")
	// ErrNotProxy: the octets are not the start of a PROXY header at all
	// (a client speaking SMTP, or TLS, straight to the port).
	ErrNotProxy = errors.New("proxyproto: no PROXY protocol signature")
	// ErrTooLong: the header is over MaxV1 or MaxV2.
	ErrTooLong = errors.New("proxyproto: header too long")
)

// InvalidError is a header that began with a signature but breaks the
// specification; Reason says how.
type InvalidError struct {
	Version int
	Reason  string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("proxyproto: invalid version %d header: %s", e.Version, e.Reason)
}

func invalid(version int, format string, args ...any) error {
	return &InvalidError{Version: version, Reason: fmt.Sprintf(format, args...)}
}

// The signatures: version 1 lines begin with "PROXY " (§2.1), version 2
// headers with twelve fixed octets (§2.2), chosen so that neither can be
// the start of a valid request of the usual protocols.
var (
	sigV1 = []byte("PROXY ")
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// Parse parses the header at the start of b and returns it with the
// number of octets it took; what follows belongs to the proxied protocol.
// When b is a proper prefix of a header it returns ErrIncomplete.
func Parse(b []byte) (Header, int, error) {
	switch {
	case hasPrefix(b, sigV2):
		return parseV2(b)
	case hasPrefix(b, sigV1):
		return parseV1(b)
	case bytes.HasPrefix(sigV2, b) || bytes.HasPrefix(sigV1, b):
		return Header{}, 0, ErrIncomplete // b is shorter than either signature
	}
	return Header{}, 0, ErrNotProxy
}

func hasPrefix(b, sig []byte) bool { return len(b) >= len(sig) && bytes.Equal(b[:len(sig)], sig) }

// Read reads one header from r, which should have a read deadline (a peer
// that sends nothing must not hold the reader). It reads in as few calls
// as the peer allows and may read past the header: those octets are
// returned in rest, and belong ahead of whatever r gives next (the TLS
// ClientHello of an implicit-TLS listener often arrives in the same
// segment).
func Read(r io.Reader) (h Header, rest []byte, err error) {
	buf := make([]byte, 0, MaxV2)
	for {
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, used, err := Parse(buf)
		if err == nil {
			return h, buf[used:], nil
		}
		if err != ErrIncomplete {
			return Header{}, nil, err
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return Header{}, nil, fmt.Errorf("proxyproto: reading header: %w", rerr)
		}
		if len(buf) == cap(buf) {
			return Header{}, nil, ErrTooLong // cannot happen: Parse bounds both forms
		}
	}
}
