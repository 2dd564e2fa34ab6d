package mimeconv

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRoundTrip: a multipart message with 8-bit and binary parts and an
// 8-bit Subject, converted, decodes (with the standard library) to the
// same Subject and part contents, and is 7-bit.
func FuzzRoundTrip(f *testing.F) {
	f.Add("Grüße", []byte("héllo \r\nwörld\t"), []byte{0, 0xff, '\r', '\n', '\n', 1}, []byte("\x89PNG\r\n\x1a\n"))
	f.Add("plain", []byte("ascii only\r\n"), []byte("ascii"), []byte(""))
	f.Add("caf\xe9", []byte("="+strings.Repeat("x", 100)+"\r"), []byte(strings.Repeat("\xfe", 300)), []byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, subject string, text, bin, inner []byte) {
		if strings.ContainsAny(subject, "\r\n\x00") || strings.TrimSpace(subject) != subject || subject == "" {
			t.Skip()
		}
		for _, b := range [][]byte{text, bin, inner} {
			if bytes.Contains(b, []byte("--"+fuzzBoundary)) {
				t.Skip()
			}
		}
		var out bytes.Buffer
		if _, err := To7Bit(&out, strings.NewReader(buildMessage(subject, text, bin, inner))); err != nil {
			t.Fatal(err)
		}
		checkSevenBit(t, out.Bytes())
		gotSubject, parts := decodeParts(t, out.Bytes())
		if gotSubject != subject {
			t.Errorf("Subject %q, want %q", gotSubject, subject)
		}
		want := [][]byte{text, bin, inner}
		if len(parts) != 3 {
			t.Fatalf("%d parts", len(parts))
		}
		for i := range want {
			if !bytes.Equal(parts[i], want[i]) {
				t.Errorf("part %d: %q, want %q", i, parts[i], want[i])
			}
		}
		// Converting the output again changes nothing.
		var again bytes.Buffer
		if changed, err := To7Bit(&again, bytes.NewReader(out.Bytes())); err != nil || changed || !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Errorf("second conversion: changed %v, err %v", changed, err)
		}
	})
}

// FuzzTo7Bit: any input either fails or converts to output without 8-bit
// octets.
func FuzzTo7Bit(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\ncafé\r\n"))
	f.Add([]byte("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: 8bit\r\n\r\né\r\n--b--\r\n"))
	f.Add([]byte("MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nFrom: Jö <a@b>\r\n\r\nx\xff\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if _, err := To7Bit(&out, bytes.NewReader(in)); err != nil {
			return
		}
		if has8Bit(out.Bytes()) {
			t.Fatalf("8-bit output %q", out.Bytes())
		}
	})
}
