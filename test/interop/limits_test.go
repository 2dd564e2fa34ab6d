package interop

// LIMITS (RFC 9422) against an independent next hop: an aiosmtpd subclass
// (testdata/limits_peer.py) that advertises LIMITS RCPTMAX=2 MAILMAX=2 and
// enforces them (452 past RCPTMAX, 421 past MAILMAX). smtpkit's queue
// delivers one message for 5 recipients to it in transactions of at most
// 2 recipients and at most 2 transactions a connection, so the peer
// refuses nothing and nothing is deferred. Addresses: 127.16.6.0/24.

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// limitsEvent is one line of limits_peer.py's output.
type limitsEvent struct {
	Event string   `json:"event"`
	Conn  int      `json:"conn"`
	Txn   int      `json:"txn"`
	Rcpt  []string `json:"rcpt"`
}

type limitsPeer struct {
	addr   string
	mu     sync.Mutex
	events []limitsEvent
}

func (p *limitsPeer) log() []limitsEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]limitsEvent(nil), p.events...)
}

// startLimitsPeer runs limits_peer.py on ip with RCPTMAX=2 MAILMAX=2.
func startLimitsPeer(t *testing.T, ip string) *limitsPeer {
	t.Helper()
	cmd := exec.Command(needAiosmtpd(t), "testdata/limits_peer.py", ip, "2", "2")
	p := &limitsPeer{}
	port := startScriptPeer(t, "limits peer", cmd, func(line []byte) {
		var m limitsEvent
		if json.Unmarshal(line, &m) == nil {
			p.mu.Lock()
			p.events = append(p.events, m)
			p.mu.Unlock()
		}
	})
	p.addr = ip + ":" + port
	return p
}

func TestLimitsAiosmtpd(t *testing.T) {
	p := startLimitsPeer(t, "127.16.6.4")
	a := StartServer(t, ServerOptions{IP: "127.16.6.5",
		ExtraTOML: outConf{routes: []outRoute{{domain: "*", host: p.addr, tls: "none"}}}.toml()})
	a.AddUser(t, outSender, outPassword)
	var rcpts []string
	for i := range 5 {
		rcpts = append(rcpts, "r"+string(rune('1'+i))+"@far.example")
	}
	outSubmit(t, a, testMessage("limits-aiosmtpd"), rcpts...)

	var got []string
	eventually(t, "5 recipients at the peer", func() bool {
		got = got[:0]
		for _, e := range p.log() {
			if e.Event == "data" {
				got = append(got, e.Rcpt...)
			}
		}
		return len(got) >= len(rcpts)
	})
	eventually(t, "smtpkit's queue to empty", func() bool { return queued(t, a) == 0 })
	slices.Sort(got)
	if !slices.Equal(got, rcpts) {
		t.Errorf("recipients at the peer %v, want %v once each", got, rcpts)
	}
	conns, txns := map[int]int{}, 0
	for _, e := range p.log() {
		switch e.Event {
		case "connect":
			conns[e.Conn] += 0
		case "data":
			txns++
			conns[e.Conn]++
			if len(e.Rcpt) > 2 {
				t.Errorf("connection %d transaction %d: %d recipients, RCPTMAX=2", e.Conn, e.Txn, len(e.Rcpt))
			}
		case "452", "421":
			t.Errorf("the peer refused with %s on connection %d: smtpkit ran past its LIMITS", e.Event, e.Conn)
		}
	}
	for c, n := range conns {
		if n > 2 {
			t.Errorf("connection %d carried %d transactions, MAILMAX=2", c, n)
		}
	}
	if logs := a.Logs(); strings.Contains(logs, "delivery deferred") || strings.Contains(logs, "delivery failed") {
		t.Errorf("smtpkit deferred or failed a recipient:\n%s", logs)
	}
	t.Logf("peer: %d connections, %d transactions for %d recipients: %v", len(conns), txns, len(rcpts), p.log())
}
