package config

import (
	"testing"
	"time"
)

func TestDMARCReports(t *testing.T) {
	tests := []struct {
		name      string
		toml      string
		keys      []string // problem keys
		from, sub string
		enabled   bool
		interval  time.Duration
	}{
		{name: "defaults", from: "noreply-dmarc@mx.example.com", sub: "mx.example.com", enabled: true, interval: 24 * time.Hour},
		{name: "set", toml: "[dmarc_reports]\nenabled = false\ninterval = \"1h\"\nfrom = \"dmarc@example.com\"\nsubmitter = \"example.com\"\ncontact = \"https://example.com/dmarc\"\n",
			from: "dmarc@example.com", sub: "example.com", interval: time.Hour},
		{name: "bad values", toml: "[dmarc_reports]\ninterval = \"10s\"\nfrom = \"nobody\"\nsubmitter = \"a b\"\ncontact = \"a\\nb\"\n",
			keys: []string{"dmarc_reports.interval", "dmarc_reports.from", "dmarc_reports.submitter", "dmarc_reports.contact"}},
		{name: "interval over a day", toml: "[dmarc_reports]\ninterval = \"25h\"\n", keys: []string{"dmarc_reports.interval"}},
		{name: "unknown key", toml: "[dmarc_reports]\nrua = \"x\"\n", keys: []string{"dmarc_reports.rua"}},
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
			if c.DMARCReportsFrom() != tt.from || c.DMARCReportsSubmitter() != tt.sub || c.DMARCReports.Enabled != tt.enabled || c.DMARCReports.Interval.D() != tt.interval {
				t.Errorf("got %+v from %q submitter %q", c.DMARCReports, c.DMARCReportsFrom(), c.DMARCReportsSubmitter())
			}
		})
	}
}
