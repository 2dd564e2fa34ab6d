package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutboundRelayScramPlusAndLimits: smtpkit A relays through smtpkit B
// (a [[route]] with auth_user to B's submission port). A's queue logs in
// with SCRAM-SHA-256-PLUS bound to the TLS channel, which B offers inside
// TLS; B announces LIMITS MAILMAX=2 (limits.session_transactions = 2)
// and A, reusing its connection, never runs into B's 421 for a third
// transaction: every message arrives.
func TestOutboundRelayScramPlusAndLimits(t *testing.T) {
	t.Parallel()
	b := StartServer(t, ServerOptions{Domains: []string{"remote.example"}, ExtraTOML: "session_transactions = 2"})
	b.AddUser(t, "bob@remote.example", "bob pw")
	const relayUser, relayPW = outSender, "R\u00e9lay-pw \u00fc" // B checks that the sender is the login
	b.AddUser(t, relayUser, relayPW)
	pwFile := filepath.Join(t.TempDir(), "relay.pw")
	if err := os.WriteFile(pwFile, []byte(relayPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startSender(t, outConf{routes: []outRoute{{
		domain: "remote.example", host: b.Submission, tls: "required", user: relayUser, pwFile: pwFile,
	}}})
	const n = 5
	for i := range n {
		outSubmit(t, a, testMessage("relay-plus-"+string(rune('a'+i))), "bob@remote.example")
	}
	b.WaitMessages(t, "bob@remote.example", n)
	logs := b.Logs()
	if !strings.Contains(logs, "mech=SCRAM-SHA-256-PLUS") || strings.Contains(logs, "auth failed") {
		t.Errorf("B's log shows no SCRAM-SHA-256-PLUS login, or a failed one:\n%s", logs)
	}
	if strings.Contains(logs, "too many transactions") {
		t.Errorf("A ran past B's LIMITS MAILMAX=2:\n%s", logs)
	}
	t.Logf("B: %d connections, %d AUTH for %d messages", strings.Count(logs, "msg=connect "), strings.Count(logs, `msg="auth ok"`), n)
	eventually(t, "A's queue to empty", func() bool { return queued(t, a) == 0 })
}
