package server

import (
	"strings"
	"testing"
	"time"
)

// requireTLSAddr is helper D's loopback range for issue #13 (RFC 8689 tests).
const requireTLSAddr = "127.13.4.1:0"

// startRequireTLSServer is startServer on requireTLSAddr.
func startRequireTLSServer(t *testing.T, ls ...Listener) *testServer {
	t.Helper()
	tc := testTLSConfig(t)
	for i := range ls {
		ls[i].Address = requireTLSAddr
		if ls[i].TLS != TLSNone {
			ls[i].TLSConfig = tc
		}
	}
	b := &memBackend{}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: ls, Backend: b, Credentials: memCreds{}, Limits: Limits{Errors: 50},
		AuthFailureDelay: time.Millisecond,
	})
	serve(t, srv)
	ts := &testServer{srv: srv, backend: b}
	for _, a := range srv.Addrs() {
		ts.addrs = append(ts.addrs, a.String())
	}
	return ts
}

// TestRequireTLS checks RFC 8689 §2 on the receiving side: REQUIRETLS is
// advertised only inside TLS, the MAIL parameter is accepted only there
// (530 5.7.10 outside), takes no value, and tags the one message whose
// MAIL carried it.
func TestRequireTLS(t *testing.T) {
	ts := startRequireTLSServer(t,
		Listener{Role: RoleMX, TLS: TLSOpportunistic},
		Listener{Role: RoleMX, TLS: TLSImplicit},
		Listener{Role: RoleMX, TLS: TLSNone})
	opportunistic, implicit, plain := ts.addrs[0], ts.addrs[1], ts.addrs[2]
	const from = "MAIL FROM:<a@b.example>"
	tests := []struct {
		name      string
		addr      string
		startTLS  bool     // STARTTLS and a new EHLO before the steps
		implicit  bool     // the listener is TLS from the first byte
		advertise bool     // REQUIRETLS in the (last) EHLO reply
		steps     []step   // after EHLO
		wantTags  []bool   // RequireTLS of each stored message, in order
		notInEHLO []string // words the EHLO reply must not have
	}{
		{name: "plaintext: not advertised, refused 530 5.7.10", addr: opportunistic,
			steps: []step{{from + " REQUIRETLS", "530 5.7.10"}, {"RCPT TO:<alice@example.com>", "503 5.5.1"}}},
		{name: "plaintext: lower case keyword refused too", addr: opportunistic,
			steps: []step{{from + " requiretls", "530 5.7.10"}}},
		{name: "plaintext: no TLS at all on the listener", addr: plain,
			steps: []step{{from + " REQUIRETLS", "530 5.7.10"}}},
		{name: "plaintext: refused before SIZE is looked at", addr: opportunistic,
			steps: []step{{from + " SIZE=10 REQUIRETLS", "530 5.7.10"}, {from, "250 2.1.0"}}},
		{name: "after STARTTLS: advertised and accepted", addr: opportunistic, startTLS: true, advertise: true,
			steps:    []step{{from + " REQUIRETLS", "250 2.1.0"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}, {"Subject: s\r\n\r\nb\r\n.", "250 2.0.0"}},
			wantTags: []bool{true}, notInEHLO: []string{"STARTTLS"}},
		{name: "implicit TLS: advertised and accepted", addr: implicit, implicit: true, advertise: true,
			steps:    []step{{from + " REQUIRETLS SIZE=100", "250 2.1.0"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}, {"\r\nb\r\n.", "250 2.0.0"}},
			wantTags: []bool{true}},
		{name: "inside TLS: a value is a syntax error", addr: implicit, implicit: true, advertise: true,
			steps: []step{{from + " REQUIRETLS=YES", "501 5.5.4"}}},
		{name: "inside TLS: twice is a syntax error", addr: implicit, implicit: true, advertise: true,
			steps: []step{{from + " REQUIRETLS REQUIRETLS", "501 5.5.4"}}},
		{name: "the tag is per transaction: RSET and the next MAIL", addr: implicit, implicit: true, advertise: true,
			steps: []step{
				{from + " REQUIRETLS", "250"}, {"RSET", "250"},
				{from, "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}, {"\r\none\r\n.", "250 2.0.0"},
				{from + " REQUIRETLS", "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}, {"\r\ntwo\r\n.", "250 2.0.0"},
				{from, "250"}, {"RCPT TO:<alice@example.com>", "250"}, {"DATA", "354"}, {"\r\nthree\r\n.", "250 2.0.0"},
			},
			wantTags: []bool{false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(ts.backend.messages())
			var c *client
			if tt.implicit {
				c = tlsDial(t, tt.addr)
			} else {
				c = dial(t, tt.addr)
			}
			ehlo := c.cmd("EHLO c", "250-")
			if tt.startTLS {
				if strings.Contains(ehlo, "REQUIRETLS") {
					t.Errorf("REQUIRETLS advertised before STARTTLS:\n%s", ehlo)
				}
				c.startTLS()
				ehlo = c.cmd("EHLO c", "250-")
			}
			if got := strings.Contains(ehlo, "250-REQUIRETLS\r\n"); got != tt.advertise {
				t.Errorf("REQUIRETLS advertised = %v, want %v:\n%s", got, tt.advertise, ehlo)
			}
			for _, w := range tt.notInEHLO {
				if strings.Contains(ehlo, w) {
					t.Errorf("EHLO has %s:\n%s", w, ehlo)
				}
			}
			for _, s := range tt.steps {
				c.cmd(s.send, s.want)
			}
			c.cmd("QUIT", "221")
			msgs := ts.backend.messages()[before:]
			if len(msgs) != len(tt.wantTags) {
				t.Fatalf("stored %d messages, want %d", len(msgs), len(tt.wantTags))
			}
			for i, m := range msgs {
				if m.env.RequireTLS != tt.wantTags[i] {
					t.Errorf("message %d: RequireTLS = %v, want %v", i, m.env.RequireTLS, tt.wantTags[i])
				}
			}
		})
	}
}

// TestRequireTLSHELO: parameters need EHLO (RFC 5321 §4.1.1.2), REQUIRETLS
// included, inside TLS too.
func TestRequireTLSHELO(t *testing.T) {
	ts := startRequireTLSServer(t, Listener{Role: RoleMX, TLS: TLSImplicit})
	c := tlsDial(t, ts.addrs[0])
	c.cmd("HELO c", "250 ")
	c.cmd("MAIL FROM:<a@b.example> REQUIRETLS", "555")
}
