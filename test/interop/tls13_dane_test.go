package interop

// DANE for SMTP (RFC 7672) end to end, issue #13: the daemon under test
// with `[outbound] dane = true` delivers through the DNSSEC bench to
// receivers on 127.13.7.10–.21:25 whose TLSA records match (also on an
// expired certificate for another name, also on the second MX only), do
// not match, are all unusable, sit in a bogus or an unsigned zone.

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/testcert"
)

func TestTLS13DANE(t *testing.T) {
	ca := newBenchCA(t)
	var (
		eeCert    = selfSigned(t, "mx.ee.dane.example")       // DANE-EE: names and dates ignored...
		otherCert = selfSigned(t, "mx.mismatch.dane.example") // ...but the key must be the published one
		taCert    = ca.valid(t, "mx.ta.dane.example")         // DANE-TA: chain to the CA, name checked
		anyCert   = selfSigned(t, "mx.example")
		// DANE-EE ignores names and dates (RFC 7672 §3.1.1).
		oldCert = testcert.NewWith(t, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		}, "not-the-mx.example")
	)
	startDNSBench(t,
		benchZone{Name: "dane.example", Kind: zoneSigned, Records: []string{
			// DANE-EE on a self-signed certificate: delivered.
			"ee.dane.example. IN MX 10 mx.ee.dane.example.",
			"mx.ee.dane.example. IN A " + benchIP(10),
			"_25._tcp.mx.ee.dane.example. IN TLSA " + tlsaEE(eeCert),
			// TLSA of another key: deferred 4.7.x.
			"mismatch.dane.example. IN MX 10 mx.mismatch.dane.example.",
			"mx.mismatch.dane.example. IN A " + benchIP(11),
			"_25._tcp.mx.mismatch.dane.example. IN TLSA " + tlsaEE(eeCert),
			// The MX and its address are secure, the TLSA lookup is bogus
			// (a CNAME into the bogus zone): deferred, and the plaintext-only
			// server there gets nothing.
			"tlsabogus.dane.example. IN MX 10 mx.tlsabogus.dane.example.",
			"mx.tlsabogus.dane.example. IN A " + benchIP(12),
			"_25._tcp.mx.tlsabogus.dane.example. IN CNAME _25._tcp.mx.bogus.example.",
			// DANE-TA: the CA's certificate, a CA-issued leaf for the MX
			// name, at Postfix.
			"ta.dane.example. IN MX 10 mx.ta.dane.example.",
			"mx.ta.dane.example. IN A " + benchIP(15),
			"_25._tcp.mx.ta.dane.example. IN TLSA " + ca.tlsaTA(),
			// DANE with a server that offers no STARTTLS: never cleartext.
			"stripped.dane.example. IN MX 10 mx.stripped.dane.example.",
			"mx.stripped.dane.example. IN A " + benchIP(16),
			"_25._tcp.mx.stripped.dane.example. IN TLSA " + tlsaEE(eeCert),
			// DANE-EE on an expired certificate for another name: delivered.
			"eeold.dane.example. IN MX 10 mx.eeold.dane.example.",
			"mx.eeold.dane.example. IN A " + benchIP(17),
			"_25._tcp.mx.eeold.dane.example. IN TLSA " + tlsaEE(oldCert),
			// Only unusable records (PKIX-EE, PKIX-TA: usages 1 and 0):
			// TLS without authentication (RFC 7672 §2.2) — delivered to a
			// self-signed server, never in cleartext to one without STARTTLS.
			"unusable.dane.example. IN MX 10 mx.unusable.dane.example.",
			"mx.unusable.dane.example. IN A " + benchIP(18),
			"_25._tcp.mx.unusable.dane.example. IN TLSA 1" + tlsaEE(anyCert)[1:],
			"unusablestrip.dane.example. IN MX 10 mx.unusablestrip.dane.example.",
			"mx.unusablestrip.dane.example. IN A " + benchIP(19),
			"_25._tcp.mx.unusablestrip.dane.example. IN TLSA 0" + tlsaEE(anyCert)[1:],
			// Two MX hosts: the preferred one's TLSA does not match, the
			// next one's does — delivered there (RFC 7672 §2.2.1).
			"fallback.dane.example. IN MX 10 mx1.fallback.dane.example.",
			"fallback.dane.example. IN MX 20 mx2.fallback.dane.example.",
			"mx1.fallback.dane.example. IN A " + benchIP(20),
			"mx2.fallback.dane.example. IN A " + benchIP(21),
			"_25._tcp.mx1.fallback.dane.example. IN TLSA " + tlsaEE(eeCert),
			"_25._tcp.mx2.fallback.dane.example. IN TLSA " + tlsaEE(eeCert),
		}},
		benchZone{Name: "bogus.example", Kind: zoneBogus, Records: []string{
			// The whole domain bogus: its MX lookup SERVFAILs.
			"bogus.example. IN MX 10 mx.bogus.example.",
			"mx.bogus.example. IN A " + benchIP(13),
			"_25._tcp.mx.bogus.example. IN TLSA " + tlsaEE(eeCert),
		}},
		benchZone{Name: "plain.example", Kind: zoneUnsigned, Records: []string{
			// A TLSA record that does not match, in an unsigned zone: ignored.
			"plain.example. IN MX 10 mx.plain.example.",
			"mx.plain.example. IN A " + benchIP(14),
			"_25._tcp.mx.plain.example. IN TLSA " + tlsaEE(eeCert),
		}},
	)
	const (
		eeRcpt       = "bob@ee.dane.example"
		mismatchRcpt = "bob@mismatch.dane.example"
		tlsaBogus    = "bob@tlsabogus.dane.example"
		bogusRcpt    = "bob@bogus.example"
		plainRcpt    = "bob@plain.example"
		taRcpt       = "bob@ta.dane.example"
		strippedRcpt = "bob@stripped.dane.example"
		eeOldRcpt    = "bob@eeold.dane.example"
		unusableRcpt = "bob@unusable.dane.example"
		unusableStr  = "bob@unusablestrip.dane.example"
		fallbackRcpt = "bob@fallback.dane.example"
	)
	mxs := startBenchMXs(t,
		mxSpec{benchIP(10), "mx.ee.dane.example", "opportunistic", eeCert, []string{eeRcpt}},
		mxSpec{benchIP(11), "mx.mismatch.dane.example", "opportunistic", otherCert, []string{mismatchRcpt}},
		mxSpec{benchIP(14), "mx.plain.example", "opportunistic", anyCert, []string{plainRcpt}},
		mxSpec{benchIP(17), "mx.eeold.dane.example", "opportunistic", oldCert, []string{eeOldRcpt}},
		mxSpec{benchIP(18), "mx.unusable.dane.example", "opportunistic", anyCert, []string{unusableRcpt}},
		mxSpec{benchIP(20), "mx1.fallback.dane.example", "opportunistic", otherCert, []string{fallbackRcpt}},
		mxSpec{benchIP(21), "mx2.fallback.dane.example", "opportunistic", eeCert, []string{fallbackRcpt}},
	)
	ee, mismatch, plain, eeOld, unusable, fallback1, fallback2 := mxs[0], mxs[1], mxs[2], mxs[3], mxs[4], mxs[5], mxs[6]
	tlsaBogusMX := startPlainPeer(t, benchIP(12))
	bogus := startPlainPeer(t, benchIP(13))
	ta := startBenchPostfix(t, benchIP(15), "mx.ta.dane.example", "may", taCert, taRcpt)
	stripped := startPlainPeer(t, benchIP(16))
	unusableStrip := startPlainPeer(t, benchIP(19))
	metrics := freeAddr(t)
	a := benchSenderWith(t, ca, "[metrics]\naddress = \""+metrics+"\"\n", "dane = true")

	runCases(t, a, []benchCase{
		{name: "DANE-EE self-signed", rcpt: eeRcpt, want: delivered, received: atSmtpkit(ee, eeRcpt), mech: "dane", report: "tlsa"},
		{name: "TLSA mismatch", rcpt: mismatchRcpt, want: deferred, status: "4.7.", received: atSmtpkit(mismatch, mismatchRcpt), report: "tlsa validation-failure"},
		{name: "TLSA lookup bogus", rcpt: tlsaBogus, want: deferred, status: "4.", received: tlsaBogusMX.received, report: "tlsa dnssec-invalid"},
		{name: "bogus zone", rcpt: bogusRcpt, want: deferred, status: "4.", received: bogus.received},
		{name: "TLSA in unsigned zone", rcpt: plainRcpt, want: delivered, received: atSmtpkit(plain, plainRcpt), mech: "default", report: "no-policy-found"},
		{name: "DANE-TA at Postfix", rcpt: taRcpt, want: delivered, received: atPostfix(ta, taRcpt), mech: "dane", report: "tlsa"},
		{name: "DANE STARTTLS stripped", rcpt: strippedRcpt, want: deferred, status: "4.7.", received: stripped.received, report: "tlsa starttls-not-supported"},
		{name: "DANE-EE expired, other name", rcpt: eeOldRcpt, want: delivered, received: atSmtpkit(eeOld, eeOldRcpt), mech: "dane", report: "tlsa"},
		{name: "unusable TLSA, TLS without authentication", rcpt: unusableRcpt, want: delivered, received: atSmtpkit(unusable, unusableRcpt), mech: "dane"},
		{name: "unusable TLSA, STARTTLS stripped", rcpt: unusableStr, want: deferred, status: "4.7.", received: unusableStrip.received},
		{name: "TLSA mismatch on the first MX, match on the second", rcpt: fallbackRcpt, want: delivered, received: atSmtpkit(fallback2, fallbackRcpt)},
	})
	if n := fallback1.CountFiles(t, fallbackRcpt, "new"); n != 0 {
		t.Errorf("the MX whose TLSA does not match got %d messages", n)
	}

	// The metrics name the mechanism too (issue #13): the five DANE
	// deliveries (EE, EE expired, TA, unusable records, the second MX) and
	// the unsigned zone's default. Deferred attempts are not checked: they
	// are counted with tls_mechanism="unknown" today, even those whose
	// connection DANE refused after the handshake.
	if got := deliveryResults(t, metrics); got["delivered dane"] < 5 || got["delivered default"] < 1 {
		t.Errorf("smtpkit_delivery_results_total by result and tls_mechanism: %v; want delivered dane ≥ 5, delivered default ≥ 1", got)
	}

	// The probe's verdicts agree with what delivery did.
	checkProbe(t, a,
		probeDANEMatch.on("ee.dane.example"), probeDANEMatch.on("eeold.dane.example"), probeDANEMatch.on("ta.dane.example"),
		probeDANEFails.on("mismatch.dane.example"), probeDANEFails.on("stripped.dane.example"),
		probeDANELookup.on("tlsabogus.dane.example"), probeNoRoute.on("bogus.example"),
		probeUnsignedTLSA.on("plain.example"), probeDANEUnusable.on("unusable.dane.example"))

	// Never plaintext: the servers without STARTTLS saw no MAIL command.
	for _, p := range []*plainPeer{tlsaBogusMX, bogus, stripped, unusableStrip} {
		if cmds := p.commands(); strings.Contains(strings.Join(cmds, " "), "MAIL") {
			t.Errorf("%s (no STARTTLS) was sent %q", p.addr, cmds)
		}
	}
}
