package dmarcrpt

import (
	"net/netip"
	"reflect"
	"testing"

	"smtpkit/internal/authres"
)

func TestMessageOf(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	base := authres.Result{SPF: "softfail", SPFDomain: "bounce.example.com", FromDomain: "example.com", IP: ip,
		DKIM: []authres.DKIMResult{{Domain: "example.com", Selector: "s1", Result: "pass"}, {Domain: "esp.example", Selector: "x", Result: "fail"}},
		DMARC: authres.DMARC{Result: "pass", Policy: "reject", Domain: "example.com", Sampled: true, DKIMAligned: true,
			Record: "v=DMARC1; p=reject; rua=mailto:d@example.com"}}
	with := func(edit func(*authres.Result)) authres.Result {
		r := base
		r.DMARC.Record = base.DMARC.Record
		edit(&r)
		return r
	}
	tests := []struct {
		name        string
		r           authres.Result
		disposition string
		ok          bool
		dkim, spf   string
		reason      string
	}{
		{"pass", base, "none", true, "pass", "fail", ""},
		{"rejected", with(func(r *authres.Result) { r.DMARC.Result, r.DMARC.DKIMAligned = "fail", false }), "reject", true, "fail", "fail", ""},
		{"not enforced", with(func(r *authres.Result) { r.DMARC.Result, r.DMARC.DKIMAligned = "fail", false }), "none", true, "fail", "fail", "local_policy"},
		{"sampled out", with(func(r *authres.Result) { r.DMARC.Result, r.DMARC.Sampled = "fail", false }), "none", true, "pass", "fail", "sampled_out"},
		{"no rua", with(func(r *authres.Result) { r.DMARC.Record = "v=DMARC1; p=reject" }), "none", false, "", "", ""},
		{"no record", with(func(r *authres.Result) { r.DMARC = authres.DMARC{Result: "none"} }), "none", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := MessageOf(tt.r, tt.disposition)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if m.PolicyDomain != "example.com" || m.DKIM != tt.dkim || m.SPF != tt.spf || m.Reason != tt.reason || m.Disposition != tt.disposition ||
				m.SourceIP != ip || m.SPFResult != (SPFResult{"bounce.example.com", "mfrom", "softfail"}) ||
				!reflect.DeepEqual(m.DKIMResults, []DKIMResult{{"example.com", "s1", "pass"}, {"esp.example", "x", "fail"}}) {
				t.Errorf("MessageOf = %+v", m)
			}
		})
	}
}
