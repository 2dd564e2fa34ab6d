package config

import (
	"slices"
	"testing"
	"time"
)

func TestACME(t *testing.T) {
	const dir = "directory = \"https://acme.example/dir\"\n"
	tests := []struct {
		name      string
		toml      string
		keys      []string // problem keys
		names     []string // ACMENames
		challenge string   // ACMEChallengeAddress
	}{
		{name: "off by default", names: []string{"mx.example.com"}, challenge: ":443"},
		{name: "on, defaults (and a certificate for the listeners)", toml: "[acme]\n" + dir, names: []string{"mx.example.com"}, challenge: ":443"},
		{name: "http-01 defaults to port 80", toml: "[acme]\n" + dir + "challenge = \"http-01\"\n",
			names: []string{"mx.example.com"}, challenge: ":80"},
		{name: "names and address", toml: "[acme]\n" + dir + "email = \"ops@example.com\"\nnames = [\"mx.example.com\", \"smtp.example.com\"]\nchallenge_address = \"192.0.2.1:8443\"\n",
			names: []string{"mx.example.com", "smtp.example.com"}, challenge: "192.0.2.1:8443"},
		{name: "plain http directory", toml: "[acme]\ndirectory = \"http://acme.example/dir\"\n", keys: []string{"acme.directory"}},
		{name: "not a URL", toml: "[acme]\ndirectory = \"acme.example\"\n", keys: []string{"acme.directory"}},
		{name: "bad email", toml: "[acme]\n" + dir + "email = \"Ops <ops@example.com>\"\n", keys: []string{"acme.email"}},
		{name: "wildcard", toml: "[acme]\n" + dir + "names = [\"*.example.com\"]\n", keys: []string{"acme.names"}},
		{name: "IP address", toml: "[acme]\n" + dir + "names = [\"192.0.2.1\"]\n", keys: []string{"acme.names"}},
		{name: "single label", toml: "[acme]\n" + dir + "names = [\"mx\"]\n", keys: []string{"acme.names"}},
		{name: "twice", toml: "[acme]\n" + dir + "names = [\"mx.example.com\", \"MX.example.com\"]\n", keys: []string{"acme.names"}},
		{name: "dns-01", toml: "[acme]\n" + dir + "challenge = \"dns-01\"\n", keys: []string{"acme.challenge"}},
		{name: "bad address", toml: "[acme]\n" + dir + "challenge_address = \"443\"\n", keys: []string{"acme.challenge_address"}},
		{name: "backoff", toml: "[acme]\n" + dir + "retry_min = \"0s\"\n", keys: []string{"acme.retry_min"}},
		{name: "backoff order", toml: "[acme]\n" + dir + "retry_min = \"1h\"\nretry_max = \"1m\"\n", keys: []string{"acme.retry_max"}},
		{name: "unknown key", toml: "[acme]\n" + dir + "key_type = \"rsa\"\n", keys: []string{"acme.key_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := "hostname = \"mx.example.com\"\n[[domain]]\nname = \"example.com\"\n"
			if tt.toml == "" {
				head += "[tls]\nself_signed = true\n"
			}
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil {
				return
			}
			if n := c.ACMENames(); !slices.Equal(n, tt.names) {
				t.Errorf("ACMENames = %q, want %q", n, tt.names)
			}
			if a := c.ACMEChallengeAddress(); a != tt.challenge {
				t.Errorf("ACMEChallengeAddress = %q, want %q", a, tt.challenge)
			}
			if c.ACME.Enabled() != (tt.toml != "") {
				t.Errorf("Enabled = %v", c.ACME.Enabled())
			}
			if c.ACME.RetryMin.D() != 2*time.Minute || c.ACME.RetryMax.D() != 2*time.Hour {
				t.Errorf("backoff %s..%s, want the defaults 2m..2h", c.ACME.RetryMin, c.ACME.RetryMax)
			}
		})
	}
}
