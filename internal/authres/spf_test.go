package authres

import (
	"testing"

	"smtpkit/internal/dns/dnstest"
)

// spfZone is the SPF test zone: RFC 7208 mechanisms, modifiers, macros and
// the error cases, shared with the pyspf oracle (TestSPFAgainstPyspf).
var spfZone = dnstest.Zone{
	Records: []string{
		`ip.test. TXT "v=spf1 ip4:127.14.3.10 ip6:fd14:3::/64 -all"`,
		`amx.test. TXT "v=spf1 a mx/24 -all"`,
		`amx.test. A 127.14.3.11`,
		`amx.test. MX 10 mx.amx.test.`,
		`mx.amx.test. A 127.14.4.1`,
		`inc.test. TXT "v=spf1 include:ip.test ~all"`,
		`neutral.test. TXT "v=spf1 ?all"`,
		`soft.test. TXT "v=spf1 ~all"`,
		`redir.test. TXT "v=spf1 redirect=ip.test"`,
		`incnone.test. TXT "v=spf1 include:nothing.test -all"`,
		`two.test. TXT "v=spf1 -all"`,
		`two.test. TXT "v=spf1 +all"`,
		`norec.test. A 127.14.3.10`,
		`norec.test. TXT "some other text"`,
		`loop.test. TXT "v=spf1 include:loop.test -all"`,
		`many.test. TXT "v=spf1 a:h1.many.test a:h2.many.test a:h3.many.test a:h4.many.test a:h5.many.test a:h6.many.test a:h7.many.test a:h8.many.test a:h9.many.test a:h10.many.test a:h11.many.test ip4:127.14.3.10 -all"`,
		`h1.many.test. A 127.0.0.1`, `h2.many.test. A 127.0.0.1`, `h3.many.test. A 127.0.0.1`,
		`h4.many.test. A 127.0.0.1`, `h5.many.test. A 127.0.0.1`, `h6.many.test. A 127.0.0.1`,
		`h7.many.test. A 127.0.0.1`, `h8.many.test. A 127.0.0.1`, `h9.many.test. A 127.0.0.1`,
		`h10.many.test. A 127.0.0.1`, `h11.many.test. A 127.0.0.1`,
		`void.test. TXT "v=spf1 a:v1.void.test a:v2.void.test a:v3.void.test ip4:127.14.3.10 -all"`,
		`exists.test. TXT "v=spf1 exists:%{i}.ok.exists.test -all"`,
		`127.14.3.10.ok.exists.test. A 127.0.0.2`,
		`local.test. TXT "v=spf1 exists:%{l}.users.local.test -all"`,
		`alice.users.local.test. A 127.0.0.2`,
		`ptr.test. TXT "v=spf1 ptr -all"`,
		`10.3.14.127.in-addr.arpa. PTR host.ptr.test.`,
		`host.ptr.test. A 127.14.3.10`,
		`badip.test. TXT "v=spf1 ip4:999.1.1.1 -all"`,
		`badmech.test. TXT "v=spf1 foo:bar -all"`,
		`temp.test. TXT "v=spf1 include:broken.test -all"`,
		`helo.test. TXT "v=spf1 ip4:127.14.3.20 -all"`,
		`case.test. TXT "V=SPF1 IP4:127.14.3.10 -ALL"`,
	},
	ServFail: []string{"broken.test.", "servfail.test."},
}

// spfCase is one row: the client IP, MAIL FROM, HELO and the expected
// result for the MAIL FROM identity.
type spfCase struct {
	name, ip, from, helo, want string
}

