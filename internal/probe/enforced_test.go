package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/mtasts"
	"smtpkit/internal/route"
	"smtpkit/internal/testcert"
	"smtpkit/internal/tlspolicy"
)

// enforcedRouter is a router over zone z with DANE on and, when sts is
// set, MTA-STS policies from it, as the cli builds the queue's.
func enforcedRouter(t *testing.T, mxPort int, z dnstest.Zone, sts func(dns.Resolver) route.STSLookup) (*route.Router, dns.Resolver) {
	t.Helper()
	res, err := dns.New(dns.Options{Servers: []string{dnstest.Start(t, z).Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts := route.Options{DefaultPort: mxPort, AllowLoopback: true, DANE: true, Rand: rand.New(rand.NewPCG(1, 2))}
	if sts != nil {
		opts.STS = sts(res)
	}
	return route.New(res, nil, opts), res
}

func leaf(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestProbeDANE: the verdict per MX follows the DANE plan delivery would
// use — a matching DANE-EE record, a mismatch, a failed TLSA lookup, no
// STARTTLS, records in an unsigned zone — and exit status 5 says where
// TLS the domain enforces would fail.
func TestProbeDANE(t *testing.T) {
	cert := fakeCert(t)
	good := dane.Format(dane.Record(3, 1, 1, leaf(t, cert)))
	other := dane.Format(dane.Record(3, 1, 1, leaf(t, *otherCert(t))))
	tlsPort := starttlsServer().start(t, cert)
	requireTLSPort := withEHLOTLS(starttlsServer(), "REQUIRETLS").start(t, cert)
	plainPort := (&fakeServer{Greeting: "220 plain\r\n", EHLO: []string{"SIZE 1000"}}).start(t, cert)
	tests := []struct {
		name      string
		port      int
		record    string
		zone      dnstest.Zone
		mechanism string
		ok        bool   // deliverable
		verdict   string // in the verdict
		exit      int
		tlsa      func(t *testing.T, x *TLSAInfo, r Result)
		reqTLS    string // in the REQUIRETLS verdict
	}{
		{"DANE-EE matches, REQUIRETLS offered", requireTLSPort, good, dnstest.Zone{Authentic: true}, "dane", true, "certificate matches a TLSA record (DANE)", ExitOK,
			nil, "relayed"},
		{"DANE-EE matches", tlsPort, good, dnstest.Zone{Authentic: true}, "dane", true, "certificate matches a TLSA record (DANE)", ExitOK,
			func(t *testing.T, x *TLSAInfo, r Result) {
				if !x.Used || x.Usable != 1 || x.DNSSEC != DNSSECSecure || r.TLSA == nil || !r.TLSA.Matches {
					t.Errorf("%+v / %+v", x, r.TLSA)
				}
			}, "the server does not offer REQUIRETLS over TLS"},
		{"TLSA mismatch", tlsPort, other, dnstest.Zone{Authentic: true}, "dane", false, "matches none of the TLSA records", ExitEnforcedTLS,
			func(t *testing.T, x *TLSAInfo, r Result) {
				if r.TLSA == nil || r.TLSA.Matches || r.TLSA.Result != "validation-failure" {
					t.Errorf("%+v", r.TLSA)
				}
			}, "matches none of the TLSA records"},
		{"TLSA lookup fails", tlsPort, good, dnstest.Zone{Authentic: true, ServFail: []string{"_PORT._tcp.mx1.dane.test."}}, "dane", false,
			"not tried: 451 4.4.3 TLSA lookup for mx1.dane.test failed", ExitEnforcedTLS,
			func(t *testing.T, x *TLSAInfo, r Result) {
				if x.Error == "" || x.Used {
					t.Errorf("%+v", x)
				}
			}, "bounced: 451 4.4.3 TLSA lookup"},
		{"no STARTTLS under DANE", plainPort, good, dnstest.Zone{Authentic: true}, "dane", false, "the plan requires TLS and none was negotiated", ExitEnforcedTLS, nil, "none was negotiated"},
		{"TLSA in an unsigned zone", tlsPort, other, dnstest.Zone{}, "default", true, "certificate not verified", ExitOK,
			func(t *testing.T, x *TLSAInfo, r Result) {
				if x == nil || x.Used || x.DNSSEC != DNSSECInsecure || !strings.Contains(x.Note, "not DNSSEC-validated") || r.TLSA != nil {
					t.Errorf("%+v / %+v", x, r.TLSA)
				}
			}, "bounced: 550 5.7.30 REQUIRETLS"},
		{"TLSA unsigned, the rest signed", tlsPort, other, dnstest.Zone{Authentic: true, Unsigned: []string{"_PORT._tcp.mx1.dane.test."}}, "default", true,
			"certificate not verified", ExitOK,
			func(t *testing.T, x *TLSAInfo, r Result) {
				if x == nil || x.Used || !strings.Contains(x.Note, "the TLSA answer is not DNSSEC-validated") {
					t.Errorf("%+v", x)
				}
			}, "bounced: 550 5.7.30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := strconv.Itoa(tt.port)
			z := tt.zone
			z.Records = []string{"dane.test. MX 10 mx1.dane.test.", "mx1.dane.test. A 127.0.0.1",
				"_" + p + "._tcp.mx1.dane.test. TLSA " + tt.record}
			for i, n := range z.ServFail {
				z.ServFail[i] = strings.ReplaceAll(n, "PORT", p)
			}
			for i, n := range z.Unsigned {
				z.Unsigned[i] = strings.ReplaceAll(n, "PORT", p)
			}
			router, res := enforcedRouter(t, tt.port, z, nil)
			opts := testOptions()
			opts.Router, opts.Resolver, opts.Outbound = router, res, tlspolicy.Opportunistic
			rep := Run(context.Background(), []Target{{Domain: "dane.test"}}, opts)
			if len(rep.Domains) != 1 || len(rep.Domains[0].Hops) != 1 || len(rep.Results) != 1 {
				t.Fatalf("%+v", rep)
			}
			h, r := rep.Domains[0].Hops[0], rep.Results[0]
			if h.Mechanism != tt.mechanism || r.Mechanism != tt.mechanism || h.Deliverable != tt.ok || !strings.Contains(h.Verdict, tt.verdict) {
				t.Errorf("mechanism %s/%s deliverable %v verdict %q\nplan %s", h.Mechanism, r.Mechanism, h.Deliverable, h.Verdict, h.Plan)
			}
			if h.Authenticated != (tt.mechanism == "dane" && tt.name != "TLSA lookup fails") {
				t.Errorf("authenticated %v", h.Authenticated)
			}
			if !strings.Contains(h.RequireTLS, tt.reqTLS) {
				t.Errorf("REQUIRETLS verdict %q, want %q", h.RequireTLS, tt.reqTLS)
			}
			if got := rep.Exit(false, false); got != tt.exit {
				t.Errorf("exit %d, want %d", got, tt.exit)
			}
			if tt.tlsa != nil {
				tt.tlsa(t, h.TLSA, r)
			}
			var text strings.Builder
			rep.WriteText(&text, TextOptions{})
			wants := []string{"mechanism " + tt.mechanism, tt.verdict}
			if h.TLSA != nil && h.TLSA.Error == "" {
				wants = append(wants, "TLSA "+tt.record)
			}
			for _, want := range wants {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, text.String())
				}
			}
			if strings.Contains(text.String(), "enforced TLS fails here") != (tt.exit == ExitEnforcedTLS) ||
				strings.Contains(text.String(), "ENFORCED TLS FAILS: dane.test: mx1.dane.test (dane)") != (tt.exit == ExitEnforcedTLS) {
				t.Errorf("text and exit %d disagree:\n%s", tt.exit, text.String())
			}
		})
	}
}

// stsServer serves policy as https://mta-sts.<domain>/.well-known/mta-sts.txt
// on 127.13.6.4 with a certificate from ca, and returns its port.
func stsServer(t *testing.T, ca *testcert.CA, domain, policy string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.13.6.4:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(policy))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "mta-sts."+domain)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return ln.Addr().(*net.TCPAddr).Port
}

