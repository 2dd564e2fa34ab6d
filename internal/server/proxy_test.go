package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// proxyPeer and otherPeer are source addresses in this package's share
// of the loopback range: the balancer, and a client that is not one.
const (
	proxyPeer = "127.15.2.101"
	otherPeer = "127.15.2.102"
)

// dialFrom connects to addr from the loopback address src.
func dialFrom(t testing.TB, src, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

func proxyListener(role Role, mode TLSMode) Listener {
	return Listener{Role: role, TLS: mode, Auth: role.IsSubmission(), ProxyProtocol: true,
		ProxyFrom: []netip.Prefix{netip.MustParsePrefix(proxyPeer + "/32")}}
}

// v2Header is a PROXY v2 header for a TCP4 connection from src.
func v2Header(src string, port uint16) string {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	a := netip.MustParseAddr(src).As4()
	b = append(b, a[:]...)
	b = append(b, 127, 0, 0, 1)
	b = binary.BigEndian.AppendUint16(b, port)
	return string(binary.BigEndian.AppendUint16(b, 25))
}

func v1Header(src string) string { return "PROXY TCP4 " + src + " 127.0.0.1 40001 25\r\n" }

// deliver runs one transaction to alice and returns the stored message.
func deliver(t *testing.T, ts *testServer, c *client) memMsg {
	t.Helper()
	n := len(ts.backend.messages())
	c.cmd("EHLO front.example", "250")
	c.cmd("MAIL FROM:<bob@sender.example>", "250")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: t\r\n\r\nhi\r\n.", "250")
	msgs := ts.backend.messages()
	if len(msgs) != n+1 {
		t.Fatalf("%d messages stored, want %d", len(msgs), n+1)
	}
	return msgs[n]
}

// TestProxyProtocol: from a proxy_from peer the PROXY header (v1 or v2)
// names the client — the Received field and the Backend's SessionInfo
// carry it — and LOCAL keeps the peer; a missing or broken header closes
// the connection without a word; from any other peer a header is refused
// (after the greeting: it is a line that is not SMTP) while plain SMTP
// goes on as usual.
func TestProxyProtocol(t *testing.T) {
	ts := startServer(t, Limits{}, proxyListener(RoleMX, TLSNone))
	addr := ts.addrs[0]
	cases := []struct {
		name, from, header string
		client             string // the client the message records; "" = closed without a reply
		afterGreeting      bool   // the connection is closed after the greeting
	}{
		{name: "v1", from: proxyPeer, header: v1Header("192.0.2.7"), client: "192.0.2.7"},
		{name: "v2", from: proxyPeer, header: v2Header("192.0.2.8", 4711), client: "192.0.2.8"},
		{name: "v2 local", from: proxyPeer, header: "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00", client: proxyPeer},
		{name: "v1 unknown", from: proxyPeer, header: "PROXY UNKNOWN\r\n", client: proxyPeer},
		{name: "no header", from: proxyPeer, header: "EHLO x.example\r\n"},
		{name: "broken v1", from: proxyPeer, header: "PROXY TCP4 192.0.2.7 127.0.0.1 99999 25\r\n"},
		{name: "broken v2", from: proxyPeer, header: "\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c" + strings.Repeat("\x01", 12)},
		{name: "tls instead", from: proxyPeer, header: "\x16\x03\x01\x00\x05hello"},
		{name: "eof", from: proxyPeer, header: "PROXY TCP4 1"},
		{name: "v1 from another peer", from: otherPeer, header: v1Header("192.0.2.7"), afterGreeting: true},
		{name: "v2 from another peer", from: otherPeer, header: v2Header("192.0.2.7", 1), afterGreeting: true},
		{name: "smtp from another peer", from: otherPeer, client: otherPeer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, tc.from, addr)
			if tc.from == otherPeer {
				c.expect("220 ")
			}
			c.send(tc.header)
			if tc.name == "eof" {
				c.conn.(*net.TCPConn).CloseWrite()
			}
			switch {
			case tc.afterGreeting:
				c.closed()
				return
			case tc.client == "":
				c.closed()
				return
			}
			if tc.from == proxyPeer {
				c.expect("220 ")
			}
			m := deliver(t, ts, c)
			if got := m.env.Session.Remote.(*net.TCPAddr).IP.String(); got != tc.client {
				t.Errorf("SessionInfo.Remote = %s, want %s", got, tc.client)
			}
			if want := "([" + tc.client + "])"; !strings.Contains(string(m.data), want) {
				t.Errorf("Received field does not name %s:\n%s", want, m.data)
			}
		})
	}
}

