package config

import (
	"slices"
	"testing"
	"time"
)

// TestDiff: each change is named by its dotted key; arrays of tables are
// one key; an unchanged config has none.
func TestDiff(t *testing.T) {
	base := DevDefault()
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"grace", func(c *Config) { c.Limits.ShutdownGrace = Duration(time.Minute) }, []string{"limits.shutdown_grace"}},
		{"listener address", func(c *Config) {
			c.Listeners = slices.Clone(c.Listeners)
			c.Listeners[0].Address = "127.0.0.1:1"
		}, []string{"listener"}},
		{"listener auth", func(c *Config) {
			c.Listeners = slices.Clone(c.Listeners)
			on := !c.Listeners[0].AuthEnabled()
			c.Listeners[0].Auth = &on
		}, []string{"listener"}},
		{"domains", func(c *Config) { c.Domains = append(slices.Clone(c.Domains), Domain{Name: "new.example"}) }, []string{"domain"}},
		{"several, in schema order", func(c *Config) {
			c.Metrics.Address = "127.0.0.1:9"
			c.Hostname = "other.example"
			c.Maildir.Sync = "file"
			c.Log.Level = "error"
			c.Outbound.Port = 2525
		}, []string{"hostname", "log.level", "maildir.sync", "outbound.port", "metrics.address"}},
		{"tls", func(c *Config) {
			c.TLS.SelfSigned = !c.TLS.SelfSigned
			c.TLS.Certificates = []Certificate{{Cert: "a", Key: "b"}}
		}, []string{"tls.certificate", "tls.self_signed"}},
	} {
		changed := base
		tc.change(&changed)
		if got := Diff(base, changed); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Diff = %q, want %q", tc.name, got, tc.want)
		}
		if got := Diff(changed, base); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Diff reversed = %q, want %q", tc.name, got, tc.want)
		}
	}
}
