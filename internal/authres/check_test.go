package authres

import (
	"context"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
)

// TestCheckEndToEnd: a dkimpy-signed message from a domain with SPF and
// DMARC records, in the chunks a session writes, larger than the buffer
// between Write and the verifier, gets every result right, and tampered it
// fails DKIM and (SPF not aligned) DMARC.
func TestCheckEndToEnd(t *testing.T) {
	ed := ed25519Key(t)
	_, res := startZone(t, dnstest.Zone{Records: []string{
		txtRR("ed._domainkey.sig.test.", ed.txt),
		`sig.test. TXT "v=spf1 ip4:127.14.3.10 -all"`,
		`esp.test. TXT "v=spf1 ip4:127.14.3.10 -all"`,
		`_dmarc.sig.test. TXT "v=DMARC1; p=reject; rua=mailto:d@sig.test"`,
		`10.3.14.127.in-addr.arpa. PTR client.sig.test.`,
		`client.sig.test. A 127.14.3.10`,
	}})
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	body := strings.Repeat("a line of the body that is long enough to be counted\r\n", 3<<20/55)
	msg := dkimpySign(t, strings.Replace(dkimMessage, "this is signed.\r\n", body, 1),
		signer{D: "sig.test", S: "ed", Alg: ed.alg, Key: ed.priv})
	if len(msg) <= maxBuffered {
		t.Fatalf("message of %d bytes does not exceed the buffer", len(msg))
	}
	for _, tc := range []struct {
		name, msg, mailFrom   string
		dkim, dmarc, spf      string
		spfAligned, dkimAlign bool
	}{
		{"signed, esp bounce address", msg, "bounce@esp.test", "pass", "pass", "pass", false, true},
		{"tampered, esp bounce address", strings.Replace(msg, "long enough", "LONG ENOUGH", 1), "bounce@esp.test", "fail", "fail", "pass", false, false},
		{"tampered, aligned SPF", strings.Replace(msg, "long enough", "LONG ENOUGH", 1), "alice@sig.test", "fail", "pass", "pass", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := v.Begin(context.Background(), netip.MustParseAddr("::ffff:127.14.3.10"), "client.sig.test", addr(t, tc.mailFrom))
			for m := tc.msg; len(m) > 0; {
				k := min(32<<10, len(m))
				if _, err := c.Write([]byte(m[:k])); err != nil {
					t.Fatal(err)
				}
				m = m[k:]
			}
			r := c.Finish()
			if len(r.DKIM) != 1 || r.DKIM[0].Result != tc.dkim || r.DMARC.Result != tc.dmarc || r.SPF != tc.spf ||
				r.DMARC.SPFAligned != tc.spfAligned || r.DMARC.DKIMAligned != tc.dkimAlign {
				t.Errorf("result %+v", r)
			}
			if r.DMARC.Policy != "reject" || r.DMARC.Domain != "sig.test" || !r.DMARC.Sampled || r.FromDomain != "sig.test" {
				t.Errorf("DMARC %+v", r.DMARC)
			}
			if r.IPRev != "pass" || r.IPRevName != "client.sig.test" || r.IP != netip.MustParseAddr("127.14.3.10") {
				t.Errorf("iprev %q %q %v", r.IPRev, r.IPRevName, r.IP)
			}
			if r2 := c.Finish(); r2.Header != r.Header {
				t.Error("a second Finish gave another result")
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Error("Write after Finish succeeded")
			}
		})
	}
}

