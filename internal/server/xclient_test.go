package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// frontEnd is an mx listener that takes XCLIENT and XFORWARD from
// proxyPeer, and trusts 192.0.2.0/24.
func frontEnd() Listener {
	return Listener{Role: RoleMX, TLS: TLSNone,
		XClientFrom:     []netip.Prefix{netip.MustParsePrefix(proxyPeer + "/32")},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
}

// TestXClientDialogue: the replies of XCLIENT and XFORWARD in each case
// (Postfix's XCLIENT_README and XFORWARD_README).
func TestXClientDialogue(t *testing.T) {
	ts := startServer(t, Limits{}, frontEnd())
	cases := []struct {
		name     string
		from     string
		dialogue [][2]string
	}{
		{name: "not offered to others", from: otherPeer, dialogue: [][2]string{
			{"XCLIENT ADDR=192.0.2.7", "550 Insufficient authorization"},
			{"XFORWARD ADDR=192.0.2.7", "550 Insufficient authorization"},
			{"EHLO x.example", "250"},
			{"XCLIENT bogus", "550 5.7.0 Insufficient authorization"},
		}},
		{name: "before EHLO", from: proxyPeer, dialogue: [][2]string{
			{"XCLIENT ADDR=192.0.2.7 NAME=client.example", "220 mx.example.com ESMTP"},
			{"MAIL FROM:<a@b.example>", "503 Send EHLO or HELO first"},
		}},
		{name: "syntax", from: proxyPeer, dialogue: [][2]string{
			{"EHLO x.example", "250"},
			{"XCLIENT", "501 5.5.4 Syntax: XCLIENT attribute=value"},
			{"XCLIENT FOO=bar", "501 5.5.4 Bad XCLIENT attribute name: FOO"},
			{"XCLIENT ADDR", "501 5.5.4 Bad XCLIENT attribute name: ADDR"},
			{"XCLIENT ADDR=999.0.0.1", "501 5.5.4 Bad XCLIENT attribute value for ADDR"},
			{"XCLIENT ADDR=192.0.2.7 PORT=65536", "501 5.5.4 Bad XCLIENT attribute value for PORT"},
			{"XCLIENT PROTO=LMTP", "501 5.5.4 Bad XCLIENT attribute value for PROTO"},
		}},
		{name: "syntax, values", from: proxyPeer, dialogue: [][2]string{
			{"EHLO x.example", "250"},
			{"XCLIENT NAME=a+zz", "501 5.5.4 Bad XCLIENT attribute value for NAME"},
			{"XCLIENT NAME=a+0Db", "501 5.5.4 Bad XCLIENT attribute value for NAME"},
			{"XFORWARD SOURCE=ELSEWHERE", "501 5.5.4 Bad XFORWARD attribute value for SOURCE"},
			{"XFORWARD LOGIN=x", "501 5.5.4 Bad XFORWARD attribute name: LOGIN"},
			{"xforward addr=IPV6:2001:db8::1 name=[UNAVAILABLE] ident=ABC123 source=REMOTE", "250 2.0.0 OK"},
		}},
		{name: "in a transaction", from: proxyPeer, dialogue: [][2]string{
			{"EHLO x.example", "250"},
			{"MAIL FROM:<a@b.example>", "250"},
			{"XCLIENT ADDR=192.0.2.7", "503 5.5.1 MAIL transaction in progress"},
			{"XFORWARD ADDR=192.0.2.7", "503 5.5.1 MAIL transaction in progress"},
		}},
		{name: "unavailable values", from: proxyPeer, dialogue: [][2]string{
			{"EHLO x.example", "250"},
			{"XCLIENT NAME=[TEMPUNAVAIL] ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE] HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE] PROTO=ESMTP DESTADDR=127.0.0.1 DESTPORT=25", "220 "},
			{"EHLO y.example", "250"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, tc.from, ts.addrs[0])
			c.expect("220 ")
			for _, step := range tc.dialogue {
				c.cmd(step[0], step[1])
			}
		})
	}
}

// TestXClientEHLO: XCLIENT and XFORWARD are advertised to xclient_from
// peers only.
func TestXClientEHLO(t *testing.T) {
	ts := startServer(t, Limits{}, frontEnd())
	for _, tc := range []struct {
		from string
		want bool
	}{{proxyPeer, true}, {otherPeer, false}} {
		c := dialFrom(t, tc.from, ts.addrs[0])
		c.expect("220 ")
		ehlo := c.cmd("EHLO x.example", "250")
		got := strings.Contains(ehlo, "XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT") &&
			strings.Contains(ehlo, "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")
		if got != tc.want || !tc.want && strings.Contains(ehlo, "XCLIENT") {
			t.Errorf("from %s: EHLO = %q, want XCLIENT and XFORWARD advertised: %v", tc.from, ehlo, tc.want)
		}
	}
}

// TestXClientChangesClient: after XCLIENT the address, name, HELO and
// login it gave are the client's: the Received field names them, the
// Backend sees them (relay with LOGIN, Trusted from the new address), and
// the session hooks see the old client leave and the new one come.
func TestXClientChangesClient(t *testing.T) {
	b := &xHooks{ended: make(chan struct{}, 4)}
	srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{func() Listener { l := frontEnd(); l.Address = "127.0.0.1:0"; return l }()}, Backend: b})
	serve(t, srv)
	c := dialFrom(t, proxyPeer, srv.Addrs()[0].String())
	c.expect("220 ")
	c.cmd("EHLO front.example", "250")
	c.cmd("XCLIENT ADDR=192.0.2.7 PORT=4711 NAME=client.example", "220 ")
	c.cmd("EHLO orig.example", "250")
	c.cmd("MAIL FROM:<bob@sender.example>", "250")
	c.cmd("RCPT TO:<carol@elsewhere.example>", "550 5.7.1 Relaying denied")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: t\r\n\r\nhi\r\n.", "250")
	c.cmd("XCLIENT LOGIN=alice@example.com ADDR=IPV6:2001:db8::7", "220 ")
	c.cmd("EHLO orig.example", "250")
	c.cmd("MAIL FROM:<alice@example.com>", "250")
	c.cmd("RCPT TO:<carol@elsewhere.example>", "250")
	c.cmd("QUIT", "221")
	for range 3 {
		select {
		case <-b.ended:
		case <-time.After(5 * time.Second):
			t.Fatal("no Disconnect")
		}
	}
	msgs := b.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if !strings.Contains(string(m.data), "Received: from orig.example (client.example [192.0.2.7])") {
		t.Errorf("Received field:\n%s", m.data)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	want := "connect " + proxyPeer + ":* |hello front.example|disconnect|connect 192.0.2.7:4711 |hello orig.example|" +
		"disconnect|connect [2001:db8::7]:4711 alice@example.com|hello orig.example|disconnect"
	b.calls[0] = strings.Replace(b.calls[0], b.calls[0][len("connect "+proxyPeer+":"):strings.LastIndexByte(b.calls[0], ' ')], "*", 1)
	if got := strings.Join(b.calls, "|"); got != want {
		t.Errorf("hooks %s, want %s", got, want)
	}
}

