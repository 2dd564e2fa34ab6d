package queue

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzTLSRequiredNo: the header scan never panics, reads no further than
// it is given, and its answer does not change when a body follows the
// header section or when the lines end in LF instead of CRLF.
func FuzzTLSRequiredNo(f *testing.F) {
	for _, s := range []string{
		"TLS-Required: No\r\n\r\n", "tls-required:NO\r\n", "TLS-Required:\r\n\tNo\r\n\r\nbody",
		"Subject: s\r\n TLS-Required: No\r\n\r\n", "TLS-Required: Yes\r\n\r\n", "\r\nTLS-Required: No\r\n",
		"X: " + strings.Repeat("x", 5000) + "\r\nTLS-Required: No\r\n", ":\r\n \r\n\t\r\n", "TLS-Required : No",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, hdr []byte) {
		got := tlsRequiredNo(bytes.NewReader(hdr))
		if !bytes.Contains(bytes.ToLower(hdr), []byte("tls-required")) && got {
			t.Fatalf("%q: found a field that is not there", hdr)
		}
		if bytes.Contains(hdr, []byte("\n\n")) || bytes.Contains(hdr, []byte("\r\n\r\n")) || bytes.ContainsRune(hdr, '\r') {
			return // the section ends early, or CR placement makes LF and CRLF differ
		}
		crlf := bytes.ReplaceAll(hdr, []byte("\n"), []byte("\r\n"))
		if len(crlf) >= maxFieldScan || len(hdr) >= 4000 {
			return // the bounds count bytes, so the two forms may differ
		}
		if got2 := tlsRequiredNo(bytes.NewReader(append(crlf, "\r\n\r\nTLS-Required: No\r\n"...))); got2 != got {
			t.Fatalf("%q: %v with LF lines, %v with CRLF lines and a body", hdr, got, got2)
		}
	})
}
