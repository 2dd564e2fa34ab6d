package config

import (
	"slices"
	"testing"
)

// TestFrontEnds: proxy_protocol, proxy_from and xclient_from — parsed
// like trusted_networks, proxy_protocol needs proxy_from and proxy_from
// needs proxy_protocol, every bad entry reported.
func TestFrontEnds(t *testing.T) {
	const head = "hostname = \"mx.example.com\"\n[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n[[listener]]\naddress = \":25\"\nrole = \"mx\"\n"
	tests := []struct {
		name          string
		toml          string
		keys          []string // problem keys
		proxy         bool
		from, xclient []string
	}{
		{name: "default: neither"},
		{name: "proxy", toml: "proxy_protocol = true\nproxy_from = [\"10.0.0.5\", \"192.0.2.0/28\"]\n",
			proxy: true, from: []string{"10.0.0.5/32", "192.0.2.0/28"}},
		{name: "xclient", toml: "xclient_from = [\"127.0.0.1\", \"::1\"]\n", xclient: []string{"127.0.0.1/32", "::1/128"}},
		{name: "proxy without proxy_from", toml: "proxy_protocol = true\n", keys: []string{"listener[0].proxy_from"}},
		{name: "proxy_from without proxy", toml: "proxy_from = [\"10.0.0.5\"]\n", keys: []string{"listener[0].proxy_from"}},
		{name: "bad entries", toml: "proxy_protocol = true\nproxy_from = [\"10.0.0.5/8\"]\nxclient_from = [\"x\", \"1.2.3.4/40\"]\n",
			keys: []string{"listener[0].proxy_from", "listener[0].xclient_from", "listener[0].xclient_from"}},
		{name: "unknown key", toml: "proxy_protocl = true\n", keys: []string{"listener.proxy_protocl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			var got []string
			for _, e := range Problems(err) {
				key := ""
				if p, ok := e.(*Problem); ok {
					key = p.Key
				}
				got = append(got, key)
			}
			if !slices.Equal(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil {
				return
			}
			l := c.Listeners[0]
			var from, xclient []string
			for _, p := range Networks(l.ProxyFrom) {
				from = append(from, p.String())
			}
			for _, p := range Networks(l.XClientFrom) {
				xclient = append(xclient, p.String())
			}
			if l.ProxyProtocol != tt.proxy || !slices.Equal(from, tt.from) || !slices.Equal(xclient, tt.xclient) {
				t.Errorf("proxy_protocol %v, proxy_from %q, xclient_from %q; want %v, %q, %q", l.ProxyProtocol, from, xclient, tt.proxy, tt.from, tt.xclient)
			}
		})
	}
}
