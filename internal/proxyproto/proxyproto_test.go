package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// v2 builds a version 2 header: ver_cmd, fam, then body (addresses and
// TLVs), with the length filled in.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	b := append([]byte(nil), sigV2...)
	b = append(b, verCmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-v2Fixed))
	return b
}

func inet4(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

func inet6(src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := append(s[:], d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

func tlv(typ byte, val []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(val))), val...)
}

// withCRC appends a CRC32C TLV (§2.2.5) that matches, or not.
func withCRC(h []byte, good bool) []byte {
	h = append(h, tlv(tlvCRC32C, make([]byte, 4))...)
	binary.BigEndian.PutUint16(h[14:16], uint16(len(h)-v2Fixed))
	sum := crc32.Checksum(h, castagnoli)
	if !good {
		sum++
	}
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParse(t *testing.T) {
	longV6 := "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"
	tests := []struct {
		name     string
		in       []byte
		want     Header
		n        int   // octets taken; -1 means len(in)
		err      error // ErrIncomplete etc.; invalidErr for *InvalidError
		trailing string
	}{
		// proxy-protocol.txt §2.1, the examples.
		{name: "v1 tcp4", in: []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), n: -1,
			want: Header{Version: 1, Source: ap("192.168.0.1:56324"), Destination: ap("192.168.0.11:443")}},
		{name: "v1 tcp6", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 4711 25\r\n"), n: -1,
			want: Header{Version: 1, Source: ap("[2001:db8::1]:4711"), Destination: ap("[2001:db8::2]:25")}},
		{name: "v1 unknown", in: []byte("PROXY UNKNOWN\r\n"), n: -1, want: Header{Version: 1}},
		{name: "v1 unknown with addresses ignored", in: []byte("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"), n: -1, want: Header{Version: 1}},
		{name: "v1 unknown longest", in: []byte(strings.Replace(longV6, "f...f", strings.Repeat("ffff:", 6)[:29], 2)), n: -1, want: Header{Version: 1}},
		{name: "v1 then data", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1 25\r\nEHLO x\r\n"), n: 35, trailing: "EHLO x\r\n",
			want: Header{Version: 1, Source: ap("10.0.0.1:1"), Destination: ap("10.0.0.2:25")}},
		{name: "v1 port 0 and 65535", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 0 65535\r\n"), n: -1,
			want: Header{Version: 1, Source: ap("10.0.0.1:0"), Destination: ap("10.0.0.2:65535")}},
		{name: "v1 prefix", in: []byte("PROXY TCP4 10.0.0.1"), err: ErrIncomplete},
		{name: "v1 signature prefix", in: []byte("PRO"), err: ErrIncomplete},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "v1 bare LF", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1 25\n"), err: invalidErr},
		{name: "v1 no CRLF in 107", in: []byte("PROXY UNKNOWN " + strings.Repeat("x", 100)), err: ErrTooLong},
		{name: "v1 108 octets", in: []byte("PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r\n"), err: ErrTooLong},
		{name: "v1 lower case", in: []byte("PROXY tcp4 10.0.0.1 10.0.0.2 1 25\r\n"), err: invalidErr},
		{name: "v1 UDP4", in: []byte("PROXY UDP4 10.0.0.1 10.0.0.2 1 25\r\n"), err: invalidErr},
		{name: "v1 family mismatch", in: []byte("PROXY TCP4 2001:db8::1 10.0.0.2 1 25\r\n"), err: invalidErr},
		{name: "v1 v6 as tcp4 dst", in: []byte("PROXY TCP6 2001:db8::1 10.0.0.2 1 25\r\n"), err: invalidErr},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 25\r\n"), err: invalidErr},
		{name: "v1 two spaces", in: []byte("PROXY TCP4  10.0.0.1 10.0.0.2 1 25\r\n"), err: invalidErr},
		{name: "v1 missing port", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n"), err: invalidErr},
		{name: "v1 extra field", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1 25 x\r\n"), err: invalidErr},
		{name: "v1 port too big", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 65536 25\r\n"), err: invalidErr},
		{name: "v1 port leading zero", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 025 25\r\n"), err: invalidErr},
		{name: "v1 port sign", in: []byte("PROXY TCP4 10.0.0.1 10.0.0.2 +25 25\r\n"), err: invalidErr},
		{name: "v1 ipv4 leading zero", in: []byte("PROXY TCP4 010.0.0.1 10.0.0.2 1 25\r\n"), err: invalidErr},
		{name: "v1 unknownx", in: []byte("PROXY UNKNOWNX\r\n"), err: invalidErr},
		{name: "smtp", in: []byte("EHLO client.example\r\n"), err: ErrNotProxy},
		{name: "tls client hello", in: []byte{0x16, 0x03, 0x01, 0x02, 0x00}, err: ErrNotProxy},
		{name: "http", in: []byte("GET / HTTP/1.1\r\n"), err: ErrNotProxy},

		// §2.2, the binary form.
		{name: "v2 tcp4", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 40000, 25)), n: -1,
			want: Header{Version: 2, Source: ap("192.0.2.7:40000"), Destination: ap("198.51.100.1:25")}},
		{name: "v2 tcp6", in: v2(0x21, 0x21, inet6("2001:db8::7", "2001:db8::1", 40000, 465)), n: -1,
			want: Header{Version: 2, Source: ap("[2001:db8::7]:40000"), Destination: ap("[2001:db8::1]:465")}},
		{name: "v2 then tls", in: append(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 465)), 0x16, 0x03), n: 28, trailing: "\x16\x03",
			want: Header{Version: 2, Source: ap("192.0.2.7:1"), Destination: ap("198.51.100.1:465")}},
		{name: "v2 local", in: v2(0x20, 0x00), n: -1, want: Header{Version: 2}},
		{name: "v2 local ignores family and block", in: v2(0x20, 0x12, []byte{1, 2, 3}), n: -1, want: Header{Version: 2}},
		{name: "v2 unspec", in: v2(0x21, 0x00), n: -1, want: Header{Version: 2}},
		{name: "v2 unix", in: v2(0x21, 0x31, make([]byte, lenUnix)), n: -1, want: Header{Version: 2}},
		{name: "v2 TLVs skipped", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25), tlv(0x01, []byte("h2")), tlv(0x04, make([]byte, 10)), tlv(0x20, nil)), n: -1,
			want: Header{Version: 2, Source: ap("192.0.2.7:1"), Destination: ap("198.51.100.1:25")}},
		{name: "v2 crc good", in: withCRC(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25)), true), n: -1,
			want: Header{Version: 2, Source: ap("192.0.2.7:1"), Destination: ap("198.51.100.1:25")}},
		{name: "v2 crc bad", in: withCRC(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25)), false), err: invalidErr},
		{name: "v2 truncated TLV", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25), []byte{0x01, 0x00}), err: invalidErr},
		{name: "v2 TLV overrun", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25), []byte{0x01, 0x00, 0x09, 'x'}), err: invalidErr},
		{name: "v2 short address block", in: v2(0x21, 0x11, make([]byte, 11)), err: invalidErr},
		{name: "v2 short inet6 block", in: v2(0x21, 0x21, make([]byte, 12)), err: invalidErr},
		{name: "v2 version 1 nibble", in: v2(0x11, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25)), err: invalidErr},
		{name: "v2 command 2", in: v2(0x22, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25)), err: invalidErr},
		{name: "v2 udp4", in: v2(0x21, 0x12, inet4("192.0.2.7", "198.51.100.1", 1, 25)), err: invalidErr},
		{name: "v2 family 4", in: v2(0x21, 0x41, make([]byte, 12)), err: invalidErr},
		{name: "v2 inet without transport", in: v2(0x21, 0x10, inet4("192.0.2.7", "198.51.100.1", 1, 25)), err: invalidErr},
		{name: "v2 fixed part only", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25))[:16], err: ErrIncomplete},
		{name: "v2 signature only", in: sigV2, err: ErrIncomplete},
		{name: "v2 over MaxV2", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25), tlv(0x04, make([]byte, MaxV2)))[:40], err: ErrTooLong},
		{name: "v2 exactly MaxV2", in: v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25), tlv(0x04, make([]byte, MaxV2-v2Fixed-lenInet-3))), n: -1,
			want: Header{Version: 2, Source: ap("192.0.2.7:1"), Destination: ap("198.51.100.1:25")}},
		{name: "v2 broken signature", in: append([]byte("\r\n\r\n\x00\r\nQUIX\n"), 0x21, 0x11, 0, 0), err: ErrNotProxy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse(tt.in)
			if tt.err != nil {
				var ie *InvalidError
				if tt.err == invalidErr && !errors.As(err, &ie) || tt.err != invalidErr && err != tt.err {
					t.Fatalf("Parse(%q) = %+v, %d, %v; want error %v", tt.in, h, n, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			wantN := tt.n
			if wantN < 0 {
				wantN = len(tt.in)
			}
			if h != tt.want || n != wantN {
				t.Fatalf("Parse(%q) = %+v, %d; want %+v, %d", tt.in, h, n, tt.want, wantN)
			}
			if got := string(tt.in[n:]); got != tt.trailing {
				t.Fatalf("after the header: %q, want %q", got, tt.trailing)
			}
			if h.HasAddresses() != tt.want.Source.IsValid() {
				t.Fatalf("HasAddresses = %v", h.HasAddresses())
			}
		})
	}
}

