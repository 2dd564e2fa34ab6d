package interop

// REQUIRETLS (RFC 8689) and the TLS-Required: No header end to end on the
// bench, issue #13: a REQUIRETLS message goes only to an MX whose name was
// authenticated (DANE or MTA-STS) over TLS and that offers REQUIRETLS —
// our own server does, Postfix does not —, else it bounces with 5.7.30
// without its content; a message with TLS-Required: No is delivered
// although DANE or MTA-STS would refuse the MX (§4.1), unless it was also
// sent with REQUIRETLS, which wins.

import (
	"testing"
)

func TestTLS13RequireTLS(t *testing.T) {
	ca := newBenchCA(t)
	var (
		daneCert  = selfSigned(t, "mx.dane.rt.example")
		pfCert    = ca.valid(t, "mx.pf.rt.example")
		otherCert = selfSigned(t, "mx.nodane.rt.example")
	)
	// MTA-STS enforce with a valid certificate, and with a self-signed one.
	stsRT, noSTS := stsDomain{"rt", 34, 40}, stsDomain{"nort", 36, 41}
	startDNSBench(t,
		benchZone{Name: "rt.example", Kind: zoneSigned, Records: []string{
			// DANE-authenticated, offers REQUIRETLS (smtpkit).
			"dane.rt.example. IN MX 10 mx.dane.rt.example.",
			"mx.dane.rt.example. IN A " + benchIP(31),
			"_25._tcp.mx.dane.rt.example. IN TLSA " + tlsaEE(daneCert),
			// DANE-authenticated, no REQUIRETLS (Postfix).
			"pf.rt.example. IN MX 10 mx.pf.rt.example.",
			"mx.pf.rt.example. IN A " + benchIP(32),
			"_25._tcp.mx.pf.rt.example. IN TLSA " + tlsaEE(pfCert),
			// A TLSA record that does not match the server's key.
			"nodane.rt.example. IN MX 10 mx.nodane.rt.example.",
			"mx.nodane.rt.example. IN A " + benchIP(35),
			"_25._tcp.mx.nodane.rt.example. IN TLSA " + tlsaEE(daneCert),
		}},
		benchZone{Name: "rtplain.example", Kind: zoneUnsigned, Records: []string{
			// Neither DANE nor MTA-STS: not authenticated, though it offers REQUIRETLS.
			"unauth.rtplain.example. IN MX 10 mx.unauth.rtplain.example.",
			"mx.unauth.rtplain.example. IN A " + benchIP(33),
		}},
		benchZone{Name: "sts.example", Kind: zoneUnsigned, Records: append(stsRT.records("rt1"), noSTS.records("rt1")...)},
	)
	for _, d := range []stsDomain{stsRT, noSTS} {
		startSTSServer(t, benchIP(d.policy), ca.valid(t, "mta-sts."+d.domain()), stsPolicy("enforce", 86400, d.mxHost()))
	}

	const (
		daneRcpt   = "bob@dane.rt.example"
		pfRcpt     = "bob@pf.rt.example"
		pfBoth     = "carol@pf.rt.example"
		unauthRcpt = "bob@unauth.rtplain.example"
		noDANERcpt = "bob@nodane.rt.example"
	)
	mxs := startBenchMXs(t,
		mxSpec{benchIP(31), "mx.dane.rt.example", "opportunistic", daneCert, []string{daneRcpt}},
		mxSpec{benchIP(33), "mx.unauth.rtplain.example", "opportunistic", selfSigned(t, "mx.unauth.rtplain.example"), []string{unauthRcpt}},
		mxSpec{benchIP(stsRT.mx), stsRT.mxHost(), "opportunistic", ca.valid(t, stsRT.mxHost()), []string{stsRT.rcpt()}},
		mxSpec{benchIP(35), "mx.nodane.rt.example", "opportunistic", otherCert, []string{noDANERcpt}},
		mxSpec{benchIP(noSTS.mx), noSTS.mxHost(), "opportunistic", selfSigned(t, noSTS.mxHost()), []string{noSTS.rcpt()}},
	)
	dane, unauth, sts, noDANE, noSTSMX := mxs[0], mxs[1], mxs[2], mxs[3], mxs[4]
	pf := startBenchPostfix(t, benchIP(32), "mx.pf.rt.example", "may", pfCert, pfRcpt, pfBoth)
	a := benchSender(t, ca, "dane = true", "mta_sts = true")

	tlsRequiredNo := func(name string) []byte {
		return append([]byte("TLS-Required: No\r\n"), testMessage(benchCase{name: name}.marker())...)
	}
	runCases(t, a, []benchCase{
		{name: "REQUIRETLS to DANE MX offering it", rcpt: daneRcpt, requireTLS: true, want: delivered,
			received: atSmtpkit(dane, daneRcpt), mech: "dane"},
		{name: "REQUIRETLS to MTA-STS MX offering it", rcpt: stsRT.rcpt(), requireTLS: true, want: delivered,
			received: atSmtpkit(sts, stsRT.rcpt()), mech: "mta-sts"},
		{name: "REQUIRETLS to Postfix without it", rcpt: pfRcpt, requireTLS: true, want: bounced, status: "5.7.30",
			received: atPostfix(pf, pfRcpt)},
		{name: "REQUIRETLS to unauthenticated MX", rcpt: unauthRcpt, requireTLS: true, want: bounced, status: "5.7.30",
			received: atSmtpkit(unauth, unauthRcpt)},
		{name: "TLS-Required No with TLSA mismatch", rcpt: noDANERcpt, want: delivered,
			msg: tlsRequiredNo("TLS-Required No with TLSA mismatch"), received: atSmtpkit(noDANE, noDANERcpt)},
		{name: "TLS-Required No with MTA-STS self-signed", rcpt: noSTS.rcpt(), want: delivered,
			msg: tlsRequiredNo("TLS-Required No with MTA-STS self-signed"), received: atSmtpkit(noSTSMX, noSTS.rcpt())},
		{name: "REQUIRETLS wins over TLS-Required No", rcpt: pfBoth, requireTLS: true, want: bounced, status: "5.7.30",
			msg: tlsRequiredNo("REQUIRETLS wins over TLS-Required No"), received: atPostfix(pf, pfBoth)},
	})

	// The probe says the same of a REQUIRETLS message at each MX.
	checkProbeRequireTLS(t, a, map[string]string{
		"dane.rt.example": "relayed", stsRT.domain(): "relayed",
		"pf.rt.example": "bounced", "unauth.rtplain.example": "bounced",
	})
}
