package dkim

import (
	"strings"
	"testing"
)

// FuzzFromDomain: the header parser and the From domain never panic, and
// a domain found is lower case without spaces.
func FuzzFromDomain(f *testing.F) {
	for _, s := range []string{
		"From: a@example.com\r\n\r\n",
		"From: \"A, B\" <a@EXAMPLE.com>, c@example.com\r\nTo: x\r\n\r\nbody",
		"From: =?utf-8?q?=C3=A9?= <a@example.com>\r\n\r\n",
		"From:\r\n a@example.com\r\n\r\n",
		"From: a@example.com\r\nFrom: b@example.com\r\n\r\n",
		"X: y\r\n bad\r\n\r\n",
		"\r\nFrom: a@example.com\r\n",
		"From: Group: a@example.com;\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		end := headerEnd(msg, 0)
		if end < 0 {
			end = len(msg)
		}
		d, err := fromDomain(parseHeader(msg[:end]))
		if err == nil && (d != strings.ToLower(d) || strings.ContainsAny(d, " \r\n")) {
			t.Fatalf("domain %q", d)
		}
		_ = headerKeys(parseHeader(msg[:end]))
	})
}

// FuzzSign: any message either is not signed or verifies with the
// library's verifier.
func FuzzSign(f *testing.F) {
	ed, err := GenerateKey(Ed25519, 0)
	if err != nil {
		f.Fatal(err)
	}
	keys := []Key{{Domain: "example.com", Selector: "s", Signer: ed}}
	s, err := New(keys)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []string{
		"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
		"From: a@example.com\r\n\r\n",
		"From: a@example.com\r\nTo: b\r\n\tc\r\n\r\n  a  \r\n\r\n",
		"From: a@example.net\r\n\r\nbody\r\n",
	} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if strings.ContainsAny(string(msg), "\x00") || strings.Contains(strings.ReplaceAll(string(msg), "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(string(msg), "\r\n", ""), "\r") {
			return // the server's strict reader passes only CRLF lines
		}
		sig, err := s.Sign(msg)
		if err != nil || sig == "" {
			return
		}
		signed := append([]byte(sig), msg...)
		if headerEnd(signed, 0) < 0 {
			signed = append(signed, "\r\n"...)
		}
		if ok, bad := verify(t, signed, keys); len(ok) != 1 {
			t.Fatalf("signed message does not verify: %v\n%q", bad, signed)
		}
	})
}

// FuzzOwn: splitting prepended fields never panics, takes out at most
// the one key's signatures, returns the input unchanged when it takes
// nothing, and takes nothing more out of what it kept.
func FuzzOwn(f *testing.F) {
	ed, err := GenerateKey(Ed25519, 0)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New([]Key{{Domain: "example.com", Selector: "ed", Signer: ed}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"",
		"DKIM-Signature: v=1; d=example.com; s=ed; b=x\r\n",
		"DKIM-Signature: v=1; d=Example.com.;\r\n s = ed; b=x\r\n y\r\nX-A: 1\r\n",
		"DKIM-Signature: d=example.org; s=ed\r\nDKIM-Signature: d=example.com; s=ed\r\n",
		" continuation first\r\nDKIM-Signature: s=ed; d=example.com\r\n",
		"DKIM-Signature: d=example.com; s=ed; d=other\r\nno crlf",
		"DKIM-Signature;d=example.com;s=ed\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, fields string) {
		keys, rest := s.Own(fields)
		if len(keys) > 1 || len(rest) > len(fields) {
			t.Fatalf("keys %v, rest %q of %q", keys, rest, fields)
		}
		if len(keys) == 0 && rest != fields {
			t.Fatalf("nothing taken out, yet rest %q of %q", rest, fields)
		}
		if again, r2 := s.Own(rest); len(again) != 0 || r2 != rest {
			t.Fatalf("Own(rest %q) takes out %v more", rest, again)
		}
	})
}
