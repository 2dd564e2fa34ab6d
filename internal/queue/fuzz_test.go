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

// FuzzParsePrefix: the env file prefix reader never panics, stops at "id"
// (what follows cannot change its answer) and succeeds only on input that
// has the id field.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"due":"2025-03-01T11:00:00Z","held":true,"warned":true,"arrival":"2025-03-01T10:00:00Z","id":"0123456789abcdef01234567"}`,
		"{\n\t\"v\": 1,\n\t\"due\": \"2025-03-01T11:00:00Z\",\n\t\"id\": \"x\",",
		`{"v":1,"id":"x"}`, `{"v":1,"from":"a","id":"x"}`, `{"v":1,"size":12,"counts":[1,0,2,0],"id":"x"}`,
		`{"v":1,"counts":[1,0,2],"id":"x"}`, `{"v":1,"size":1e3,"id":"x"}`, `{"v":2}`, `{"v":1,"due":1}`, `{"v":1,"held":null,"id":""}`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePrefix(b)
		if err != nil {
			return
		}
		if !bytes.Contains(b, []byte(`"id"`)) && !bytes.Contains(b, []byte(`\u`)) {
			t.Fatalf("%q: a prefix without an id field: %+v", b, p)
		}
		p2, err := parsePrefix(append(append([]byte(nil), b...), `,"rest":[}}garbage`...))
		if err != nil || p2 != p {
			t.Fatalf("%q: the bytes after the prefix changed it: %+v, %v; was %+v", b, p2, err, p)
		}
	})
}

// FuzzJournalRecord: decoding a journal payload never panics, accepts
// only what the encoders can make, and what it accepts encodes back to the
// same bytes.
func FuzzJournalRecord(f *testing.F) {
	id := "0123456789abcdef01234567"
	for _, b := range [][]byte{
		encodeCommit(nil, id, []byte(`{"v":1}`), []byte("Subject: x\r\n\r\nbody\r\n")),
		encodeCommit(nil, id, nil, nil),
		encodeRemove(nil, id),
		append(encodeRemove(nil, id), 'x'),
		[]byte("M0123456789ABCDEF01234567\x00\x00\x00\x00"),
		[]byte("M0123456789abcdef01234567\xff\xff\xff\xff"),
		{recCommit}, {}, []byte("X0123456789abcdef01234567"),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRecord(p)
		if err != nil {
			return
		}
		var again []byte
		switch r.kind {
		case recCommit:
			again = encodeCommit(nil, r.id, r.env, r.body)
		case recRemove:
			again = encodeRemove(nil, r.id)
		default:
			t.Fatalf("%q: decoded kind %q", p, r.kind)
		}
		if !ValidID(r.id) || !bytes.Equal(again, p) {
			t.Fatalf("%q: decoded %+v, which encodes as %q", p, r, again)
		}
	})
}
