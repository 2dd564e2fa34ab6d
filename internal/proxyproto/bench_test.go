package proxyproto

import "testing"

// BenchmarkParse: the cost of a header, once per proxied connection.
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"v1", []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")},
		{"v2", v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 40000, 25))},
		{"v2 crc", withCRC(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 40000, 25)), true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, _, err := Parse(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
