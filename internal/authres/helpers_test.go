package authres

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/smtp"
)

// dnsHost is the loopback address the test DNS servers listen on (this
// package's range is 127.14.3.0/24).
const dnsHost = "127.14.3.1"

// startZone starts a loopback DNS server for z and returns it with a
// resolver pointed at it.
func startZone(t testing.TB, z dnstest.Zone) (*dnstest.Server, *dns.Client) {
	t.Helper()
	z.Host = dnsHost
	srv := dnstest.Start(t, z)
	c, err := dns.New(dns.Options{Servers: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func addr(t testing.TB, s string) smtp.Address {
	t.Helper()
	if s == "" {
		return smtp.Address{}
	}
	a, err := smtp.ParseAddress(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return a
}

// verify runs one complete check of msg (CRLF line ends are added to
// bare LF).
func verify(t *testing.T, v *Verifier, ip, helo, from, msg string) Result {
	t.Helper()
	c := v.Begin(context.Background(), netip.MustParseAddr(ip), helo, addr(t, from))
	if msg != "" {
		if _, err := c.Write([]byte(crlf(msg))); err != nil {
			t.Fatal(err)
		}
	}
	return c.Finish()
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}
