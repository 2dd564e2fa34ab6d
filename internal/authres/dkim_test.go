package authres

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"smtpkit/internal/dns/dnstest"
)

// testKey is a DKIM key: the private half as dkimpy takes it, the TXT
// record for the zone.
type testKey struct {
	alg, priv, txt string
}

func rsaKey(t testing.TB) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return testKey{"rsa-sha256", string(priv), "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)}
}

func ed25519Key(t testing.TB) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{"ed25519-sha256", base64.StdEncoding.EncodeToString(priv.Seed()),
		"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
}

// txtRR writes a TXT record in zone syntax, split into 200-octet strings
// (RFC 1035 §3.3.14: at most 255 each).
func txtRR(name, txt string) string {
	var parts []string
	for len(txt) > 200 {
		parts = append(parts, txt[:200])
		txt = txt[200:]
	}
	parts = append(parts, txt)
	return name + ` TXT "` + strings.Join(parts, `" "`) + `"`
}

type signer struct {
	D     string `json:"d"`
	S     string `json:"s"`
	Alg   string `json:"alg"`
	Key   string `json:"key"`
	Canon string `json:"canon,omitempty"`
}

// dkimpySign has dkimpy sign msg with every signer in turn.
func dkimpySign(t testing.TB, msg string, signers ...signer) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"message": msg, "signers": signers})
	if err != nil {
		t.Fatal(err)
	}
	return string(python(t, b, "dkim_sign.py"))
}

const dkimMessage = "From: Alice <alice@sig.test>\r\nTo: bob@mx.test\r\nSubject: hello\r\nDate: Wed, 02 Dec 2026 01:00:00 +0000\r\nMessage-ID: <1@sig.test>\r\n\r\nHello Bob,\r\n\r\nthis is signed.\r\n"

// TestDKIMAgainstDkimpy: messages signed by dkimpy (Ed25519 and RSA, both
// canonicalizations) pass; changed after signing they fail; a missing key
// is permerror and a key the DNS cannot give is temperror.
func TestDKIMAgainstDkimpy(t *testing.T) {
	ed, rs := ed25519Key(t), rsaKey(t)
	_, res := startZone(t, dnstest.Zone{
		Records: []string{
			txtRR("ed._domainkey.sig.test.", ed.txt),
			txtRR("rsa._domainkey.sig.test.", rs.txt),
			txtRR("rsa._domainkey.other.test.", rs.txt),
		},
		ServFail: []string{"broken._domainkey.sig.test."},
	})
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	edS := signer{D: "sig.test", S: "ed", Alg: ed.alg, Key: ed.priv}
	rsS := signer{D: "sig.test", S: "rsa", Alg: rs.alg, Key: rs.priv}
	tamperBody := func(m string) string { return strings.Replace(m, "this is signed", "this is forged", 1) }
	tamperSubject := func(m string) string { return strings.Replace(m, "Subject: hello", "Subject: pay now", 1) }
	for _, tc := range []struct {
		name    string
		signers []signer
		tamper  func(string) string
		want    []string // per signature, in header order (last signer first)
	}{
		{"ed25519", []signer{edS}, nil, []string{"pass"}},
		{"rsa", []signer{rsS}, nil, []string{"pass"}},
		{"rsa simple/simple", []signer{{D: "sig.test", S: "rsa", Alg: rs.alg, Key: rs.priv, Canon: "simple/simple"}}, nil, []string{"pass"}},
		{"rsa relaxed/simple", []signer{{D: "sig.test", S: "rsa", Alg: rs.alg, Key: rs.priv, Canon: "relaxed/simple"}}, nil, []string{"pass"}},
		{"dual", []signer{rsS, edS}, nil, []string{"pass", "pass"}},
		{"ed25519 body changed", []signer{edS}, tamperBody, []string{"fail"}},
		{"rsa body changed", []signer{rsS}, tamperBody, []string{"fail"}},
		{"dual subject changed", []signer{rsS, edS}, tamperSubject, []string{"fail", "fail"}},
		{"no key", []signer{{D: "sig.test", S: "missing", Alg: ed.alg, Key: ed.priv}}, nil, []string{"permerror"}},
		{"key lookup fails", []signer{{D: "sig.test", S: "broken", Alg: ed.alg, Key: ed.priv}}, nil, []string{"temperror"}},
		{"other domain's signature", []signer{{D: "other.test", S: "rsa", Alg: rs.alg, Key: rs.priv}, edS}, nil, []string{"pass", "pass"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := dkimpySign(t, dkimMessage, tc.signers...)
			if tc.tamper != nil {
				msg = tc.tamper(msg)
			}
			r := verifyChunks(t, v, msg, 7)
			var got []string
			for _, s := range r.DKIM {
				got = append(got, s.Result)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("DKIM %v, want %v (%+v)", got, tc.want, r.DKIM)
			}
			for i, s := range r.DKIM {
				sg := tc.signers[len(tc.signers)-1-i]
				if s.Domain != sg.D || s.Selector != sg.S || s.Algorithm != sg.Alg {
					t.Errorf("signature %d: %+v, signed by %s/%s/%s", i, s, sg.D, sg.S, sg.Alg)
				}
			}
			if !strings.Contains(r.Header, "dkim="+tc.want[0]+" ") {
				t.Errorf("header %q", r.Header)
			}
		})
	}
}

// verifyChunks writes msg in pieces of n bytes, as a session would.
func verifyChunks(t *testing.T, v *Verifier, msg string, n int) Result {
	t.Helper()
	c := v.Begin(context.Background(), netip.MustParseAddr("127.14.3.10"), "client.test", addr(t, "alice@sig.test"))
	for len(msg) > 0 {
		k := min(n, len(msg))
		if _, err := c.Write([]byte(msg[:k])); err != nil {
			t.Fatal(err)
		}
		msg = msg[k:]
	}
	return c.Finish()
}