// invalidErr stands for any *InvalidError in the table.
var invalidErr = errors.New("invalid")

// oneByte hands out one octet per Read, as a slow peer would.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(b []byte) (int, error) { return o.r.Read(b[:min(1, len(b))]) }

func TestRead(t *testing.T) {
	hdr := v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 40000, 465))
	tests := []struct {
		name    string
		r       io.Reader
		want    Header
		rest    string
		wantErr bool
	}{
		{name: "v1 in one read, with the data after it", r: strings.NewReader("PROXY TCP4 10.0.0.1 10.0.0.2 1 25\r\nQUIT\r\n"),
			want: Header{Version: 1, Source: ap("10.0.0.1:1"), Destination: ap("10.0.0.2:25")}, rest: "QUIT\r\n"},
		{name: "v1 a byte at a time", r: oneByte{strings.NewReader("PROXY TCP4 10.0.0.1 10.0.0.2 1 25\r\nQUIT\r\n")},
			want: Header{Version: 1, Source: ap("10.0.0.1:1"), Destination: ap("10.0.0.2:25")}},
		{name: "v2 and the ClientHello", r: bytes.NewReader(append(hdr, 0x16, 0x03, 0x01)),
			want: Header{Version: 2, Source: ap("192.0.2.7:40000"), Destination: ap("198.51.100.1:465")}, rest: "\x16\x03\x01"},
		{name: "v2 a byte at a time", r: oneByte{bytes.NewReader(hdr)},
			want: Header{Version: 2, Source: ap("192.0.2.7:40000"), Destination: ap("198.51.100.1:465")}},
		{name: "eof inside", r: strings.NewReader("PROXY TCP4 10.0.0.1"), wantErr: true},
		{name: "eof at once", r: strings.NewReader(""), wantErr: true},
		{name: "smtp client", r: strings.NewReader("EHLO x\r\n"), wantErr: true},
		{name: "endless v1", r: oneByte{strings.NewReader("PROXY " + strings.Repeat("x", 5000))}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rest, err := Read(tt.r)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Read = %+v, want an error", h)
				}
				return
			}
			if err != nil || h != tt.want || string(rest) != tt.rest {
				t.Fatalf("Read = %+v, %q, %v; want %+v, %q", h, rest, err, tt.want, tt.rest)
			}
		})
	}
}
