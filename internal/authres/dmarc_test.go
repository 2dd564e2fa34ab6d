package authres

import (
	"context"
	"testing"

	"smtpkit/internal/dns/dnstest"
)

var dmarcZone = dnstest.Zone{
	Records: []string{
		`_dmarc.relaxed.test. TXT "v=DMARC1; p=quarantine; rua=mailto:r@relaxed.test"`,
		`_dmarc.strict.test. TXT "v=DMARC1; p=reject; adkim=s; aspf=s"`,
		`_dmarc.org.test. TXT "v=DMARC1; p=reject; sp=quarantine"`,
		`_dmarc.own.sub.org.test. TXT "v=DMARC1; p=none"`,
		`_dmarc.nosp.test. TXT "v=DMARC1; p=reject"`,
		`_dmarc.pct0.test. TXT "v=DMARC1; p=reject; pct=0"`,
		`_dmarc.pct50.test. TXT "v=DMARC1; p=reject; pct=50"`,
		`_dmarc.bad.test. TXT "v=DMARC1; p=bogus"`,
		`_dmarc.badrua.test. TXT "v=DMARC1; p=bogus; rua=mailto:dmarc@badrua.test"`,
		`_dmarc.nop.test. TXT "v=DMARC1; rua=mailto:dmarc@nop.test"`,
		`_dmarc.two.test. TXT "v=DMARC1; p=reject"`,
		`_dmarc.two.test. TXT "v=DMARC1; p=none"`,
		`_dmarc.other.test. TXT "v=spf1 -all"`,
		`_dmarc.co.uk. TXT "v=DMARC1; p=reject"`,
		`_dmarc.example.co.uk. TXT "v=DMARC1; p=quarantine"`,
	},
	ServFail: []string{"_dmarc.tmp.test."},
}

type dkimSig struct{ d, result string }

func TestDMARC(t *testing.T) {
	_, res := startZone(t, dmarcZone)
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	for _, tc := range []struct {
		name       string
		from       string // From domain
		spf        string
		spfDomain  string
		dkim       []dkimSig
		want       string
		policy     string
		domain     string
		spfAl      bool
		dkimAl     bool
		sampled    bool
		fiftyRolls int // what the pct die rolls (0-99)
	}{
		{name: "relaxed spf same domain", from: "relaxed.test", spf: "pass", spfDomain: "relaxed.test", want: "pass", policy: "quarantine", domain: "relaxed.test", spfAl: true, sampled: true},
		{name: "relaxed spf subdomain", from: "relaxed.test", spf: "pass", spfDomain: "bounce.relaxed.test", want: "pass", policy: "quarantine", domain: "relaxed.test", spfAl: true, sampled: true},
		{name: "relaxed dkim parent", from: "mail.relaxed.test", spf: "fail", spfDomain: "x.test", dkim: []dkimSig{{"relaxed.test", "pass"}}, want: "pass", policy: "quarantine", domain: "relaxed.test", dkimAl: true, sampled: true},
		{name: "relaxed spf pass unaligned", from: "relaxed.test", spf: "pass", spfDomain: "esp.test", want: "fail", policy: "quarantine", domain: "relaxed.test", sampled: true},
		{name: "relaxed dkim fail aligned", from: "relaxed.test", spf: "none", spfDomain: "relaxed.test", dkim: []dkimSig{{"relaxed.test", "fail"}}, want: "fail", policy: "quarantine", domain: "relaxed.test", sampled: true},
		{name: "relaxed one of two signatures aligned", from: "relaxed.test", spf: "fail", spfDomain: "relaxed.test", dkim: []dkimSig{{"esp.test", "pass"}, {"relaxed.test", "pass"}}, want: "pass", policy: "quarantine", domain: "relaxed.test", dkimAl: true, sampled: true},
		{name: "strict spf subdomain unaligned", from: "strict.test", spf: "pass", spfDomain: "bounce.strict.test", want: "fail", policy: "reject", domain: "strict.test", sampled: true},
		{name: "strict dkim subdomain unaligned", from: "strict.test", spf: "fail", spfDomain: "strict.test", dkim: []dkimSig{{"mail.strict.test", "pass"}}, want: "fail", policy: "reject", domain: "strict.test", sampled: true},
		{name: "strict exact", from: "strict.test", spf: "pass", spfDomain: "strict.test", dkim: []dkimSig{{"strict.test", "pass"}}, want: "pass", policy: "reject", domain: "strict.test", spfAl: true, dkimAl: true, sampled: true},
		{name: "subdomain uses org record and sp", from: "sub.org.test", spf: "fail", spfDomain: "sub.org.test", want: "fail", policy: "quarantine", domain: "org.test", sampled: true},
		{name: "org domain itself uses p", from: "org.test", spf: "fail", spfDomain: "org.test", want: "fail", policy: "reject", domain: "org.test", sampled: true},
		{name: "subdomain with its own record", from: "own.sub.org.test", spf: "fail", spfDomain: "own.sub.org.test", want: "fail", policy: "none", domain: "own.sub.org.test", sampled: true},
		{name: "subdomain without sp uses p", from: "a.b.nosp.test", spf: "fail", spfDomain: "x.test", want: "fail", policy: "reject", domain: "nosp.test", sampled: true},
		{name: "pct=0 never sampled", from: "pct0.test", spf: "fail", spfDomain: "pct0.test", want: "fail", policy: "reject", domain: "pct0.test", sampled: false},
		{name: "pct=50 roll 49 sampled", from: "pct50.test", spf: "fail", spfDomain: "pct50.test", want: "fail", policy: "reject", domain: "pct50.test", sampled: true, fiftyRolls: 49},
		{name: "pct=50 roll 50 not sampled", from: "pct50.test", spf: "fail", spfDomain: "pct50.test", want: "fail", policy: "reject", domain: "pct50.test", sampled: false, fiftyRolls: 50},
		{name: "no record", from: "none.test", spf: "pass", spfDomain: "none.test", want: "none"},
		{name: "no DMARC record among TXT", from: "other.test", spf: "pass", spfDomain: "other.test", want: "none"},
		{name: "two records is none", from: "two.test", spf: "fail", spfDomain: "two.test", want: "none"},
		{name: "invalid record permerror", from: "bad.test", spf: "fail", spfDomain: "bad.test", want: "permerror", domain: "bad.test"},
		{name: "invalid p with mailto rua acts as p=none", from: "badrua.test", spf: "fail", spfDomain: "badrua.test", want: "fail", policy: "none", domain: "badrua.test", sampled: true},
		{name: "missing p with mailto rua acts as p=none", from: "nop.test", spf: "pass", spfDomain: "nop.test", want: "pass", policy: "none", domain: "nop.test", spfAl: true, sampled: true},
		{name: "record lookup servfail temperror", from: "tmp.test", spf: "fail", spfDomain: "tmp.test", want: "temperror"},
		{name: "aligned spf temperror is temperror", from: "nosp.test", spf: "temperror", spfDomain: "nosp.test", want: "temperror", policy: "reject", domain: "nosp.test", sampled: true},
		{name: "aligned dkim temperror is temperror", from: "nosp.test", spf: "fail", spfDomain: "x.test", dkim: []dkimSig{{"nosp.test", "temperror"}}, want: "temperror", policy: "reject", domain: "nosp.test", sampled: true},
		{name: "unaligned temperror is still fail", from: "nosp.test", spf: "temperror", spfDomain: "x.test", want: "fail", policy: "reject", domain: "nosp.test", sampled: true},
		{name: "public suffix is no org domain for another registrant", from: "example.co.uk", spf: "pass", spfDomain: "evil.co.uk", want: "fail", policy: "quarantine", domain: "example.co.uk", sampled: true},
		{name: "public suffix org lookup stops at the registrable domain", from: "mail.example.co.uk", spf: "pass", spfDomain: "example.co.uk", want: "pass", policy: "quarantine", domain: "example.co.uk", spfAl: true, sampled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v.intn = func(int) int { return tc.fiftyRolls }
			r := Result{SPF: tc.spf, SPFDomain: tc.spfDomain}
			for _, s := range tc.dkim {
				r.DKIM = append(r.DKIM, DKIMResult{Domain: s.d, Result: s.result})
			}
			got := v.evalDMARC(context.Background(), message{fromDomain: tc.from}, r)
			if got.Result != tc.want || got.Policy != tc.policy || got.Domain != tc.domain ||
				got.SPFAligned != tc.spfAl || got.DKIMAligned != tc.dkimAl || got.Sampled != tc.sampled && tc.policy != "" {
				t.Errorf("got %+v\nwant result %s policy %q domain %q spf/dkim aligned %v/%v sampled %v",
					got, tc.want, tc.policy, tc.domain, tc.spfAl, tc.dkimAl, tc.sampled)
			}
			if tc.domain != "" && tc.want != "permerror" && got.Record == "" {
				t.Errorf("no record text: %+v", got)
			}
		})
	}
}

