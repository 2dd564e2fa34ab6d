package interop

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// Loopback addresses of the queue journal test (issue #17, 127.17.2.0/24).
const (
	journalServerIP = "127.17.2.10"
	journalPeerIP   = "127.17.2.11"
)

// TestQueueJournalKill9: messages relayed through smtpkit are acknowledged
// from the queue's journal (small messages: one record, their files
// written later), and smtpkit is killed with SIGKILL right after the last
// 250 while every delivery attempt hangs at a next hop that never greets.
// After the restart the journal is replayed and Postfix's smtp-sink, now on
// the next hop's address, receives every acknowledged message exactly
// once. (SIGKILL keeps the page cache: this checks the replay of what the
// process held in memory and the order of recovery with the real binary;
// the power-loss cases are internal/queue's crash simulation.)
func TestQueueJournalKill9(t *testing.T) {
	silent, err := net.Listen("tcp", net.JoinHostPort(journalPeerIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // no greeting: the attempt waits
			mu.Unlock()
		}
	}()
	stopSilent := func() {
		silent.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		held = nil
		mu.Unlock()
	}
	t.Cleanup(stopSilent)
	peer := silent.Addr().String()

	conf := outConf{conc: 20, routes: []outRoute{{domain: "far.example", host: peer, tls: "none"}}}
	s := StartServer(t, ServerOptions{IP: journalServerIP, ExtraTOML: conf.toml()})
	s.AddUser(t, outSender, outPassword)
	const n = 12
	for i := range n {
		outSubmit(t, s, testMessage(fmt.Sprintf("journal-kill-%02d-", i)), "x@far.example")
	}
	s.Kill9(t)

	stopSilent()
	sk := startSink(t, peer, "")
	s.Restart(t)
	eventually(t, "every message at smtp-sink", func() bool {
		for i := range n {
			if len(sk.files(t, fmt.Sprintf("journal-kill-%02d-", i))) == 0 {
				return false
			}
		}
		return true
	})
	for i := range n {
		if c := len(sk.files(t, fmt.Sprintf("journal-kill-%02d-", i))); c != 1 {
			t.Errorf("message %d arrived %d times", i, c)
		}
	}
	eventually(t, "the queue to empty", func() bool { return queued(t, s) == 0 })
	replayed := strings.Contains(s.Logs(), "queue: journal replayed after an unclean stop")
	t.Logf("%d messages acknowledged, killed, all delivered once after the restart (journal replay logged: %v)", n, replayed)
}
