package config

import (
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	tests := []struct {
		name string
		toml string
		keys []string // problem keys
		want Auth
	}{
		{name: "defaults: a minute", want: Auth{CacheTTL: Duration(time.Minute), CacheSize: 10000}},
		{name: "off", toml: "[auth]\ncache_ttl = \"0s\"\n", want: Auth{CacheTTL: 0, CacheSize: 10000}},
		{name: "set", toml: "[auth]\ncache_ttl = \"5m\"\ncache_size = 50\n", want: Auth{CacheTTL: Duration(5 * time.Minute), CacheSize: 50}},
		{name: "negative ttl", toml: "[auth]\ncache_ttl = \"-1s\"\n", keys: []string{"auth.cache_ttl"}},
		{name: "ttl over an hour", toml: "[auth]\ncache_ttl = \"2h\"\n", keys: []string{"auth.cache_ttl"}},
		{name: "size bounds", toml: "[auth]\ncache_size = 0\n", keys: []string{"auth.cache_size"}},
		{name: "size too large", toml: "[auth]\ncache_size = 2000000\n", keys: []string{"auth.cache_size"}},
		{name: "unknown key", toml: "[auth]\ncache = true\n", keys: []string{"auth.cache"}},
	}
	const head = minimalConfig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err == nil && c.Auth != tt.want {
				t.Errorf("got %+v, want %+v", c.Auth, tt.want)
			}
		})
	}
}
