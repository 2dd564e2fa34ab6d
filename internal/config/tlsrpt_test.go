package config

import (
	"testing"
	"time"
)

func TestTLSRPT(t *testing.T) {
	tests := []struct {
		name      string
		toml      string
		keys      []string // problem keys
		from, sub string
		enabled   bool
		interval  time.Duration
	}{
		{name: "defaults", from: "noreply-tlsrpt@mx.example.com", sub: "mx.example.com", enabled: true, interval: 24 * time.Hour},
		{name: "set", toml: "[tlsrpt]\nenabled = false\ninterval = \"6h\"\nfrom = \"tls@example.com\"\nsubmitter = \"example.com\"\ncontact = \"https://example.com/tls\"\n",
			from: "tls@example.com", sub: "example.com", interval: 6 * time.Hour},
		{name: "bad values", toml: "[tlsrpt]\ninterval = \"30s\"\nfrom = \"not an address\"\nsubmitter = \"a b\"\n",
			keys: []string{"tlsrpt.interval", "tlsrpt.from", "tlsrpt.submitter"}},
		{name: "interval over a day", toml: "[tlsrpt]\ninterval = \"48h\"\n", keys: []string{"tlsrpt.interval"}},
		{name: "unknown key", toml: "[tlsrpt]\nrua = \"x\"\n", keys: []string{"tlsrpt.rua"}},
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
			if c.TLSRPTFrom() != tt.from || c.TLSRPTSubmitter() != tt.sub || c.TLSRPT.Enabled != tt.enabled || c.TLSRPT.Interval.D() != tt.interval {
				t.Errorf("got %+v from %q submitter %q", c.TLSRPT, c.TLSRPTFrom(), c.TLSRPTSubmitter())
			}
		})
	}
}
