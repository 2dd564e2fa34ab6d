package interop

// Sanity tests of the enforced-TLS bench itself (issue #13): the DNS
// servers validate as real ones do, the policy servers are reachable over
// verified HTTPS, and a message goes from the daemon under test through
// unbound's answers to both kinds of receiving server. The end-to-end cases
// of tls13_*_test.go rely on each of these.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"smtpkit/internal/dns"
)

func TestDNSSECBench(t *testing.T) {
	leaf := selfSigned(t, "mx.dane.example")
	tlsa := tlsaEE(leaf)
	b := startDNSBench(t,
		benchZone{Name: "dane.example", Kind: zoneSigned, Records: []string{
			"dane.example. IN MX 10 mx.dane.example.",
			"mx.dane.example. IN A " + benchIP(10),
			"_25._tcp.mx.dane.example. IN TLSA " + tlsa,
		}},
		benchZone{Name: "bogus.example", Kind: zoneBogus, Records: []string{
			"bogus.example. IN MX 10 mx.bogus.example.",
			"mx.bogus.example. IN A " + benchIP(11),
			"_25._tcp.mx.bogus.example. IN TLSA " + tlsa,
		}},
		benchZone{Name: "plain.example", Kind: zoneUnsigned, Records: []string{
			"plain.example. IN MX 10 mx.plain.example.",
			"mx.plain.example. IN A " + benchIP(12),
			"_25._tcp.mx.plain.example. IN TLSA " + tlsa,
		}},
	)

	t.Run("unbound", func(t *testing.T) {
		tests := []struct {
			name    string
			qtype   uint16
			rcode   int
			ad      bool
			answers int // records of qtype in the answer
		}{
			{"dane.example", mdns.TypeMX, mdns.RcodeSuccess, true, 1},
			{"mx.dane.example", mdns.TypeA, mdns.RcodeSuccess, true, 1},
			{"_25._tcp.mx.dane.example", mdns.TypeTLSA, mdns.RcodeSuccess, true, 1},
			{"_25._tcp.ns.dane.example", mdns.TypeTLSA, mdns.RcodeNameError, true, 0}, // secure denial (NSEC)
			{"mx.dane.example", mdns.TypeAAAA, mdns.RcodeSuccess, true, 0},            // secure NODATA
			{"bogus.example", mdns.TypeMX, mdns.RcodeServerFailure, false, 0},
			{"_25._tcp.mx.bogus.example", mdns.TypeTLSA, mdns.RcodeServerFailure, false, 0},
			{"plain.example", mdns.TypeMX, mdns.RcodeSuccess, false, 1},
			{"_25._tcp.mx.plain.example", mdns.TypeTLSA, mdns.RcodeSuccess, false, 1},
			{"example.org", mdns.TypeMX, mdns.RcodeServerFailure, false, 0}, // no real DNS: nsd refuses it
		}
		for _, tc := range tests {
			t.Run(tc.name+"/"+mdns.TypeToString[tc.qtype], func(t *testing.T) {
				r, err := benchQuery(b.Resolver, tc.name, tc.qtype)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, rr := range r.Answer {
					if rr.Header().Rrtype == tc.qtype {
						n++
					}
				}
				if r.Rcode != tc.rcode || r.AuthenticatedData != tc.ad || n != tc.answers {
					t.Errorf("rcode %s, AD %v, %d answers; want %s, AD %v, %d\n%v", mdns.RcodeToString[r.Rcode],
						r.AuthenticatedData, n, mdns.RcodeToString[tc.rcode], tc.ad, tc.answers, r)
				}
			})
		}
	})

	// The daemon asks through internal/dns with the options `smtpkit serve`
	// uses for outbound.resolver (cli/routing.go); it must see what DANE
	// needs: Authentic answers, a temporary error for the bogus zone.
	t.Run("internal/dns", func(t *testing.T) {
		c, err := dns.New(dns.Options{Servers: []string{b.Resolver}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), outWait)
		defer cancel()
		a, err := c.LookupTLSA(ctx, "_25._tcp.mx.dane.example")
		if err != nil || !a.Authentic || len(a.Records) != 1 || "3 1 1 "+hex.EncodeToString(a.Records[0].Data) != tlsa {
			t.Errorf("signed TLSA: %+v, %v; want %q, Authentic", a, err, tlsa)
		}
		mx, err := c.LookupMX(ctx, "dane.example")
		if err != nil || !mx.Authentic || len(mx.Records) != 1 {
			t.Errorf("signed MX: %+v, %v; want one record, Authentic", mx, err)
		}
		ip, err := c.LookupIP(ctx, "mx.dane.example")
		if err != nil || !ip.Authentic || len(ip.IPs) != 1 || ip.IPs[0].String() != benchIP(10) {
			t.Errorf("signed A: %+v, %v; want %s, Authentic", ip, err, benchIP(10))
		}
		if a, err := c.LookupTLSA(ctx, "_25._tcp.mx.bogus.example"); !errors.Is(err, dns.ErrTemporary) {
			t.Errorf("bogus TLSA: %+v, %v; want an error wrapping dns.ErrTemporary", a, err)
		}
		a, err = c.LookupTLSA(ctx, "_25._tcp.mx.plain.example")
		if err != nil || a.Authentic || len(a.Records) != 1 {
			t.Errorf("unsigned TLSA: %+v, %v; want one record, not Authentic", a, err)
		}
	})
}