// TestProxyProtocolLimits: the per-IP limit counts the clients the
// headers name, not the balancer; the total limit counts connections
// still waiting for their header.
func TestProxyProtocolLimits(t *testing.T) {
	t.Run("per ip", func(t *testing.T) {
		ts := startServer(t, Limits{ConnectionsPerIP: 2}, proxyListener(RoleMX, TLSNone))
		for i := range 2 {
			c := dialFrom(t, proxyPeer, ts.addrs[0])
			c.send(v2Header("192.0.2.7", uint16(1000+i)))
			c.expect("220 ")
		}
		c := dialFrom(t, proxyPeer, ts.addrs[0])
		c.send(v2Header("192.0.2.7", 1002))
		c.expect("421 4.7.0")
		c = dialFrom(t, proxyPeer, ts.addrs[0])
		c.send(v2Header("192.0.2.9", 1003))
		c.expect("220 ")
	})
	t.Run("total", func(t *testing.T) {
		ts := startServer(t, Limits{Connections: 2}, proxyListener(RoleMX, TLSNone))
		for range 2 {
			dialFrom(t, proxyPeer, ts.addrs[0]) // silent: no header yet
		}
		c := dialFrom(t, proxyPeer, ts.addrs[0])
		c.expect("421 4.7.0")
	})
}

// headerConn writes hdr in front of the first write, so that the header
// and the TLS ClientHello go out in one segment, as HAProxy sends them.
type headerConn struct {
	net.Conn
	hdr string
}

func (h *headerConn) Write(b []byte) (int, error) {
	if h.hdr != "" {
		p := append([]byte(h.hdr), b...)
		h.hdr = ""
		if _, err := h.Conn.Write(p); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return h.Conn.Write(b)
}

// TestProxyProtocolImplicitTLS: the header comes before the TLS
// handshake, and a ClientHello that arrives with it is not lost; STARTTLS
// after a header works as without one.
func TestProxyProtocolImplicitTLS(t *testing.T) {
	ts := startServer(t, Limits{}, proxyListener(RoleMX, TLSImplicit), proxyListener(RoleMX, TLSOpportunistic))
	for _, hdr := range []string{v1Header("192.0.2.7"), v2Header("192.0.2.7", 1)} {
		raw := dialFrom(t, proxyPeer, ts.addrs[0])
		tc := tls.Client(&headerConn{Conn: raw.conn, hdr: hdr}, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake after the header: %v", err)
		}
		c := &client{t: t, conn: tc, r: bufio.NewReader(tc)}
		c.expect("220 ")
		m := deliver(t, ts, c)
		if !strings.Contains(string(m.data), "([192.0.2.7])") {
			t.Fatalf("Received field:\n%s", m.data)
		}

		c = dialFrom(t, proxyPeer, ts.addrs[1])
		c.send(hdr)
		c.expect("220 ")
		c.cmd("EHLO front.example", "250")
		c.startTLS()
		m = deliver(t, ts, c)
		if !strings.Contains(string(m.data), "([192.0.2.7])") || !strings.Contains(string(m.data), "with ESMTPS") {
			t.Fatalf("Received field:\n%s", m.data)
		}
	}
}

// TestProxyHeaderWithoutProxyProtocol: a listener without proxy_protocol
// closes a connection that sends a header, from any peer.
func TestProxyHeaderWithoutProxyProtocol(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dialFrom(t, proxyPeer, ts.addrs[0])
	c.expect("220 ")
	c.send(v1Header("192.0.2.7"))
	c.closed()
}

// TestProxyHeaderWaitEndsAtShutdown: a proxied connection that has not
// sent its header yet does not hold a shutdown for the header timeout:
// the wait counts as idle, and Shutdown ends it at once.
func TestProxyHeaderWaitEndsAtShutdown(t *testing.T) {
	l := proxyListener(RoleMX, TLSNone)
	l.Address = "127.0.0.1:0"
	srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com", Listeners: []Listener{l}, Backend: &memBackend{}})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	c := dialFrom(t, proxyPeer, srv.Addrs()[0].String())
	// The session is registered once the accept loop has taken the
	// connection; poll for it (bounded).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		srv.mu.Lock()
		n := len(srv.sessions)
		srv.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection was never registered")
		}
	}
	// Shorter than proxyHeaderTimeout: a shutdown that waited for the
	// header would run out of it and return its error.
	ctx, cancel := context.WithTimeout(context.Background(), proxyHeaderTimeout/2)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the header wait held it)", err)
	}
	<-done
	c.closed()
}

// TestProxyProtocolTrust: the trusted networks are matched against the
// client the header names, not the balancer.
func TestProxyProtocolTrust(t *testing.T) {
	l := proxyListener(RoleMX, TLSNone)
	l.Address = "127.0.0.1:0"
	l.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com", Listeners: []Listener{l}, Backend: &trustBackend{}})
	serve(t, srv)
	for _, tc := range []struct{ client, reply string }{
		{"192.0.2.7", "250 "},
		{"198.51.100.7", "550 5.7.1 untrusted"},
	} {
		c := dialFrom(t, proxyPeer, srv.Addrs()[0].String())
		c.send(v1Header(tc.client))
		c.expect("220 ")
		c.cmd("EHLO front.example", "250")
		c.cmd("MAIL FROM:<x@y.example>", tc.reply)
	}
}
