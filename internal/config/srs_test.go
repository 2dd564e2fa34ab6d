package config

import (
	"testing"
	"time"
)

func TestSRS(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		keys    []string // problem keys
		domain  string
		enabled bool
		maxAge  time.Duration
	}{
		{name: "defaults", domain: "mx.example.com", enabled: true, maxAge: 21 * 24 * time.Hour},
		{name: "set", toml: "[srs]\nenabled = false\ndomain = \"fwd.example.com\"\nmax_age = \"7d\"\n",
			domain: "fwd.example.com", maxAge: 7 * 24 * time.Hour},
		{name: "bad values", toml: "[srs]\ndomain = \"a b\"\nmax_age = \"12h\"\n", keys: []string{"srs.domain", "srs.max_age"}},
		{name: "too old", toml: "[srs]\nmax_age = \"1024d\"\n", keys: []string{"srs.max_age"}},
		{name: "not whole days", toml: "[srs]\nmax_age = \"2d12h\"\n", keys: []string{"srs.max_age"}},
		{name: "unknown key", toml: "[srs]\nsecret = \"x\"\n", keys: []string{"srs.secret"}},
	}
	const head = minimalConfig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil {
				return
			}
			if c.SRSDomain() != tt.domain || c.SRS.Enabled != tt.enabled || c.SRS.MaxAge.D() != tt.maxAge {
				t.Errorf("got %+v domain %q", c.SRS, c.SRSDomain())
			}
		})
	}
}
