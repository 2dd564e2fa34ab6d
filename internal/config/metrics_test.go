package config

import "testing"

// TestMetricsAddressLoopback: the metrics endpoint has no authentication,
// so validation keeps it on loopback.
func TestMetricsAddressLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"", true},
		{"127.0.0.1:9325", true},
		{"[::1]:9325", true},
		{"localhost:9325", true},
		{"127.0.0.2:9325", true},
		{":9325", false},
		{"0.0.0.0:9325", false},
		{"[::]:9325", false},
		{"192.0.2.1:9325", false},
		{"metrics.example.com:9325", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		c := DevDefault()
		c.Metrics.Address = tt.addr
		var keys []string
		for _, p := range Problems(c.Validate()) {
			keys = append(keys, p.(*Problem).Key)
		}
		if got := len(keys) == 0; got != tt.ok {
			t.Errorf("metrics.address %q: problems %q, want ok=%v", tt.addr, keys, tt.ok)
		}
		for _, k := range keys {
			if k != "metrics.address" {
				t.Errorf("metrics.address %q: unexpected problem key %q", tt.addr, k)
			}
		}
	}
}