var spfCases = []spfCase{
	{"ip4 pass", "127.14.3.10", "a@ip.test", "x.test", "pass"},
	{"ip4 fail", "127.14.3.99", "a@ip.test", "x.test", "fail"},
	{"ip6 pass", "fd14:3::5", "a@ip.test", "x.test", "pass"},
	{"ip6 fail", "fd14:4::5", "a@ip.test", "x.test", "fail"},
	{"a pass", "127.14.3.11", "a@amx.test", "x.test", "pass"},
	{"mx cidr pass", "127.14.4.200", "a@amx.test", "x.test", "pass"},
	{"a mx fail", "127.14.5.1", "a@amx.test", "x.test", "fail"},
	{"include pass", "127.14.3.10", "a@inc.test", "x.test", "pass"},
	{"include no match softfail", "127.14.3.99", "a@inc.test", "x.test", "softfail"},
	{"neutral", "127.14.3.10", "a@neutral.test", "x.test", "neutral"},
	{"softfail", "127.14.3.10", "a@soft.test", "x.test", "softfail"},
	{"redirect pass", "127.14.3.10", "a@redir.test", "x.test", "pass"},
	{"redirect fail", "127.14.3.99", "a@redir.test", "x.test", "fail"},
	{"include of none is permerror", "127.14.3.10", "a@incnone.test", "x.test", "permerror"},
	{"two records permerror", "127.14.3.10", "a@two.test", "x.test", "permerror"},
	{"no spf record none", "127.14.3.10", "a@norec.test", "x.test", "none"},
	{"nxdomain none", "127.14.3.10", "a@nothing.test", "x.test", "none"},
	{"include loop permerror", "127.14.3.10", "a@loop.test", "x.test", "permerror"},
	{"more than 10 lookups permerror", "127.14.3.10", "a@many.test", "x.test", "permerror"},
	{"more than 2 void lookups permerror", "127.14.3.10", "a@void.test", "x.test", "permerror"},
	{"exists macro i pass", "127.14.3.10", "a@exists.test", "x.test", "pass"},
	{"exists macro i fail", "127.14.3.11", "a@exists.test", "x.test", "fail"},
	{"macro l pass", "127.14.3.10", "alice@local.test", "x.test", "pass"},
	{"macro l fail", "127.14.3.10", "bob@local.test", "x.test", "fail"},
	{"ptr pass", "127.14.3.10", "a@ptr.test", "x.test", "pass"},
	{"ptr fail", "127.14.3.11", "a@ptr.test", "x.test", "fail"},
	{"bad ip4 permerror", "127.14.3.10", "a@badip.test", "x.test", "permerror"},
	{"unknown mechanism permerror", "127.14.3.10", "a@badmech.test", "x.test", "permerror"},
	{"include servfail temperror", "127.14.3.10", "a@temp.test", "x.test", "temperror"},
	{"servfail temperror", "127.14.3.10", "a@servfail.test", "x.test", "temperror"},
	{"null sender uses helo pass", "127.14.3.20", "", "helo.test", "pass"},
	{"null sender uses helo fail", "127.14.3.10", "", "helo.test", "fail"},
	{"case-insensitive record", "127.14.3.10", "a@case.test", "x.test", "pass"},
}

func TestSPF(t *testing.T) {
	_, res := startZone(t, spfZone)
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	for _, tc := range spfCases {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, v, tc.ip, tc.helo, tc.from, "")
			if r.SPF != tc.want {
				t.Errorf("SPF = %q, want %q", r.SPF, tc.want)
			}
		})
	}
}

func TestHeloSPF(t *testing.T) {
	_, res := startZone(t, spfZone)
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	for _, tc := range []struct{ name, ip, helo, want, wantDomain string }{
		{"pass", "127.14.3.20", "helo.test", "pass", "ip.test"},
		{"fail", "127.14.3.21", "helo.test", "fail", "ip.test"},
		{"address literal not checked", "127.14.3.20", "[127.14.3.20]", "none", "ip.test"},
		{"single label not checked", "127.14.3.20", "localhost", "none", "ip.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, v, tc.ip, tc.helo, "a@ip.test", "")
			if r.HeloSPF != tc.want || r.SPFDomain != tc.wantDomain {
				t.Errorf("HeloSPF = %q, SPFDomain = %q; want %q, %q", r.HeloSPF, r.SPFDomain, tc.want, tc.wantDomain)
			}
		})
	}
}
