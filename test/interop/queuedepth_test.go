package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
)

// TestQueueDepthRelay runs the queue's index and scheduler in the binary
// (issue #17), on 127.17.1.x: 120 messages to a destination that refuses
// connections are deferred with active_limit = 100, so most of them live
// only on disk with an index entry — and `smtpkit queue list` still shows
// every one; 60 messages to Postfix's smtp-sink are then relayed past
// them, each exactly once; after a restart (Open indexes the spool from
// the env files' prefixes) the 120 are listed again and none is attempted
// before its retry time.
func TestQueueDepthRelay(t *testing.T) {
	const deferred, relayed = 120, 60
	sk := startSink(t, freeAddrOn(t, "127.17.1.10"), "")
	down := freeAddrOn(t, "127.17.1.11") // nothing listens there: connection refused
	conf := fmt.Sprintf(`[outbound]
allow_loopback = true
retry_min = "1h"
retry_max = "2h"
max_age = "1d"
concurrency = 20
max_deliveries = 100
active_limit = 100

[[route]]
domain = "sink.example"
host = %q
tls = "none"

[[route]]
domain = "down.example"
host = %q
tls = "none"
`, sk.addr, down)
	s := StartServer(t, ServerOptions{IP: "127.17.1.1", ExtraTOML: conf})
	s.AddUser(t, outSender, outPassword)

	submitMany(t, s, deferred, "someone@down.example", "depth-deferred")
	waitLogCount(t, s, "delivery deferred", deferred)
	if got := queueStates(t, s); got["deferred"] != deferred || len(got) != 1 {
		t.Fatalf("queue list after deferring: %v, want %d deferred", got, deferred)
	}

	submitMany(t, s, relayed, "rcpt@sink.example", "depth-relayed")
	eventually(t, fmt.Sprintf("%d messages at smtp-sink", relayed), func() bool {
		return len(sk.files(t, "depth-relayed")) >= relayed
	})
	eventually(t, "the relayed messages to leave the queue", func() bool { return queued(t, s) == deferred })
	if n := len(sk.files(t, "depth-relayed")); n != relayed {
		t.Errorf("%d copies at smtp-sink, want %d", n, relayed)
	}
	if n := len(sk.files(t, "depth-deferred")); n != 0 {
		t.Errorf("%d deferred messages reached the sink", n)
	}

	s.Restart(t)
	if got := queueStates(t, s); got["deferred"] != deferred || len(got) != 1 {
		t.Fatalf("queue list after the restart: %v, want %d deferred", got, deferred)
	}
	if n := strings.Count(s.Logs(), "delivery deferred"); n != deferred {
		t.Errorf("%d deferrals logged after the restart, want %d (none retried before its time)", n, deferred)
	}
}

// submitMany sends n messages from outSender to rcpt over one submission
// session (STARTTLS, AUTH PLAIN), each tagged tag-i.
func submitMany(t *testing.T, s *Server, n int, rcpt, tag string) {
	t.Helper()
	c := dialHello(t, s.Submission, "submitter.example")
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: rootsFromFile(t, s.CertPath)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), outWait)
		res, err := c.Send(ctx, client.Envelope{From: outSender, To: []string{rcpt}},
			bytes.NewReader(testMessage(fmt.Sprintf("%s-%d", tag, i))))
		cancel()
		if err != nil || res.Data != nil {
			t.Fatalf("message %d: %v / %v", i, err, res.Data)
		}
	}
	c.Quit()
}

// queueStates counts the recipients `smtpkit queue list -json` shows, by
// state.
func queueStates(t *testing.T, s *Server) map[string]int {
	t.Helper()
	r := mustRun(t, nil, s.bin, "queue", "list", "-json", "-config", s.ConfigPath)
	var list []struct {
		Recipients []struct {
			State string `json:"state"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("queue list -json: %v\n%s", err, r.Stdout)
	}
	out := map[string]int{}
	for _, m := range list {
		for _, rc := range m.Recipients {
			out[rc.State]++
		}
	}
	return out
}
