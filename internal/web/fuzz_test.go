package web

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// FuzzLocalHost: whatever the Host header, localHost says yes only for a
// loopback address literal or localhost, with or without a port.
func FuzzLocalHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9325", "localhost", "[::1]:80", "LOCALHOST:1", "127.17.7.1", "evil.example", "127.0.0.1.nip.io", "[::ffff:127.0.0.1]:9", "", ":", "[", "0x7f000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !localHost(host) {
			return
		}
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if strings.EqualFold(h, "localhost") {
			return
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Unmap().IsLoopback() {
			t.Fatalf("localHost(%q) = true for %q", host, h)
		}
	})
}
