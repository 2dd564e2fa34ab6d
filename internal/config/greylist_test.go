package config

import (
	"testing"
	"time"
)

func TestGreylist(t *testing.T) {
	tests := []struct {
		name string
		toml string
		keys []string // problem keys
		want Greylist
	}{
		{name: "defaults: off", want: Greylist{Delay: Duration(5 * time.Minute), RetryWindow: Duration(48 * time.Hour),
			Expire: Duration(35 * 24 * time.Hour), MaxEntries: 100000}},
		{name: "on", toml: "[greylist]\nenabled = true\ndelay = \"2s\"\nretry_window = \"1h\"\nexpire = \"7d\"\nmax_entries = 10\n",
			want: Greylist{Enabled: true, Delay: Duration(2 * time.Second), RetryWindow: Duration(time.Hour),
				Expire: Duration(7 * 24 * time.Hour), MaxEntries: 10}},
		{name: "zero values", toml: "[greylist]\ndelay = \"0s\"\nretry_window = \"0s\"\nexpire = \"0s\"\nmax_entries = 0\n",
			keys: []string{"greylist.delay", "greylist.retry_window", "greylist.expire", "greylist.max_entries"}},
		{name: "window not after delay", toml: "[greylist]\ndelay = \"1h\"\nretry_window = \"1h\"\n", keys: []string{"greylist.retry_window"}},
		{name: "too many entries", toml: "[greylist]\nmax_entries = 100000000\n", keys: []string{"greylist.max_entries"}},
		{name: "unknown key", toml: "[greylist]\nwhitelist = []\n", keys: []string{"greylist.whitelist"}},
	}
	const head = minimalConfig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err == nil && c.Greylist != tt.want {
				t.Errorf("got %+v, want %+v", c.Greylist, tt.want)
			}
		})
	}
}
