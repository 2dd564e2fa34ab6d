package config

import (
	"slices"
	"testing"
)

// TestHTTPAddress: [http] address is the listener's name, [metrics]
// address its old one; both set must agree, pprof needs the listener, and
// the listener stays on loopback whichever name set it.
func TestHTTPAddress(t *testing.T) {
	tests := []struct {
		name          string
		http, metrics string
		pprof         bool
		want          string   // HTTPAddress
		problems      []string // keys
	}{
		{"off", "", "", false, "", nil},
		{"new name", "127.0.0.1:9325", "", false, "127.0.0.1:9325", nil},
		{"old name", "", "127.0.0.1:9325", false, "127.0.0.1:9325", nil},
		{"both equal", "127.0.0.1:9325", "127.0.0.1:9325", false, "127.0.0.1:9325", nil},
		{"both differ", "127.0.0.1:9325", "127.0.0.1:9326", false, "127.0.0.1:9325", []string{"metrics.address"}},
		{"old name not loopback", "", "0.0.0.0:9325", false, "0.0.0.0:9325", []string{"metrics.address"}},
		{"new name not loopback", "192.0.2.1:9325", "", false, "192.0.2.1:9325", []string{"http.address"}},
		{"pprof", "127.0.0.1:9325", "", true, "127.0.0.1:9325", nil},
		{"pprof without listener", "", "", true, "", []string{"http.pprof"}},
		{"listener clash", "127.0.0.1:10025", "", false, "127.0.0.1:10025", []string{"http.address"}},
	}
	for _, tt := range tests {
		c := DevDefault()
		c.HTTP.Address, c.Metrics.Address, c.HTTP.PProf = tt.http, tt.metrics, tt.pprof
		if got := c.HTTPAddress(); got != tt.want {
			t.Errorf("%s: HTTPAddress = %q, want %q", tt.name, got, tt.want)
		}
		var keys []string
		for _, p := range Problems(c.Validate()) {
			keys = append(keys, p.(*Problem).Key)
		}
		if !slices.Equal(keys, tt.problems) {
			t.Errorf("%s: problems %q, want %q", tt.name, keys, tt.problems)
		}
	}
}

// TestHTTPParse: the [http] table decodes, with session_ttl's default.
func TestHTTPParse(t *testing.T) {
	c, err := Parse([]byte("[[domain]]\nname = \"example.org\"\n[tls]\nself_signed = true\n[http]\naddress = \"127.0.0.1:9325\"\npprof = true\n"), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Address != "127.0.0.1:9325" || !c.HTTP.PProf || c.HTTP.SessionTTL.D() != DefaultSessionTTL {
		t.Errorf("got %+v", c.HTTP)
	}
}
