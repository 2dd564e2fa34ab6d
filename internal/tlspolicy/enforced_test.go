package tlspolicy

import (
	"errors"
	"strings"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlsrpt"
)

func TestDecideEnforced(t *testing.T) {
	ee := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}
	pkix := dns.TLSA{Usage: 1, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}
	secure := &DANE{Records: []dns.TLSA{ee, pkix}, Names: []string{"mx.example.net"}}
	unusable := &DANE{Records: []dns.TLSA{pkix}, Names: []string{"mx.example.net"}}
	failed := &DANE{Err: errors.New("SERVFAIL")}
	enforce := &STS{Domain: "example.net", Enforce: true, MatchesMX: true, Strings: []string{"version: STSv1", "mode: enforce"}}
	enforceOther := &STS{Domain: "example.net", Enforce: true}
	testing_ := &STS{Domain: "example.net", MatchesMX: true}
	testingOther := &STS{Domain: "example.net"}
	base := Input{Policy: Opportunistic, Source: "outbound default", Host: "mx.example.net", Port: 25}
	with := func(f func(*Input)) Input { in := base; f(&in); return in }

	type want struct {
		mech          Mechanism
		require       bool
		dane          int
		verify, audit string
		refuse        smtp.Enhanced // "" = not refused
		report        tlsrpt.PolicyType
		failure       tlsrpt.ResultType
		authenticated bool
		reason        string
	}
	tests := []struct {
		name string
		in   Input
		want want
	}{
		{"no policy", base, want{mech: MechDefault, report: tlsrpt.PolicyNone}},
		{"route policy", with(func(in *Input) { in.Route = &Route{Domain: "example.net", HasPolicy: true, Policy: Verify} }),
			want{mech: MechRoute, require: true, verify: "mx.example.net", report: tlsrpt.PolicyNone, authenticated: true}},
		{"DANE usable", with(func(in *Input) { in.DANE = secure }),
			want{mech: MechDANE, require: true, dane: 1, report: tlsrpt.PolicyTLSA, authenticated: true, reason: "1 usable TLSA"}},
		{"DANE beats outbound none", with(func(in *Input) { in.Policy = None; in.DANE = secure }),
			want{mech: MechDANE, require: true, dane: 1, report: tlsrpt.PolicyTLSA, authenticated: true}},
		{"DANE none usable: TLS without authentication", with(func(in *Input) { in.DANE = unusable }),
			want{mech: MechDANE, require: true, report: tlsrpt.PolicyTLSA, reason: "none usable"}},
		{"DANE lookup failed: refused, never plaintext", with(func(in *Input) { in.DANE = failed }),
			want{mech: MechDANE, refuse: smtp.EnhDirectory.Temp(), report: tlsrpt.PolicyTLSA, failure: tlsrpt.DNSSECInvalid}},
		{"DANE no records: STS applies", with(func(in *Input) { in.DANE = &DANE{}; in.STS = enforce }),
			want{mech: MechSTS, require: true, verify: "mx.example.net", report: tlsrpt.PolicySTS, authenticated: true}},
		{"DANE before STS", with(func(in *Input) { in.DANE = secure; in.STS = enforceOther }),
			want{mech: MechDANE, require: true, dane: 1, report: tlsrpt.PolicyTLSA, authenticated: true}},
		{"STS enforce", with(func(in *Input) { in.STS = enforce }),
			want{mech: MechSTS, require: true, verify: "mx.example.net", report: tlsrpt.PolicySTS, authenticated: true, reason: "MTA-STS enforce"}},
		{"STS enforce, MX not listed", with(func(in *Input) { in.STS = enforceOther }),
			want{mech: MechSTS, refuse: smtp.EnhSecurity.Temp(), report: tlsrpt.PolicySTS, failure: tlsrpt.ValidationFailure}},
		{"STS testing: audit only", with(func(in *Input) { in.STS = testing_ }),
			want{mech: MechSTS, audit: "mx.example.net", report: tlsrpt.PolicySTS}},
		{"STS testing, MX not listed: delivered, reported", with(func(in *Input) { in.STS = testingOther }),
			want{mech: MechSTS, report: tlsrpt.PolicySTS, failure: tlsrpt.ValidationFailure}},
		{"TLS-Required: No ignores DANE", with(func(in *Input) { in.DANE = failed; in.TLSOptional = true }),
			want{mech: MechDefault, report: tlsrpt.PolicyNone, reason: "TLS-Required: No"}},
		{"TLS-Required: No ignores STS", with(func(in *Input) { in.STS = enforceOther; in.TLSOptional = true }),
			want{mech: MechDefault, report: tlsrpt.PolicyNone}},
		{"REQUIRETLS without authentication: refused 5.7.30", with(func(in *Input) { in.RequireTLS = true }),
			want{mech: MechDefault, refuse: smtp.EnhRequireTLS, report: tlsrpt.PolicyNone}},
		{"REQUIRETLS with DANE", with(func(in *Input) { in.RequireTLS = true; in.DANE = secure }),
			want{mech: MechDANE, require: true, dane: 1, report: tlsrpt.PolicyTLSA, authenticated: true, reason: "REQUIRETLS"}},
		{"REQUIRETLS with unusable DANE: refused", with(func(in *Input) { in.RequireTLS = true; in.DANE = unusable }),
			want{mech: MechDANE, require: true, refuse: smtp.EnhRequireTLS, report: tlsrpt.PolicyTLSA}},
		{"REQUIRETLS treats STS testing as enforce", with(func(in *Input) { in.RequireTLS = true; in.STS = testing_ }),
			want{mech: MechSTS, require: true, verify: "mx.example.net", report: tlsrpt.PolicySTS, authenticated: true}},
		{"REQUIRETLS ignores TLS-Required: No", with(func(in *Input) { in.RequireTLS = true; in.TLSOptional = true; in.STS = enforce }),
			want{mech: MechSTS, require: true, verify: "mx.example.net", report: tlsrpt.PolicySTS, authenticated: true}},
		{"REQUIRETLS with a verify route", with(func(in *Input) {
			in.RequireTLS = true
			in.Route = &Route{Domain: "example.net", HasPolicy: true, Policy: Verify}
		}), want{mech: MechRoute, require: true, verify: "mx.example.net", report: tlsrpt.PolicyNone, authenticated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Decide(tt.in)
			w := tt.want
			var refused smtp.Enhanced
			if p.Refuse != nil {
				refused = p.Refuse.Reply.Enhanced
			}
			if p.Mechanism != w.mech || p.Require != w.require || len(p.DANE) != w.dane || p.VerifyName != w.verify ||
				p.AuditName != w.audit || refused != w.refuse || p.Report.Type != w.report || p.Report.Failure != w.failure ||
				p.Authenticated() != w.authenticated {
				t.Errorf("plan %+v (refuse %v)\nwant %+v", p, p.Refuse, w)
			}
			if !strings.Contains(p.Reason, w.reason) {
				t.Errorf("reason %q lacks %q", p.Reason, w.reason)
			}
			if w.dane > 0 || w.require {
				if !p.UsesTLS() {
					t.Errorf("a plan that requires TLS does not use it: %+v", p)
				}
			}
			if w.dane > 0 {
				cfg := p.ClientConfig(nil)
				if !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil || cfg.ServerName != "mx.example.net" {
					t.Errorf("DANE config: skip %v, callback %v, SNI %q", cfg.InsecureSkipVerify, cfg.VerifyConnection != nil, cfg.ServerName)
				}
			}
		})
	}
}