// TestTLS13BenchHTTPS: a policy server with a CA-issued certificate is
// reachable by name through curl (which trusts only the test CA) and by
// Go's client with the CA from SSL_CERT_FILE-style roots; one with a
// self-signed certificate is refused by both.
func TestTLS13BenchHTTPS(t *testing.T) {
	curl := Need(t, "curl")
	lockBench(t)
	ca := newBenchCA(t)
	const host = "mta-sts.sts.example"
	policy := stsPolicy("enforce", 86400, "mx.sts.example")
	good := startSTSServer(t, benchIP(40), ca.valid(t, host), policy)
	bad := startSTSServer(t, benchIP(41), selfSigned(t, host), policy)

	for _, tc := range []struct {
		srv *stsServer
		ok  bool
	}{{good, true}, {bad, false}} {
		url := "https://" + host + benchPolicyPath
		r := runPeer(t, nil, curl, "-sS", "--fail", "--max-time", "10", "--cacert", ca.File,
			"--resolve", host+":443:"+tc.srv.Addr[:strings.LastIndexByte(tc.srv.Addr, ':')], "-D", "-", url)
		if (r.Err == nil) != tc.ok {
			t.Errorf("curl %s via %s: %v, want ok=%v\n%s%s", url, tc.srv.Addr, r.Err, tc.ok, r.Stdout, r.Stderr)
		}
		if tc.ok && (!strings.Contains(r.Stdout, policy) || !strings.Contains(strings.ToLower(r.Stdout), "content-type: text/plain")) {
			t.Errorf("curl got:\n%s", r.Stdout)
		}

		addr := tc.srv.Addr
		hc := &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}, Timeout: outWait}
		resp, err := hc.Get(url)
		if (err == nil) != tc.ok {
			t.Errorf("Go client via %s: %v, want ok=%v", addr, err, tc.ok)
		}
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != policy {
				t.Errorf("Go client got %q", body)
			}
		}
	}
	if good.Requests() != 2 || bad.Requests() != 0 {
		t.Errorf("requests: good %d, bad %d; want 2 and 0", good.Requests(), bad.Requests())
	}
}

// TestTLS13BenchDelivery: with none of issue #13's enforcement involved,
// the daemon under test finds the MX hosts through unbound and delivers
// over STARTTLS to `smtpkit serve` on 127.13.7.10:25 (a signed zone) and
// to Postfix on 127.13.7.11:25 (an unsigned zone).
func TestTLS13BenchDelivery(t *testing.T) {
	ca := newBenchCA(t)
	startDNSBench(t,
		benchZone{Name: "signed.example", Kind: zoneSigned, Records: []string{
			"signed.example. IN MX 10 mx.signed.example.",
			"mx.signed.example. IN A " + benchIP(10),
		}},
		benchZone{Name: "postfix.example", Kind: zoneUnsigned, Records: []string{
			"postfix.example. IN MX 10 mx.postfix.example.",
			"mx.postfix.example. IN A " + benchIP(11),
		}},
	)
	mx := startBenchMX(t, benchIP(10), "mx.signed.example", "opportunistic", ca.valid(t, "mx.signed.example"), "bob@signed.example")
	pf := startBenchPostfix(t, benchIP(11), "mx.postfix.example", "may", ca.valid(t, "mx.postfix.example"), "carol@postfix.example")
	a := benchSender(t, ca)

	outSubmit(t, a, testMessage("bench13-smtpkit"), "bob@signed.example")
	outSubmit(t, a, testMessage("bench13-postfix"), "carol@postfix.example")
	got := mx.WaitMessages(t, "bob@signed.example", 1)[0]
	if trace := string(got[:len(got)-len(StripTrace(got))]); !strings.Contains(trace, "(using TLS 1.3") {
		t.Errorf("smtpkit receiver's Received does not show TLS 1.3:\n%s", trace)
	}
	eventually(t, "the message in Postfix's mailbox", func() bool {
		return len(pf.delivered(t, "carol@postfix.example", "bench13-postfix")) == 1
	})
	if m := pf.delivered(t, "carol@postfix.example", "bench13-postfix")[0]; !strings.Contains(string(m), "(using TLSv1.3") {
		t.Errorf("Postfix's Received does not show TLS 1.3:\n%s", m)
	}
	eventually(t, "the sender's queue to empty", func() bool { return queued(t, a) == 0 })
}

// pool is a certificate pool trusting only the bench CA.
func (ca *benchCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}
