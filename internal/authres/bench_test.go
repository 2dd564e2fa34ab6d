package authres

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"smtpkit/internal/dns/dnstest"
)

// BenchmarkCheck verifies a 1 MiB message with an Ed25519 and an RSA
// signature (dkimpy's), SPF and DMARC, written in 64 KiB pieces; DNS
// answers come from the cache after the first message.
func BenchmarkCheck(b *testing.B) {
	ed, rs := ed25519Key(b), rsaKey(b)
	_, res := startZone(b, dnstest.Zone{Records: []string{
		txtRR("ed._domainkey.sig.test.", ed.txt),
		txtRR("rsa._domainkey.sig.test.", rs.txt),
		`sig.test. TXT "v=spf1 ip4:127.14.3.10 -all"`,
		`_dmarc.sig.test. TXT "v=DMARC1; p=reject"`,
	}})
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	body := strings.Repeat("a line of the body that is long enough to be counted\r\n", 1<<20/55)
	msg := []byte(dkimpySign(b, strings.Replace(dkimMessage, "this is signed.\r\n", body, 1),
		signer{D: "sig.test", S: "ed", Alg: ed.alg, Key: ed.priv}, signer{D: "sig.test", S: "rsa", Alg: rs.alg, Key: rs.priv}))
	from := addr(b, "alice@sig.test")
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for range b.N {
		c := v.Begin(context.Background(), netip.MustParseAddr("127.14.3.10"), "client.test", from)
		for m := msg; len(m) > 0; {
			k := min(64<<10, len(m))
			_, _ = c.Write(m[:k])
			m = m[k:]
		}
		if r := c.Finish(); r.DMARC.Result != "pass" || r.DKIM[0].Result != "pass" || r.DKIM[1].Result != "pass" {
			b.Fatalf("%+v", r)
		}
	}
}
