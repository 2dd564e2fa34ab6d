package server

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"

	"smtpkit/internal/sasl"
)

// tlsDialVersion is tlsDial with the TLS version fixed; it returns the
// client's view of the channel's bindings too.
func tlsDialVersion(t *testing.T, addr string, version uint16) (*client, []sasl.ChannelBinding) {
	t.Helper()
	raw := rawDial(t, addr)
	tc := tls.Client(raw.conn, &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: tc, r: bufio.NewReader(tc)}
	c.expect("220 ")
	return c, sasl.Bindings(tc.ConnectionState())
}

// authWith runs an AUTH exchange for a over c and returns the final reply.
func authWith(t *testing.T, c *client, a sasl.Client) string {
	t.Helper()
	mech, ir, err := a.Start()
	if err != nil {
		t.Fatal(err)
	}
	rep := c.cmd("AUTH "+mech+" "+base64.StdEncoding.EncodeToString(ir), "")
	for range 4 {
		if !strings.HasPrefix(rep, "334 ") {
			return rep
		}
		ch, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(rep, "334 ")))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Next(ch)
		if err != nil {
			c.cmd("*", "")
			return "client: " + err.Error()
		}
		rep = c.cmd(base64.StdEncoding.EncodeToString(resp), "")
	}
	return rep
}

// TestScramPlusOverTLS: inside TLS 1.3 (tls-exporter, RFC 9266) and TLS 1.2
// (tls-unique, RFC 5929) the server offers SCRAM-SHA-256-PLUS and a client
// bound to the same channel logs in; a client whose binding data differ
// (what a TLS-terminating man in the middle would have) is refused, and so
// is a client that can bind but says "y" (it did not see -PLUS: RFC 5802
// §6 downgrade).
func TestScramPlusOverTLS(t *testing.T) {
	_, addr, _ := authTestServer(t, newCountingCreds())
	for _, v := range []struct {
		name    string
		version uint16
		binding string
	}{{"TLS 1.3", tls.VersionTLS13, sasl.BindingTLSExporter}, {"TLS 1.2", tls.VersionTLS12, sasl.BindingTLSUnique}} {
		t.Run(v.name, func(t *testing.T) {
			c, cb := tlsDialVersion(t, addr, v.version)
			if len(cb) == 0 || cb[0].Type != v.binding {
				t.Fatalf("bindings %v, want %s first", cb, v.binding)
			}
			if ehlo := c.cmd("EHLO c", "250-"); !strings.Contains(ehlo, " SCRAM-SHA-256-PLUS") {
				t.Fatalf("EHLO inside TLS lacks SCRAM-SHA-256-PLUS:\n%s", ehlo)
			}
			if rep := authWith(t, c, sasl.NewScramSHA256PlusClient("alice@example.com", "secret", sasl.Options{ChannelBindings: cb})); !strings.HasPrefix(rep, "235 ") {
				t.Fatalf("bound login: %q", rep)
			}

			c2, cb2 := tlsDialVersion(t, addr, v.version)
			c2.cmd("EHLO c", "250-")
			other := []sasl.ChannelBinding{{Type: cb2[0].Type, Data: cb[0].Data}} // the other connection's: not this one
			if rep := authWith(t, c2, sasl.NewScramSHA256PlusClient("alice@example.com", "secret", sasl.Options{ChannelBindings: other})); !strings.HasPrefix(rep, "535 5.7.8") {
				t.Errorf("foreign channel binding: %q, want 535 5.7.8", rep)
			}

			c3, cb3 := tlsDialVersion(t, addr, v.version)
			c3.cmd("EHLO c", "250-")
			if rep := authWith(t, c3, sasl.NewScramSHA256ClientOptions("alice@example.com", "secret", sasl.Options{ChannelBindings: cb3})); !strings.HasPrefix(rep, "535 5.7.8") {
				t.Errorf("y flag although -PLUS was offered: %q, want 535 5.7.8", rep)
			}
			if rep := authWith(t, c3, sasl.NewScramSHA256Client("alice@example.com", "secret")); !strings.HasPrefix(rep, "235 ") {
				t.Errorf("n flag: %q", rep)
			}
		})
	}
}

// TestScramPlusNotOutsideTLS: before STARTTLS neither AUTH nor -PLUS is
// offered, and "AUTH SCRAM-SHA-256-PLUS" is refused.
func TestScramPlusNotOutsideTLS(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleSubmission, TLS: TLSOpportunistic, Auth: true})
	c := dial(t, ts.addrs[0])
	if ehlo := c.cmd("EHLO c", "250-"); strings.Contains(ehlo, "PLUS") {
		t.Fatalf("EHLO without TLS offers -PLUS:\n%s", ehlo)
	}
	c.cmd("AUTH SCRAM-SHA-256-PLUS "+base64.StdEncoding.EncodeToString([]byte("p=tls-exporter,,n=alice@example.com,r=abc")), "5")
	c.startTLS()
	if ehlo := c.cmd("EHLO c", "250-"); !strings.Contains(ehlo, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("EHLO after STARTTLS lacks -PLUS:\n%s", ehlo)
	}
}
