package probe

import (
	"context"
	"strings"
	"testing"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/tlspolicy"
)

// TestDomainDNS: the DNS side of a domain — the MX answer's and each host's
// address answer's DNSSEC status, and the MTA-STS and TLS-RPT records by
// their RFCs' rules — from a loopback DNS server (no real DNS).
func TestDomainDNS(t *testing.T) {
	mxPort := starttlsServer().start(t, fakeCert(t))
	base := []string{
		"sec.test. MX 10 mx1.sec.test.",
		"sec.test. MX 20 mx2.sec.test.",
		"mx1.sec.test. A 127.0.0.1",
		"mx2.sec.test. A 127.0.0.1",
	}
	tests := []struct {
		name    string
		zone    dnstest.Zone
		check   func(t *testing.T, d Domain)
		records []string
	}{
		{"signed MX, one host unsigned", dnstest.Zone{Authentic: true, Unsigned: []string{"mx2.sec.test."}}, func(t *testing.T, d Domain) {
			if d.MX.DNSSEC != DNSSECSecure || len(d.Hops) != 2 {
				t.Fatalf("%+v", d)
			}
			h1, h2 := d.Hops[0], d.Hops[1]
			if h1.AddressDNSSEC != DNSSECSecure || !h1.Authentic || h2.AddressDNSSEC != DNSSECInsecure || h2.Authentic {
				t.Errorf("hops %+v / %+v", h1, h2)
			}
		}, nil},
		{"unsigned", dnstest.Zone{}, func(t *testing.T, d Domain) {
			if d.MX.DNSSEC != DNSSECInsecure || d.Hops[0].Authentic || d.Hops[0].AddressDNSSEC != DNSSECInsecure {
				t.Errorf("%+v", d)
			}
			if !strings.Contains(d.MTASTS.Error, "no MTA-STS record") || !strings.Contains(d.TLSRPT.Error, "no TLS-RPT record") {
				t.Errorf("records: %+v %+v", d.MTASTS, d.TLSRPT)
			}
		}, nil},
		{"two TLS-RPT records, a bad STS record", dnstest.Zone{}, func(t *testing.T, d Domain) {
			if !strings.Contains(d.TLSRPT.Error, "2 v=TLSRPTv1 records") || len(d.TLSRPT.RUA) != 0 || len(d.TLSRPT.TXT) != 2 {
				t.Errorf("TLS-RPT %+v", d.TLSRPT)
			}
			if d.MTASTS.Error == "" || d.MTASTS.ID != "" || len(d.MTASTS.TXT) != 1 {
				t.Errorf("MTA-STS %+v", d.MTASTS)
			}
		}, []string{
			`_smtp._tls.sec.test. TXT "v=TLSRPTv1; rua=mailto:a@sec.test"`,
			`_smtp._tls.sec.test. TXT "v=TLSRPTv1; rua=mailto:b@sec.test"`,
			`_mta-sts.sec.test. TXT "v=STSv1; id=not-alnum!"`,
		}},
		{"TLS-RPT record without a usable rua", dnstest.Zone{}, func(t *testing.T, d Domain) {
			if d.TLSRPT.Error == "" || len(d.TLSRPT.TXT) != 1 {
				t.Errorf("TLS-RPT %+v", d.TLSRPT)
			}
		}, []string{`_smtp._tls.sec.test. TXT "v=TLSRPTv1; rua=ftp://x.sec.test/"`}},
		{"two MTA-STS records", dnstest.Zone{}, func(t *testing.T, d Domain) {
			if !strings.Contains(d.MTASTS.Error, "2 v=STSv1 records") || d.MTASTS.ID != "" {
				t.Errorf("MTA-STS %+v", d.MTASTS)
			}
		}, []string{`_mta-sts.sec.test. TXT "v=STSv1; id=1"`, `_mta-sts.sec.test. TXT "v=STSv1; id=2"`}},
		{"TXT lookups fail", dnstest.Zone{ServFail: []string{"_mta-sts.sec.test.", "_smtp._tls.sec.test."}}, func(t *testing.T, d Domain) {
			if !strings.Contains(d.MTASTS.Error, "TXT lookup of _mta-sts.sec.test failed") ||
				!strings.Contains(d.TLSRPT.Error, "TXT lookup of _smtp._tls.sec.test failed") {
				t.Errorf("%+v %+v", d.MTASTS, d.TLSRPT)
			}
			if !d.Hops[0].Deliverable {
				t.Errorf("a failed TXT lookup is no reason to defer here: %+v", d.Hops[0])
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := tt.zone
			z.Records = append(append([]string{}, base...), tt.records...)
			router, res := zoneRouter(t, mxPort, nil, z)
			opts := testOptions()
			opts.Router, opts.Resolver, opts.Outbound = router, res, tlspolicy.Opportunistic
			rep := Run(context.Background(), []Target{{Domain: "sec.test"}}, opts)
			if len(rep.Domains) != 1 || len(rep.Results) != 2 {
				t.Fatalf("%d domains, %d results", len(rep.Domains), len(rep.Results))
			}
			tt.check(t, rep.Domains[0])
		})
	}
}

// TestVerdicts: one verdict per next hop from its addresses' probes under
// the hop's plan.
func TestVerdicts(t *testing.T) {
	valid := &TLSInfo{Version: "TLS 1.3", Valid: true}
	invalid := &TLSInfo{Version: "TLS 1.3"}
	ok := func(ip string, tls *TLSInfo) Result {
		return Result{IP: ip, Connected: true, EHLOBeforeTLS: []string{}, TLS: tls}
	}
	refused := Result{IP: "192.0.2.2", Error: "connect: connection refused"}
	verify := tlspolicy.Decide(tlspolicy.Input{Policy: tlspolicy.Verify, Host: "mx.test", Port: 25})
	opportunistic := tlspolicy.Decide(tlspolicy.Input{Policy: tlspolicy.Opportunistic, Host: "mx.test", Port: 25})
	none := tlspolicy.Decide(tlspolicy.Input{Policy: tlspolicy.None, Host: "mx.test", Port: 25})
	tests := []struct {
		name        string
		rs          []Result
		plan        tlspolicy.Plan
		deliverable bool
		verdict     string
	}{
		{"verified", []Result{ok("192.0.2.1", valid)}, verify, true, "deliverable over TLS 1.3, certificate verified for mx.test"},
		{"bad certificate under verify", []Result{ok("192.0.2.1", invalid)}, verify, false,
			"would defer: 192.0.2.1: the certificate is not valid for mx.test, as the plan requires"},
		{"no TLS under verify", []Result{ok("192.0.2.1", nil)}, verify, false,
			"would defer: 192.0.2.1: the plan requires TLS and none was negotiated"},
		{"bad certificate, opportunistic", []Result{ok("192.0.2.1", invalid)}, opportunistic, true,
			"deliverable over TLS 1.3, certificate not verified (encrypted, not authenticated)"},
		// issue #19: a chain the probe verified (--ca) is not called "not verified".
		{"valid certificate, opportunistic", []Result{ok("192.0.2.1", valid)}, opportunistic, true,
			"deliverable over TLS 1.3, certificate valid (the probe verified it; the plan accepts any)"},
		{"plaintext, opportunistic", []Result{ok("192.0.2.1", nil)}, opportunistic, true,
			"deliverable in plaintext: STARTTLS not offered or refused, and the plan does not require TLS"},
		{"plaintext by policy", []Result{ok("192.0.2.1", nil)}, none, true, "deliverable in plaintext: the plan uses no TLS"},
		{"second address takes it", []Result{refused, ok("192.0.2.1", valid)}, verify, true,
			"deliverable over TLS 1.3, certificate verified for mx.test at 192.0.2.1; 1 of 2 addresses would defer (192.0.2.2: connect: connection refused)"},
		{"all refused", []Result{refused}, verify, false, "would defer: 192.0.2.2: connect: connection refused"},
		{"probe failed after connect", []Result{{IP: "192.0.2.1", Connected: true, Error: "EHLO: 421 bye"}}, opportunistic, false,
			"would defer: 192.0.2.1: the probe failed: EHLO: 421 bye"},
	}
	for _, tt := range tests {
		var h HopInfo
		h.judge(tt.rs, tt.plan)
		if h.Deliverable != tt.deliverable || h.Verdict != tt.verdict {
			t.Errorf("%s: %v %q\nwant %v %q", tt.name, h.Deliverable, h.Verdict, tt.deliverable, tt.verdict)
		}
	}
}

// TestDomainPerAddress: an MX with an IPv6 and an IPv4 address is probed
// at each separately, in the order delivery tries them (RFC 8305 §4: IPv6
// first); the hop's verdict names the address that would take the mail and
// the one that would not (nothing listens on [::1] here).
func TestDomainPerAddress(t *testing.T) {
	mxPort := starttlsServer().start(t, fakeCert(t))
	router, res := zoneRouter(t, mxPort, nil, dnstest.Zone{Records: []string{
		"dual.test. MX 10 mx.dual.test.", "mx.dual.test. A 127.0.0.1", "mx.dual.test. AAAA ::1"}})
	opts := testOptions()
	opts.Router, opts.Resolver, opts.Outbound = router, res, tlspolicy.Opportunistic
	rep := Run(context.Background(), []Target{{Domain: "dual.test"}}, opts)
	if len(rep.Results) != 2 || rep.Results[0].IP != "::1" || rep.Results[1].IP != "127.0.0.1" {
		t.Fatalf("%+v", rep.Results)
	}
	if rep.Results[0].OK() || !rep.Results[1].OK() {
		t.Errorf("[::1] ok %v, 127.0.0.1 ok %v", rep.Results[0].OK(), rep.Results[1].OK())
	}
	h := rep.Domains[0].Hops[0]
	if !h.Deliverable || len(h.Addresses) != 2 || !strings.Contains(h.Verdict, "at 127.0.0.1; 1 of 2 addresses would defer (::1: connect: ") {
		t.Errorf("%+v", h)
	}
}
