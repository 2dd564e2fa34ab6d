package greylist

import (
	"net/netip"
	"testing"
)

func TestNormalizeSender(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "<>"},
		{"<>", "<>"},
		{"Alice@Example.COM", "alice@example.com"},
		{"alice+lists@example.com", "alice@example.com"},
		{"+alice@example.com", "+alice@example.com"}, // nothing before the "+": kept
		{"bounce-12345-joe=example.com@lists.example.org", "bounce-#-joe=example.com@lists.example.org"},
		{"user2024@example.com", "#@example.com"},
		{"first.last@example.com", "first.last@example.com"},
		{"SRS0=HHH=TT=example.org=joe@forwarder.example", "joe@example.org"},
		{"SRS0+x7Yz=2K=example.org=joe@forwarder.example", "joe@example.org"},
		{"srs0=abcd=zz=example.org=joe=doe@fwd.example", "joe=doe@example.org"},
		{"SRS1=HHH=first.example==HHH=TT=example.org=joe@second.example", "joe@example.org"},
		{"SRS0=broken@fwd.example", "#=broken@fwd.example"},
		{"SRS1=nodoubleequals@fwd.example", "#=nodoubleequals@fwd.example"},
		{"prvs=1234abcdef=joe@example.com", "joe@example.com"},
		{"msprvs1=17998abcdeXYZ=bounces-77@example.com", "bounces-#@example.com"},
		{"btv1==0123456789==joe@example.com", "joe@example.com"},
		{"prvs=joe@example.com", "prvs=joe@example.com"}, // no tag
		{"no-at-sign", "no-at-sign"},
		{`"a@b"@example.com`, `"a@b"@example.com`},
	} {
		if got := NormalizeSender(tc.in); got != tc.want {
			t.Errorf("NormalizeSender(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNetwork(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.77", "192.0.2.0/24"},
		{"::ffff:192.0.2.77", "192.0.2.0/24"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := Network(netip.MustParseAddr(tc.ip)); got.String() != tc.want {
			t.Errorf("Network(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
	if Network(netip.Addr{}).IsValid() {
		t.Error("zero Addr has a network")
	}
}

func TestNewTriplet(t *testing.T) {
	a := NewTriplet(netip.MustParseAddr("192.0.2.1"), "prvs=0011223344=Joe@Example.com", "Bob@Example.NET")
	b := NewTriplet(netip.MustParseAddr("192.0.2.200"), "prvs=5566778899=joe@example.com", "bob@example.net")
	if a != b {
		t.Errorf("%+v != %+v", a, b)
	}
	c := NewTriplet(netip.MustParseAddr("192.0.3.1"), "joe@example.com", "bob@example.net")
	if a == c {
		t.Error("another /24 is the same triplet")
	}
}
