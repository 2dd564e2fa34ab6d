package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseNetwork(t *testing.T) {
	tests := []struct {
		in, want string // want "" = refused
	}{
		{"127.0.0.0/8", "127.0.0.0/8"},
		{"::1/128", "::1/128"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"192.0.2.1/24", ""},        // host bits: ambiguous
		{"::ffff:10.0.0.0/104", ""}, // mapped: never matches an unmapped client
		{"::ffff:10.0.0.1", ""},
		{"fe80::1%eth0", ""},
		{"10.0.0.0/33", ""},
		{"example.com", ""},
		{"", ""},
		{"10.0.0/8", ""},
	}
	for _, tt := range tests {
		p, err := ParseNetwork(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParseNetwork(%q) = %v, want an error", tt.in, p)
		case tt.want != "" && (err != nil || p.String() != tt.want):
			t.Errorf("ParseNetwork(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
}

func TestTrustedNetworks(t *testing.T) {
	const head = minimalConfig
	tests := []struct {
		name string
		top  string // top-level keys
		toml string
		keys []string   // problem keys
		want [][]string // TrustedOn of each listener
	}{
		{name: "default: loopback on every listener", toml: "[[listener]]\naddress = \":25\"\nrole = \"mx\"\n",
			want: [][]string{{"127.0.0.0/8", "::1/128"}}},
		{name: "global list, bare address", top: "trusted_networks = [\"10.1.0.0/16\", \"192.0.2.9\"]\n", toml: "[[listener]]\naddress = \":25\"\nrole = \"mx\"\n",
			want: [][]string{{"10.1.0.0/16", "192.0.2.9/32"}}},
		{name: "global empty", top: "trusted_networks = []\n", toml: "[[listener]]\naddress = \":25\"\nrole = \"mx\"\n",
			want: [][]string{{}}},
		{name: "per listener: override, empty, absent",
			top: "trusted_networks = [\"10.0.0.0/8\"]\n",
			toml: "[[listener]]\naddress = \":25\"\nrole = \"mx\"\ntrusted_networks = [\"192.0.2.0/24\"]\n" +
				"[[listener]]\naddress = \":2525\"\nrole = \"mx\"\ntrusted_networks = []\n" +
				"[[listener]]\naddress = \":587\"\nrole = \"submission\"\n",
			want: [][]string{{"192.0.2.0/24"}, {}, {"10.0.0.0/8"}}},
		{name: "bad entries, each reported",
			top:  "trusted_networks = [\"10.0.0.1/8\", \"nope\"]\n",
			toml: "[[listener]]\naddress = \":25\"\nrole = \"mx\"\ntrusted_networks = [\"300.0.0.0/8\"]\n",
			keys: []string{"trusted_networks", "trusted_networks", "listener[0].trusted_networks"}},
		{name: "everyone: an open relay", top: "trusted_networks = [\"0.0.0.0/0\"]\n",
			toml: "[[listener]]\naddress = \":25\"\nrole = \"mx\"\ntrusted_networks = [\"::/0\"]\n",
			keys: []string{"trusted_networks", "listener[0].trusted_networks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.top+head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !slices.Equal(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil {
				return
			}
			for i, l := range c.Listeners {
				var nets []string
				for _, p := range c.TrustedOn(l) {
					nets = append(nets, p.String())
				}
				if !slices.Equal(nets, tt.want[i]) && !(len(nets) == 0 && len(tt.want[i]) == 0) {
					t.Errorf("listener %d trusts %q, want %q", i, nets, tt.want[i])
				}
			}
		})
	}
}

func TestTrustedNetworksDevDefault(t *testing.T) {
	c := DevDefault()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Listeners {
		got := c.TrustedOn(l)
		if len(got) != 2 || !got[0].Contains(netip.MustParseAddr("127.0.0.1")) || !got[1].Contains(netip.IPv6Loopback()) {
			t.Errorf("listener %s trusts %v, want loopback", l.Address, got)
		}
	}
}