// TestFromDomain: the From domain DMARC evaluates (RFC 7489 §6.6.1).
func TestFromDomain(t *testing.T) {
	for _, tc := range []struct {
		header      string
		domain, err string
		none        bool
	}{
		{"From: a@Example.TEST\r\n", "example.test", "", false},
		{"From: \"Alice\" <alice@example.test>\r\n", "example.test", "", false},
		{"From: =?utf-8?q?Al=C3=AFce?= <alice@example.test>\r\n", "example.test", "", false},
		{"From: =?x-unknown?q?abc?= <alice@example.test>\r\n", "example.test", "", false},
		{"from:\r\n  Alice\r\n <alice@example.test>\r\n", "example.test", "", false},
		{"From: a@example.test, b@EXAMPLE.test\r\n", "example.test", "", false},
		{"From: a@example.test, b@other.test\r\n", "", "From has mailboxes in different domains", false},
		{"From: a@example.test\r\nFrom: b@example.test\r\n", "", "more than one From field", false},
		{"Subject: none\r\n", "", "", true},
		{"From: undisclosed\r\n", "", "no domain in From", false},
		{"From: Alice <alice@localhost>\r\n", "", "no valid domain in From", false},
		{"From: Broken <<alice@example.test>\r\n", "example.test", "", false},
	} {
		var h headerScan
		h.feed([]byte(tc.header + "\r\nbody\r\n"))
		m := h.parse()
		if m.fromDomain != tc.domain || m.fromErr != tc.err || m.fromNone != tc.none {
			t.Errorf("%q: %+v", tc.header, m)
		}
	}
	var h headerScan
	for range 1000 {
		h.feed([]byte("X-Filler: " + string(make([]byte, 300)) + "\r\n"))
	}
	if m := h.parse(); m.fromErr != "header section too large" {
		t.Errorf("oversized header: %+v", m)
	}
}
