package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
)

// domainRouter is a route.Router over a loopback DNS server (no real DNS)
// with MX hosts on mxPort and the given static routes, as the cli builds
// it for the queue.
func domainRouter(t *testing.T, mxPort int, statics []route.Static, records ...string) (*route.Router, dns.Resolver) {
	t.Helper()
	return zoneRouter(t, mxPort, statics, dnstest.Zone{Records: records})
}

// zoneRouter is domainRouter over a dnstest.Zone (for the AD bit and
// failures); it returns the resolver too, for Options.Resolver.
func zoneRouter(t *testing.T, mxPort int, statics []route.Static, z dnstest.Zone) (*route.Router, dns.Resolver) {
	t.Helper()
	res, err := dns.New(dns.Options{Servers: []string{dnstest.Start(t, z).Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return route.New(res, statics, route.Options{DefaultPort: mxPort, AllowLoopback: true, Rand: rand.New(rand.NewPCG(1, 2))}), res
}

// domainReport probes three domains: one with two MX hosts (the first
// answers STARTTLS on 127.0.0.1, the second's address 127.0.0.2 has
// nothing listening), one with a static route with its own policy and
// AUTH to a plaintext server, and one with a null MX.
func domainReport(t *testing.T, mode tlspolicy.Mode) Report {
	cert := fakeCert(t)
	st := starttlsServer() // TLS 1.2, one suite: the cipher does not depend on the CPU
	st.MaxVersion, st.CipherSuites = tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	mxPort := st.start(t, cert)
	relayPort := (&fakeServer{Greeting: "220 relay.probe.test ESMTP\r\n", EHLO: []string{"AUTH PLAIN"}}).start(t, cert)
	relay, err := route.ParseStatic("routed.test", "127.0.0.1:"+portString(relayPort), "none", "user", "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	router, res := domainRouter(t, mxPort, []route.Static{relay},
		"mx.test. MX 10 mx1.mx.test.",
		"mx.test. MX 20 mx2.mx.test.",
		"mx1.mx.test. A 127.0.0.1",
		"mx2.mx.test. A 127.0.0.2",
		`_mta-sts.mx.test. TXT "v=STSv1; id=20260101T000000"`,
		`_smtp._tls.mx.test. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@mx.test,https://reports.mx.test/tlsrpt"`,
		`_smtp._tls.mx.test. TXT "v=spf1 -all"`,
		"nullmx.test. MX 0 .",
	)
	opts := testOptions()
	opts.Router, opts.Outbound, opts.Mode, opts.Resolver = router, tlspolicy.Opportunistic, mode, res
	var targets []Target
	for _, s := range []string{"mx.test", "routed.test", "nullmx.test."} {
		tg, err := ParseDestination(s)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	rep := Run(context.Background(), targets, opts)
	maskReport(&rep)
	return rep
}

// TestDomain: a domain is probed where delivery would take its mail, per
// MX and per address, each with the plan the queue would use.
func TestDomain(t *testing.T) {
	rep := domainReport(t, tlspolicy.ModeAuto)
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4 (two MX, one route, one null MX)", len(rep.Results))
	}
	mx1, mx2, relay, null := rep.Results[0], rep.Results[1], rep.Results[2], rep.Results[3]
	tests := []struct {
		name   string
		r      Result
		host   string
		ip     string
		plan   string
		ok     bool
		detail string
	}{
		{"first MX", mx1, "mx1.mx.test", "127.0.0.1",
			"STARTTLS when offered, any certificate accepted (policy opportunistic from outbound default)", true, ""},
		{"second MX", mx2, "mx2.mx.test", "127.0.0.2",
			"STARTTLS when offered, any certificate accepted (policy opportunistic from outbound default)", false, "connection refused"},
		{"static route with AUTH", relay, "127.0.0.1", "127.0.0.1",
			"STARTTLS when offered, TLS required, any certificate accepted (policy required from route routed.test, raised to required for AUTH)", true, ""},
		{"null MX", null, "nullmx.test", "", "", false, "route: 556 5.1.10"},
	}
	for _, tt := range tests {
		r := tt.r
		if r.Host != tt.host || r.IP != tt.ip || r.Plan != tt.plan || r.OK() != tt.ok || !strings.Contains(r.Error, tt.detail) {
			t.Errorf("%s: host %q ip %q ok %v error %q\nplan %q\nwant %q", tt.name, r.Host, r.IP, r.OK(), r.Error, r.Plan, tt.plan)
		}
	}
	if mx1.Domain != "mx.test" || mx1.Pref != 10 || mx2.Pref != 20 || mx1.Route != "" || relay.Route != "routed.test" {
		t.Errorf("hops: %+v / %+v / %+v", mx1, mx2, relay)
	}
	if mx1.TLS == nil || mx1.TLS.VerifyName != "mx1.mx.test" || mx1.TLS.ServerName != "mx1.mx.test" {
		t.Errorf("mx1 TLS checked against the MX name: %+v", mx1.TLS)
	}
	if !strings.HasPrefix(relay.Address, "127.0.0.1:") || !strings.HasPrefix(mx1.Address, "127.0.0.1:") {
		t.Errorf("addresses %q, %q", relay.Address, mx1.Address)
	}
	if !probeWarnedAbout(relay, "delivery would defer: the plan requires TLS") || probeWarnedAbout(mx1, "delivery would defer") {
		t.Errorf("plan warnings: relay %q, mx1 %q", relay.Warnings, mx1.Warnings)
	}
	if got := rep.Exit(false, false); got != ExitFailure {
		t.Errorf("exit %d, want %d", got, ExitFailure)
	}

	// A forced mode is an input of the same plan, named in its reason.
	forced := domainReport(t, tlspolicy.ModeNone).Results[0]
	if forced.Plan != "no TLS (policy opportunistic from outbound default; --no-tls)" || forced.TLS != nil {
		t.Errorf("--no-tls: %q", forced.Plan)
	}
}

func TestDomainGolden(t *testing.T) {
	rep := domainReport(t, tlspolicy.ModeAuto)
	var text bytes.Buffer
	if err := rep.WriteText(&text, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "domain.txt", text.Bytes())
	checkGolden(t, "domain.json", append(js, '\n'))
}

// TestNoRouter: a domain target without a Router fails, and says so.
func TestNoRouter(t *testing.T) {
	rep := Run(context.Background(), []Target{{Domain: "example.test"}}, testOptions())
	if len(rep.Results) != 1 || rep.Results[0].OK() || !strings.Contains(rep.Results[0].Error, "no router") {
		t.Fatalf("%+v", rep.Results)
	}
}

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in     string
		domain string
		host   string
		ok     bool
	}{
		{"example.com", "example.com", "", true},
		{"Example.COM.", "example.com", "", true},
		{"mx.example.com:25", "", "mx.example.com", true},
		{"127.0.0.1", "", "127.0.0.1", true},
		{"::1", "", "::1", true},
		{"[::1]:25", "", "::1", true},
		{"", "", "", false},
		{"exa$mple.com", "", "", false},
		{"192.0.2.1.", "", "", false}, // an address is not a domain, with or without the dot
	}
	for _, tt := range tests {
		got, err := ParseDestination(tt.in)
		if (err == nil) != tt.ok || got.Domain != tt.domain || got.Host != tt.host {
			t.Errorf("ParseDestination(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func probeWarnedAbout(r Result, substr string) bool {
	for _, w := range r.Warnings {
		if strings.Contains(w, substr) {
			return true
		}
	}
	return false
}
