package server

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// scriptConn is a net.Conn that reads a fixed input and keeps what the
// server writes; deadlines are accepted and ignored.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
}
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzSession feeds arbitrary client input to a whole session. Invariants:
// no panic, every reply line is CRLF-terminated and starts with a 3-digit
// code, every reply code is legal for the state its command arrived in
// (legalReply, by the state × verb table of commands_test.go), and nothing
// is stored unless a DATA or BDAT transaction completed.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nBDAT 3 LAST\r\nabcQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x>\r\n.\r\n",
		"HELO a\r\nRSET\r\nNOOP\r\nVRFY x\r\nEXPN y\r\nHELP\r\nSTARTTLS\r\n",
		"GET / HTTP/1.1\r\n",
		"EHLO a\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\n",
		"EHLO a\r\nMAIL FROM:<a@b.example> SIZE=99999999999 BODY=8BITMIME SMTPUTF8\r\n",
		"\x00\xff\r\n\r\n\n\r",
		"EHLO a\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\r\n\x00.\r\nMAIL FROM:<e@x>\r\n.\r\n",
		// Out of sequence in every state (the state × verb table).
		"DATA\r\nRCPT TO:<alice@example.com>\r\nBDAT 1\r\nxAUTH PLAIN\r\nEHLO a\r\nDATA\r\nBDAT 1 LAST\r\nxMAIL FROM:<a@b.example>\r\n" +
			"MAIL FROM:<a@b.example>\r\nDATA\r\nBDAT 1\r\nxAUTH PLAIN\r\nRCPT TO:<alice@example.com>\r\nMAIL FROM:<a@b.example>\r\nAUTH PLAIN\r\n" +
			"BDAT 1\r\nxRCPT TO:<alice@example.com>\r\nDATA\r\nMAIL FROM:<a@b.example>\r\nBDAT 1 LAST\r\nyQUIT\r\n",
		// RFC 8689: REQUIRETLS outside TLS (530), with a value (501), then a plain MAIL.
		"EHLO a\r\nMAIL FROM:<a@b.example> REQUIRETLS\r\nMAIL FROM:<a@b.example> REQUIRETLS=1\r\nMAIL FROM:<a@b.example>\r\nQUIT\r\n",
		"EHLO a\r\nMAIL FROM:<a@b.example> BODY=BINARYMIME\r\nRCPT TO:<alice@example.com>\r\nBDAT 2 LAST\r\n\x00\x00",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b := &memBackend{}
		srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com", Backend: b, Credentials: memCreds{}, AuthFailureDelay: time.Nanosecond})
		c := &scriptConn{in: bytes.NewReader(in)}
		sess := srv.newSession(c, Listener{Address: "fuzz", Role: RoleMX, TLS: TLSNone})
		greeted := false
		srv.onReply = func(st state, cmd *command, r smtp.Reply) {
			if !legalReply(st, cmd, r, greeted) {
				verb := "(none)"
				if cmd != nil {
					verb = cmd.verb
				}
				t.Fatalf("reply %d %q to %s in state %s is not legal there; input %q", r.Code, r.Lines, verb, st, in)
			}
			greeted = true
		}
		sess.serve()
		out := c.out.String()
		if !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if len(line) < 4 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-') {
				t.Fatalf("malformed reply line %q in %q", line, out)
			}
		}
		upper := bytes.ToUpper(in)
		if n := len(b.messages()); n > 0 && !bytes.Contains(upper, []byte("DATA")) && !bytes.Contains(upper, []byte("BDAT")) {
			t.Fatalf("%d messages stored without DATA/BDAT", n)
		}
	})
}

// FuzzFrontEndAttrs: the attribute lists of XCLIENT and XFORWARD
// (xattrs.go) never panic the parsers, an accepted list names only
// known attributes, and no accepted value can break a log line or the
// Received field (no CR, LF or NUL).
func FuzzFrontEndAttrs(f *testing.F) {
	for _, s := range []string{
		"ADDR=192.0.2.7 NAME=client.example PORT=4711 PROTO=ESMTP HELO=x LOGIN=alice DESTADDR=127.0.0.1 DESTPORT=25",
		"NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1",
		"IDENT=ABC SOURCE=REMOTE",
		"name=a+2Bb",
		"ADDR",
		"HELO=a+0D+0Ab",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		for _, known := range [][]string{xclientAttrs, xforwardAttrs} {
			attrs, _, ok := parseAttrs("X", arg, known)
			if !ok {
				continue
			}
			for _, a := range attrs {
				if !contains(known, a.name) || strings.ContainsAny(a.value, "\x00\r\n") {
					t.Fatalf("accepted %+v", a)
				}
			}
		}
		if x, _, ok := parseXClient(arg); ok {
			if x.port > 65535 || x.addr.IsValid() && x.addr.Is4In6() {
				t.Fatalf("accepted %+v", x)
			}
		}
		var fw forwarded
		fw.apply(arg)
	})
}

// FuzzClientBDAT sends arbitrary bodies with smtpkit's client by BDAT, in
// arbitrary chunk sizes, as text or BODY=BINARYMIME, to smtpkit's server:
// binary arrives octet for octet, text CRLF-normalized or refused, and the
// session stays in step (checkClientBDAT).
func FuzzClientBDAT(f *testing.F) {
	for _, s := range bdatSeeds {
		f.Add([]byte(s.body), uint16(s.chunk), s.binary)
	}
	ts := startServer(f, Limits{MessageSize: 1 << 20, ConnectionRate: 1 << 30}, // one connection per input
		Listener{Role: RoleMX, TLS: TLSNone})
	f.Fuzz(func(t *testing.T, body []byte, chunk uint16, binary bool) {
		size := int(chunk % 4096)
		if len(body) > 64<<10 || size > 0 && len(body)/size > 256 {
			return // bounded: at most 256 chunks (a round trip each) per input
		}
		checkClientBDAT(t, ts, body, size, binary)
	})
}
