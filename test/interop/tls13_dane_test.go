package interop

// DANE for SMTP (RFC 7672) end to end, issue #13: the daemon under test
// with `[outbound] dane = true` delivers through the DNSSEC bench to
// receivers on 127.13.7.10–.19:25 whose TLSA records match, do not match,
// sit in a bogus or an unsigned zone. Skipped until the key is on main.

import (
	"strings"
	"testing"
)

func TestTLS13DANE(t *testing.T) {
	needOutboundKeys(t, "dane")
	ca := newBenchCA(t)
	var (
		eeCert    = selfSigned(t, "mx.ee.dane.example")       // DANE-EE: names and dates ignored...
		otherCert = selfSigned(t, "mx.mismatch.dane.example") // ...but the key must be the published one
		taCert    = ca.valid(t, "mx.ta.dane.example")         // DANE-TA: chain to the CA, name checked
		anyCert   = selfSigned(t, "mx.example")
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
	)
	ee := startBenchMX(t, benchIP(10), "mx.ee.dane.example", "opportunistic", eeCert, eeRcpt)
	mismatch := startBenchMX(t, benchIP(11), "mx.mismatch.dane.example", "opportunistic", otherCert, mismatchRcpt)
	tlsaBogusMX := startPlainPeer(t, benchIP(12))
	bogus := startPlainPeer(t, benchIP(13))
	plain := startBenchMX(t, benchIP(14), "mx.plain.example", "opportunistic", anyCert, plainRcpt)
	ta := startBenchPostfix(t, benchIP(15), "mx.ta.dane.example", "may", taCert, taRcpt)
	stripped := startPlainPeer(t, benchIP(16))
	a := benchSender(t, ca, "dane = true")

	runCases(t, a, []benchCase{
		{name: "DANE-EE self-signed", rcpt: eeRcpt, want: delivered, received: atSmtpkit(ee, eeRcpt), mech: "dane", report: "tlsa"},
		{name: "TLSA mismatch", rcpt: mismatchRcpt, want: deferred, status: "4.7.", received: atSmtpkit(mismatch, mismatchRcpt), report: "tlsa validation-failure"},
		{name: "TLSA lookup bogus", rcpt: tlsaBogus, want: deferred, status: "4.", received: tlsaBogusMX.received, report: "tlsa dnssec-invalid"},
		{name: "bogus zone", rcpt: bogusRcpt, want: deferred, status: "4.", received: bogus.received},
		{name: "TLSA in unsigned zone", rcpt: plainRcpt, want: delivered, received: atSmtpkit(plain, plainRcpt), mech: "default", report: "no-policy-found"},
		{name: "DANE-TA at Postfix", rcpt: taRcpt, want: delivered, received: atPostfix(ta, taRcpt), mech: "dane", report: "tlsa"},
		{name: "DANE STARTTLS stripped", rcpt: strippedRcpt, want: deferred, status: "4.7.", received: stripped.received, report: "tlsa starttls-not-supported"},
	})

	// Never plaintext: the servers without STARTTLS saw no MAIL command.
	for _, p := range []*plainPeer{tlsaBogusMX, bogus, stripped} {
		if cmds := p.commands(); strings.Contains(strings.Join(cmds, " "), "MAIL") {
			t.Errorf("%s (no STARTTLS) was sent %q", p.addr, cmds)
		}
	}
}
