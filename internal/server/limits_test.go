package server

import (
	"strings"
	"testing"
)

// TestLimitsAdvertisedAndEnforced: EHLO announces the limits the session
// enforces (RFC 9422 §4): RCPTMAX is Limits.Recipients, MAILMAX is
// Limits.SessionTxns; the MAIL after MAILMAX transactions gets 421 and the
// session ends.
func TestLimitsAdvertisedAndEnforced(t *testing.T) {
	ts := startServer(t, Limits{Recipients: 100, SessionTxns: 2}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	ehlo := c.cmd("EHLO c", "250-")
	if !strings.Contains(ehlo, "LIMITS RCPTMAX=100 MAILMAX=2") {
		t.Fatalf("EHLO reply lacks the LIMITS line:\n%s", ehlo)
	}
	for range 2 {
		c.cmd("MAIL FROM:<a@b.example>", "250")
		c.cmd("RCPT TO:<alice@example.com>", "250")
		c.cmd("RSET", "250")
	}
	c.cmd("MAIL FROM:<a@b.example>", "421 4.3.0 mx.example.com too many transactions")
	c.closed()
}
