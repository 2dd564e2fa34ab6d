package interop

// `smtpkit probe DOMAIN` on the enforced-TLS bench (issue #13): the probe
// walks what delivery would do with the daemon's own configuration (the
// bench's unbound as resolver, the test CA), and its verdict per next hop
// — mechanism, whether the name is authenticated, whether enforced TLS
// fails there — must agree with what delivery did in the same test.

import (
	"encoding/json"
	"strings"
	"testing"
)

// probeHop is the part of a probe JSON hop checked here (docs/probe.md).
type probeHop struct {
	Host          string `json:"host"`
	Mechanism     string `json:"mechanism"`
	Authenticated bool   `json:"authenticated"`
	Deliverable   bool   `json:"deliverable"`
	EnforcedFails bool   `json:"enforced_tls_fails"`
	AddressDNSSEC string `json:"address_dnssec"`
	Verdict       string `json:"verdict"`
	RequireTLS    string `json:"requiretls"`
}

// probeDomain is the part of a probe JSON domain checked here.
type probeDomain struct {
	Domain string `json:"domain"`
	MX     *struct {
		DNSSEC string `json:"dnssec"`
		Error  string `json:"error"`
	} `json:"mx"`
	Hops  []probeHop `json:"hops"`
	Error string     `json:"error"`
}

// probeWant is what the probe must say about a domain's first hop.
type probeWant struct {
	domain        string
	mxDNSSEC      string // "secure", "insecure", or "" (the MX lookup failed: no route, no hop)
	mechanism     string
	authenticated bool
	deliverable   bool
	enforcedFails bool
}

// The probe's verdicts on the DANE bench: what delivery did in
// TestTLS13DANE.
var (
	probeDANEMatch    = probeWant{mxDNSSEC: "secure", mechanism: "dane", authenticated: true, deliverable: true}
	probeDANEFails    = probeWant{mxDNSSEC: "secure", mechanism: "dane", authenticated: true, enforcedFails: true}
	probeDANELookup   = probeWant{mxDNSSEC: "secure", mechanism: "dane", enforcedFails: true}
	probeDANEUnusable = probeWant{mxDNSSEC: "secure", mechanism: "dane", deliverable: true}
	probeNoRoute      = probeWant{}
	probeUnsignedTLSA = probeWant{mxDNSSEC: "insecure", mechanism: "default", deliverable: true}
	probeSTSMatch     = probeWant{mxDNSSEC: "insecure", mechanism: "mta-sts", authenticated: true, deliverable: true}
	probeSTSFails     = probeWant{mxDNSSEC: "insecure", mechanism: "mta-sts", authenticated: true, enforcedFails: true}
	probeSTSRefused   = probeWant{mxDNSSEC: "insecure", mechanism: "mta-sts", enforcedFails: true} // MX not in the policy: not tried
	probeSTSTesting   = probeWant{mxDNSSEC: "insecure", mechanism: "mta-sts", deliverable: true}
	probeSTSNoPolicy  = probeWant{mxDNSSEC: "insecure", mechanism: "default", deliverable: true}
)

// on is w for domain.
func (w probeWant) on(domain string) probeWant { w.domain = domain; return w }

// checkProbe runs `smtpkit probe --json` with a's configuration on every
// domain of wants and checks each domain's first next hop, and the exit
// status: 5 when enforced TLS fails somewhere, else 0 or 1.
func checkProbe(t *testing.T, a *Server, wants ...probeWant) {
	t.Helper()
	args := []string{"probe", "--json", "-config", a.ConfigPath}
	fails := false
	for _, w := range wants {
		args = append(args, w.domain)
		fails = fails || w.enforcedFails
	}
	r := runPeer(t, nil, a.bin, args...)
	var out struct {
		Domains []probeDomain `json:"domains"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("smtpkit probe --json: %v (%v)\n%s%s", err, r.Err, r.Stdout, r.Stderr)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("probe: %v\n%s", r.Err, r.Stdout)
	}
	byName := map[string]probeDomain{}
	for _, d := range out.Domains {
		byName[d.Domain] = d
	}
	for _, w := range wants {
		d, ok := byName[w.domain]
		switch {
		case !ok:
			t.Errorf("probe: no report for %s", w.domain)
		case w.mxDNSSEC == "":
			if d.Error == "" || len(d.Hops) != 0 {
				t.Errorf("probe %s: error %q, %d hops; want a route error and no hop", w.domain, d.Error, len(d.Hops))
			}
		case d.MX == nil || d.MX.DNSSEC != w.mxDNSSEC || len(d.Hops) == 0:
			t.Errorf("probe %s: mx %+v, %d hops; want DNSSEC %q and a hop", w.domain, d.MX, len(d.Hops), w.mxDNSSEC)
		default:
			h := d.Hops[0]
			got := probeWant{w.domain, d.MX.DNSSEC, h.Mechanism, h.Authenticated, h.Deliverable, h.EnforcedFails}
			if got != w {
				t.Errorf("probe %s: %+v (%s), want %+v", w.domain, got, h.Verdict, w)
			}
		}
	}
	want := 5
	if !fails {
		want = -1 // 0, or 1 when a domain has no route
	}
	if code := exitCode(t, r); code != want && !(want == -1 && (code == 0 || code == 1)) {
		t.Errorf("probe exit status %d, want %d (5: enforced TLS fails somewhere)", code, want)
	}
}

// checkProbeRequireTLS runs `smtpkit probe --json` with a's configuration
// on the domains of want and checks what it says a REQUIRETLS message
// would do at each one's first hop: "relayed", or a reason starting with
// "bounced" — what delivery did with one in TestTLS13RequireTLS.
func checkProbeRequireTLS(t *testing.T, a *Server, want map[string]string) {
	t.Helper()
	args := []string{"probe", "--json", "-config", a.ConfigPath}
	for d := range want {
		args = append(args, d)
	}
	r := runPeer(t, nil, a.bin, args...)
	var out struct {
		Domains []probeDomain `json:"domains"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("smtpkit probe --json: %v (%v)\n%s%s", err, r.Err, r.Stdout, r.Stderr)
	}
	seen := 0
	for _, d := range out.Domains {
		w, ok := want[d.Domain]
		if !ok {
			continue
		}
		seen++
		if len(d.Hops) == 0 || !strings.HasPrefix(d.Hops[0].RequireTLS, w) {
			t.Errorf("probe %s: requiretls %q, want %q...", d.Domain, firstRequireTLS(d), w)
		}
	}
	if seen != len(want) {
		t.Errorf("probe reported %d of the %d domains:\n%s", seen, len(want), r.Stdout)
	}
}

func firstRequireTLS(d probeDomain) string {
	if len(d.Hops) == 0 {
		return "(no hop)"
	}
	return d.Hops[0].RequireTLS
}