// TestProbeMTASTS: the domain's MTA-STS policy as the queue's cache
// fetches it (over HTTPS, WebPKI-checked against a test CA), which MX
// match, and the verdicts: enforce with a valid certificate delivers, an
// MX outside the policy is not tried (exit 5), a certificate not valid for
// the MX fails under enforce and is only reported under testing.
func TestProbeMTASTS(t *testing.T) {
	ca := testcert.NewCA(t, "probe test CA")
	mxPort := starttlsServer().start(t, ca.Issue(t, "mx1.sts.test", "mx2.sts.test"))
	tests := []struct {
		name    string
		mode    string
		mxName  string // the MX records point here
		roots   bool   // the probe trusts the CA
		ok      bool
		verdict string
		testing string // in the result's mta_sts_testing
		exit    int
	}{
		{"enforce, valid certificate", "enforce", "mx1", true, true, "certificate verified for mx1.sts.test", "", ExitOK},
		{"enforce, MX not in the policy", "enforce", "mx2", true, false, "not tried: 451 4.7.0 MX host mx2.sts.test is not listed", "", ExitEnforcedTLS},
		{"enforce, certificate not trusted", "enforce", "mx1", false, false, "the certificate is not valid for mx1.sts.test", "", ExitEnforcedTLS},
		{"testing, certificate not trusted", "testing", "mx1", false, true, "certificate not verified", "certificate-not-trusted", ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := "version: STSv1\nmode: " + tt.mode + "\nmx: mx1.sts.test\nmax_age: 86400\n"
			httpsPort := stsServer(t, ca, "sts.test", policy)
			z := dnstest.Zone{Records: []string{
				"sts.test. MX 10 " + tt.mxName + ".sts.test.",
				tt.mxName + ".sts.test. A 127.0.0.1",
				"mta-sts.sts.test. A 127.13.6.4",
				`_mta-sts.sts.test. TXT "v=STSv1; id=20261202"`,
			}}
			router, res := enforcedRouter(t, mxPort, z, func(res dns.Resolver) route.STSLookup {
				c, err := mtasts.New(mtasts.Options{Resolver: res, Roots: ca.Pool(), Port: httpsPort, AllowLoopback: true, Timeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return c
			})
			opts := testOptions()
			opts.Router, opts.Resolver, opts.Outbound = router, res, tlspolicy.Opportunistic
			opts.Now = time.Now // the CA's certificates are dated now
			if tt.roots {
				opts.Roots = ca.Pool()
			}
			rep := Run(context.Background(), []Target{{Domain: "sts.test"}}, opts)
			if len(rep.Domains) != 1 || len(rep.Domains[0].Hops) != 1 {
				t.Fatalf("%+v", rep)
			}
			d, h, r := rep.Domains[0], rep.Domains[0].Hops[0], rep.Results[0]
			p := d.MTASTS.Policy
			if p == nil || p.Mode != tt.mode || p.MaxAge != 86400 || len(p.MX) != 1 || p.ID != "20261202" || d.MTASTS.PolicyError != "" {
				t.Fatalf("policy %+v, error %q", p, d.MTASTS.PolicyError)
			}
			if h.Mechanism != "mta-sts" || h.MTASTSMatch == nil || *h.MTASTSMatch != (tt.mxName == "mx1") ||
				h.Deliverable != tt.ok || !strings.Contains(h.Verdict, tt.verdict) || !strings.Contains(r.STSTesting, tt.testing) {
				t.Errorf("mechanism %s match %v deliverable %v verdict %q testing %q\nplan %s", h.Mechanism, h.MTASTSMatch, h.Deliverable, h.Verdict, r.STSTesting, h.Plan)
			}
			if got := rep.Exit(false, false); got != tt.exit {
				t.Errorf("exit %d, want %d", got, tt.exit)
			}
			if h.MTASTSWebPKI == nil || *h.MTASTSWebPKI != tt.roots {
				t.Errorf("WebPKI-valid %v, want %v", h.MTASTSWebPKI, tt.roots)
			}
		})
	}
}
