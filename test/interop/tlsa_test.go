package interop

import (
	"strings"
	"testing"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
)

// TestTLSAPublished: the record `smtpkit tlsa` prints for a running
// receiver, published in a DNSSEC-validated zone, is what a DANE sender
// (our own daemon, outbound.dane on by default) accepts: the message is
// delivered and the log names the mechanism. A record printed for another
// key (a key change without a rollover, docs/operations.md) makes the
// same sender defer with 4.7.5 and never deliver in clear.
func TestTLSAPublished(t *testing.T) {
	bin, err := smtpkitBinary.build()
	if err != nil {
		t.Fatalf("building smtpkit: %v", err)
	}
	// One receiver on 127.13.1.2:25 serving its own self-signed
	// certificate for mx.dane.example, MX for two domains.
	cert := testcert.New(t, "mx.dane.example")
	b := startBenchMX(t, "127.13.1.2", "mx.dane.example", "opportunistic", cert,
		"bob@dane.example", "carol@stale.example")

	// What the operator runs on the receiver: its own configuration.
	good := strings.TrimSpace(mustRun(t, nil, bin, "tlsa", "-config", b.ConfigPath).Stdout)
	if want := "_25._tcp.mx.dane.example. IN TLSA 3 1 1 "; !strings.HasPrefix(good, want) {
		t.Fatalf("smtpkit tlsa: %q, want %q...", good, want)
	}
	// The record of a key the receiver does not have.
	oldFile, _ := testcert.WriteFiles(t, testcert.New(t, "mx.stale.example"), t.TempDir())
	stale := strings.TrimSpace(mustRun(t, nil, bin, "tlsa", "--host", "mx.stale.example", oldFile).Stdout)

	zone := dnstest.Start(t, dnstest.Zone{Authentic: true, Records: []string{
		"dane.example. MX 10 mx.dane.example.",
		"mx.dane.example. A 127.13.1.2",
		good,
		"stale.example. MX 10 mx.stale.example.",
		"mx.stale.example. A 127.13.1.2",
		stale,
	}})
	a := startSender(t, outConf{resolver: zone.Addr})

	outSubmit(t, a, testMessage("tlsa-published"), "bob@dane.example")
	b.WaitMessages(t, "bob@dane.example", 1)
	waitLogCount(t, a, "tls_mechanism=dane", 1)

	outSubmit(t, a, testMessage("tlsa-stale"), "carol@stale.example")
	waitLogCount(t, a, "4.7.5", 1)
	if n := b.CountFiles(t, "carol@stale.example", "new"); n != 0 {
		t.Errorf("%d messages delivered to carol@stale.example against a stale TLSA record", n)
	}
	if n := queued(t, a); n != 1 {
		t.Errorf("sender's queue holds %d messages, want the deferred one", n)
	}
}
