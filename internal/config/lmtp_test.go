package config

import "testing"

// TestParseLMTP: the per-domain lmtp key and the per-account table decode
// from TOML as docs/config.md shows them.
func TestParseLMTP(t *testing.T) {
	src := `hostname = "mail.example.com"
data_dir = "/var/lib/smtpkit"

[[domain]]
name = "example.com"
lmtp = "unix:/run/dovecot/lmtp"
lmtp_accounts = { postmaster = "maildir", alice = "127.0.0.1:24" }

[[domain]]
name = "example.net"

[[listener]]
address = "127.0.0.1:25"
role = "mx"
tls = "none"
`
	c, err := Parse([]byte(src), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := c.Domains[0]
	if d.LMTP != "unix:/run/dovecot/lmtp" || d.LMTPAccounts["postmaster"] != LMTPMaildir ||
		d.LMTPAccounts["alice"] != "127.0.0.1:24" || len(d.LMTPAccounts) != 2 {
		t.Errorf("domain %+v", d)
	}
	if c.Domains[1].LMTP != "" || c.Domains[1].LMTPAccounts != nil {
		t.Errorf("second domain %+v", c.Domains[1])
	}
}
