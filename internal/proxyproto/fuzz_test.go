package proxyproto

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, never takes more than it was given nor
// more than MaxV1/MaxV2, and is stable: a header it accepts parses the
// same from exactly its own octets, every shorter prefix of it is
// incomplete, and Read finds it a byte at a time too.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
		"PROXY TCP6 2001:db8::1 2001:db8::2 4711 25\r\nEHLO x\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY TCP4 10.0.0.1 10.0.0.2 65536 25\r\n",
		"EHLO x\r\n",
		string(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25))),
		string(v2(0x21, 0x21, inet6("2001:db8::7", "2001:db8::1", 1, 25), tlv(0x01, []byte("h2")))),
		string(v2(0x20, 0x00)),
		string(withCRC(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 25)), true)),
		string(v2(0x21, 0x31, make([]byte, lenUnix))),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			var ie *InvalidError
			if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrNotProxy) && !errors.Is(err, ErrTooLong) && !errors.As(err, &ie) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if n <= 0 || n > len(b) || n > max(MaxV1, MaxV2) || h.Version == 1 && n > MaxV1 {
			t.Fatalf("took %d of %d octets (version %d)", n, len(b), h.Version)
		}
		if h.Source.IsValid() != h.Destination.IsValid() {
			t.Fatalf("one address without the other: %+v", h)
		}
		h2, n2, err := Parse(b[:n])
		if err != nil || h2 != h || n2 != n {
			t.Fatalf("own octets parse as %+v, %d, %v; first %+v, %d", h2, n2, err, h, n)
		}
		for k := range n {
			if _, _, err := Parse(b[:k]); err != ErrIncomplete {
				t.Fatalf("prefix of %d octets: %v, want ErrIncomplete", k, err)
			}
		}
		h3, rest, err := Read(oneByte{bytes.NewReader(b)})
		if err != nil || h3 != h || len(rest) != 0 {
			t.Fatalf("Read a byte at a time: %+v, %q, %v", h3, rest, err)
		}
	})
}