// TestMaxSignatures: signatures beyond the cap are reported "policy" and
// not checked: their keys are never asked for.
func TestMaxSignatures(t *testing.T) {
	ed := ed25519Key(t)
	var recs []string
	var signers []signer
	for _, sel := range []string{"s1", "s2", "s3", "s4"} {
		recs = append(recs, txtRR(sel+"._domainkey.sig.test.", ed.txt))
		signers = append(signers, signer{D: "sig.test", S: sel, Alg: ed.alg, Key: ed.priv})
	}
	srv, res := startZone(t, dnstest.Zone{Records: recs})
	v := New(Options{Resolver: res, AuthServID: "mx.test", MaxSignatures: 2})
	msg := dkimpySign(t, dkimMessage, signers...) // s4 on top
	r := verifyChunks(t, v, msg, 1000)
	var got []string
	for _, d := range r.DKIM {
		got = append(got, d.Selector+"="+d.Result)
	}
	if strings.Join(got, " ") != "s4=pass s3=pass s2=policy s1=policy" {
		t.Errorf("DKIM %v", got)
	}
	for _, q := range srv.Queries() {
		if q.Name == "s1._domainkey.sig.test." || q.Name == "s2._domainkey.sig.test." {
			t.Errorf("asked for %s, beyond the cap", q.Name)
		}
	}
}

// TestAbort: an aborted check, with its key lookup hanging on a DNS server
// that never answers, ends at once and leaves no goroutine behind.
func TestAbort(t *testing.T) {
	_, res := startZone(t, dnstest.Zone{Silent: []string{"s._domainkey.slow.test.", "slow.test."}})
	v := New(Options{Resolver: res, AuthServID: "mx.test", Timeout: time.Minute})
	before := runtime.NumGoroutine()
	for range 20 {
		c := v.Begin(context.Background(), netip.MustParseAddr("127.14.3.10"), "client.test", addr(t, "a@slow.test"))
		if _, err := c.Write([]byte(crlf("DKIM-Signature: v=1; a=ed25519-sha256; d=slow.test; s=s; h=from; bh=; b=\nFrom: a@slow.test\n\nbody\n"))); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Abort()
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("Abort took %v", d)
		}
		c.Abort()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines before, %d after 20 aborted checks", before, n)
	}
}

// TestDNSFailureIsTemperror: with the DNS server gone, every check is
// temperror (RFC 7208 §2.6.6, RFC 6376 §6.1.2, RFC 7489 §6.6.3), never a
// failure.
func TestDNSFailureIsTemperror(t *testing.T) {
	_, res := startZone(t, dnstest.Zone{ServFail: []string{"sig.test.", "_dmarc.sig.test.", "ed._domainkey.sig.test.", "10.3.14.127.in-addr.arpa.", "client.test."}})
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	ed := ed25519Key(t)
	msg := dkimpySign(t, dkimMessage, signer{D: "sig.test", S: "ed", Alg: ed.alg, Key: ed.priv})
	r := verifyChunks(t, v, msg, 512)
	if r.SPF != "temperror" || r.HeloSPF != "temperror" || len(r.DKIM) != 1 || r.DKIM[0].Result != "temperror" ||
		r.DMARC.Result != "temperror" || r.IPRev != "temperror" {
		t.Errorf("%+v", r)
	}
}

// TestLookupsCached: a second message from the same sender and signer is
// verified without asking the DNS again (the Verifier keeps answers for
// their TTLs), and gets the same results.
func TestLookupsCached(t *testing.T) {
	ed := ed25519Key(t)
	srv, res := startZone(t, dnstest.Zone{Records: []string{
		txtRR("ed._domainkey.sig.test.", ed.txt),
		`sig.test. TXT "v=spf1 ip4:127.14.3.10 -all"`,
		`_dmarc.sig.test. TXT "v=DMARC1; p=reject"`,
	}})
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	msg := dkimpySign(t, dkimMessage, signer{D: "sig.test", S: "ed", Alg: ed.alg, Key: ed.priv})
	first := verifyChunks(t, v, msg, 100)
	n := len(srv.Queries())
	second := verifyChunks(t, v, msg, 100)
	if m := len(srv.Queries()); m != n {
		t.Errorf("second message asked %d more queries: %v", m-n, srv.Queries()[n:])
	}
	if first.Header != second.Header || first.DMARC.Result != "pass" {
		t.Errorf("first %q\nsecond %q", first.Header, second.Header)
	}
}
