package interop

// DKIM and the 8BITMIME downgrade: smtpkit signs submitted mail at
// receipt ([[dkim]]); when delivery converts it to 7 bit for a next hop
// without 8BITMIME, it drops its own signature (which the conversion
// breaks) and signs the converted copy again (internal/delivery/
// downgrade.go). dkimpy is the independent verifier. Addresses:
// 127.16.5.0/24.

import (
	"bytes"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/dkim"
)

// TestDowngradeDKIM: one 8-bit message, signed by smtpkit at submission,
// goes to a next hop with 8BITMIME (as it is) and to one without
// (converted, then signed again): dkimpy passes both. A message the
// submitting client signed itself (selector "client", a key smtpkit does
// not hold) keeps that signature, which the conversion breaks — the case
// docs/outbound.md says remains — beside smtpkit's, which passes.
func TestDowngradeDKIM(t *testing.T) {
	dir := t.TempDir()
	key := dkimKeygen(t, dir, testDomain, "ed1", "ed25519")
	clientKey := dkimKeygen(t, dir, testDomain, "client", "ed25519")
	no8 := startNo8BitPeer(t, "127.16.5.6")
	with8 := startNo8BitPeer(t, "127.16.5.7", "--keep-8bitmime")
	conf := outConf{routes: []outRoute{
		{domain: "no8bit.example", host: no8.addr, tls: "none"},
		{domain: "eight.example", host: with8.addr, tls: "none"},
	}}.toml() + "\n[[dkim]]\ndomain = \"" + testDomain + "\"\nselector = \"ed1\"\nkey = \"" + key.path + "\"\n"
	a := StartServer(t, ServerOptions{IP: "127.16.5.8", ExtraTOML: conf})
	a.AddUser(t, outSender, outPassword)

	msg := downgradeMessage("resign-ours")
	submitBody(t, a, msg, "x@no8bit.example", client.Envelope{EightBit: true})
	submitBody(t, a, msg, "y@eight.example", client.Envelope{EightBit: true})
	clientSigned := signedByClient(t, clientKey, downgradeMessage("resign-client"))
	submitBody(t, a, clientSigned, "z@no8bit.example", client.Envelope{EightBit: true})
	eventually(t, "three copies", func() bool { return len(no8.messages()) == 2 && len(with8.messages()) == 1 })

	var converted, convertedClient []byte
	for _, m := range no8.messages() {
		switch data := latin1(m.Data); {
		case bytes.Contains(data, []byte("<resign-ours@")):
			converted = data
			checkDowngraded(t, m, "resign-ours", false)
		case bytes.Contains(data, []byte("<resign-client@")):
			convertedClient = data
			checkDowngraded(t, m, "resign-client", false)
		}
	}
	asIs := latin1(with8.messages()[0].Data)
	if converted == nil || convertedClient == nil {
		t.Fatalf("the converted copies did not arrive: %d messages", len(no8.messages()))
	}
	if !bytes.Contains(asIs, []byte("Grüße aus Köln")) {
		t.Errorf("the copy for the 8BITMIME peer was changed:\n%s", asIs)
	}
	if n := bytes.Count(converted, []byte("DKIM-Signature:")); n != 1 {
		t.Errorf("%d DKIM-Signature fields in the converted copy, want 1 (the new one):\n%s", n, converted)
	}
	res := dkimpyVerify(t, []dkimKey{key, clientKey}, asIs, converted, convertedClient)
	want := []struct{ what, verdicts string }{
		{"the 8-bit copy", "test.example/ed1/ed25519-sha256:pass"},
		{"the converted copy", "test.example/ed1/ed25519-sha256:pass"},
		{"the converted client-signed copy", "test.example/ed1/ed25519-sha256:pass test.example/client/ed25519-sha256:fail"},
	}
	for i, w := range want {
		if v := res[i].verdicts(); v != w.verdicts {
			t.Errorf("dkimpy on %s: %s, want %s", w.what, v, w.verdicts)
		}
	}
}

// signedByClient puts k's DKIM-Signature before msg, as a mail program
// that signs its own mail would (made with internal/dkim: dkimpy, the
// verifier, stays independent).
func signedByClient(t *testing.T, k dkimKey, msg []byte) []byte {
	t.Helper()
	key, err := dkim.LoadKey(k.path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.New([]dkim.Key{{Domain: testDomain, Selector: k.selector, Signer: key}})
	if err != nil {
		t.Fatal(err)
	}
	fields, err := s.Sign(msg)
	if err != nil || !strings.HasPrefix(fields, "DKIM-Signature:") {
		t.Fatalf("client signature %q, %v", fields, err)
	}
	return append([]byte(fields), msg...)
}