// xHooks records the session hooks, which XCLIENT runs more than once.
type xHooks struct {
	memBackend
	mu    sync.Mutex
	calls []string
	ended chan struct{}
}

func (b *xHooks) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *xHooks) Connect(_ context.Context, s *SessionInfo) error {
	b.record("connect " + s.Remote.String() + " " + s.AuthUser)
	return nil
}
func (b *xHooks) Hello(_ context.Context, s *SessionInfo) error {
	b.record("hello " + s.Helo)
	return nil
}
func (b *xHooks) Disconnect(*SessionInfo) { b.record("disconnect"); b.ended <- struct{}{} }

// TestXClientTrust: an ADDR in the trusted networks makes the session
// trusted, one outside makes it untrusted.
func TestXClientTrust(t *testing.T) {
	tb := &trustBackend{}
	srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{func() Listener { l := frontEnd(); l.Address = "127.0.0.1:0"; return l }()}, Backend: tb})
	serve(t, srv)
	c := dialFrom(t, proxyPeer, srv.Addrs()[0].String())
	c.expect("220 ")
	c.cmd("EHLO front.example", "250")
	c.cmd("MAIL FROM:<x@y.example>", "550 5.7.1 untrusted")
	c.cmd("XCLIENT ADDR=192.0.2.7", "220")
	c.cmd("EHLO orig.example", "250")
	c.cmd("MAIL FROM:<x@y.example>", "250")
	c.cmd("RSET", "250")
	c.cmd("XCLIENT ADDR=198.51.100.7", "220")
	c.cmd("EHLO orig.example", "250")
	c.cmd("MAIL FROM:<x@y.example>", "550 5.7.1 untrusted")
}

// trustBackend accepts senders of trusted sessions only.
type trustBackend struct{ memBackend }

func (b *trustBackend) Sender(_ context.Context, s *SessionInfo, _ smtp.Address) error {
	if !s.Trusted {
		return smtp.E(550, "5.7.1", "untrusted")
	}
	return nil
}

// TestXForward: XFORWARD changes the Received field (the original client
// in the from clause, the relaying peer in a comment) and the log, not
// the session's client; it is forgotten after the transaction.
func TestXForward(t *testing.T) {
	ts := startServer(t, Limits{}, frontEnd())
	c := dialFrom(t, proxyPeer, ts.addrs[0])
	c.expect("220 ")
	c.cmd("EHLO relay.example", "250")
	c.cmd("XFORWARD NAME=orig.example ADDR=192.0.2.7 PORT=4711 PROTO=ESMTP HELO=orig-helo.example", "250 2.0.0")
	c.cmd("XFORWARD IDENT=4XyZ123 SOURCE=REMOTE", "250 2.0.0")
	c.cmd("MAIL FROM:<bob@sender.example>", "250")
	c.cmd("RCPT TO:<carol@elsewhere.example>", "550 5.7.1") // policy: still the relay's own rights
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: t\r\n\r\nhi\r\n.", "250")
	m := deliver(t, ts, c) // a second transaction without XFORWARD
	msgs := ts.backend.messages()
	first := string(msgs[0].data)
	want := "Received: from orig-helo.example (orig.example [192.0.2.7])\r\n\t(forwarded by relay.example ([" + proxyPeer + "]))\r\n\tby mx.example.com"
	if !strings.HasPrefix(first, want) {
		t.Errorf("first Received field:\n%s\nwant it to begin\n%s", first, want)
	}
	if ip := msgs[0].env.Session.Remote.(*net.TCPAddr).IP.String(); ip != proxyPeer {
		t.Errorf("XFORWARD changed the client to %s", ip)
	}
	if second := string(m.data); !strings.HasPrefix(second, "Received: from front.example (["+proxyPeer+"])\r\n\tby") {
		t.Errorf("second Received field (XFORWARD not forgotten?):\n%s", second)
	}
}
