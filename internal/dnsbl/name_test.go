package dnsbl

import (
	"net/netip"
	"testing"
)

// RFC 5782 §2.1 and §2.4 give the examples.
func TestQueryName(t *testing.T) {
	tests := []struct {
		ip, zone, want string
	}{
		{"192.0.2.99", "bad.example.com", "99.2.0.192.bad.example.com"},
		{"127.0.0.2", "zen.example", "2.0.0.127.zen.example"},
		{"::ffff:192.0.2.99", "bl.example", "99.2.0.192.bl.example"},
		{"2001:db8:1:2:3:4:567:89ab", "ugly.example.com",
			"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"},
		{"::1", "v6.example", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.v6.example"},
	}
	for _, tt := range tests {
		if got := QueryName(netip.MustParseAddr(tt.ip), tt.zone); got != tt.want {
			t.Errorf("QueryName(%s, %s) = %s, want %s", tt.ip, tt.zone, got, tt.want)
		}
	}
}

func TestListing(t *testing.T) {
	filter := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("127.0.0.8/29")}
	tests := []struct {
		name    string
		answers []netip.Prefix
		ips     []string
		want    string // "" = not listed
	}{
		{"plain", nil, []string{"127.0.0.2"}, "127.0.0.2"},
		{"any 127/8", nil, []string{"127.1.2.3"}, "127.1.2.3"},
		{"outside 127/8 ignored", nil, []string{"192.0.2.1"}, ""},
		{"error answer ignored", nil, []string{"127.255.255.254"}, ""},
		{"error then listing", nil, []string{"127.255.255.252", "127.0.0.4"}, "127.0.0.4"},
		{"127.0.0.1 is never a listing", nil, []string{"127.0.0.1"}, ""},
		{"ipv6 answer ignored", nil, []string{"::ffff:127.0.0.2", "::1"}, "127.0.0.2"},
		{"empty", nil, nil, ""},
		{"filter match", filter, []string{"127.0.0.2"}, "127.0.0.2"},
		{"filter prefix", filter, []string{"127.0.0.3", "127.0.0.11"}, "127.0.0.11"},
		{"filter miss", filter, []string{"127.0.0.3"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ips []netip.Addr
			for _, s := range tt.ips {
				ips = append(ips, netip.MustParseAddr(s))
			}
			got, ok := Zone{Name: "z", Answers: tt.answers}.listing(ips)
			if tt.want == "" {
				if ok {
					t.Fatalf("listed with %s, want not listed", got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Fatalf("listing = %s, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestSafeText(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct{ in, want string }{
		{"Listed by example, see https://example/q?ip=1", "Listed by example, see https://example/q?ip=1"},
		{"evil\r\n250 OK", "evil??250 OK"},
		{"caf\xc3\xa9", "caf??"},
		{string(long), string(long[:maxText])},
	}
	for _, tt := range tests {
		if got := safeText(tt.in); got != tt.want {
			t.Errorf("safeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
