package smtp

import (
	"bytes"
	"io"
	"testing"
)

// The writers copy runs of octets between line ends; these are the
// octet-at-a-time rules they must match exactly (RFC 5321 §4.5.2 for the
// dot, §2.3.8 for bare CR and LF), whatever the input and its chunking.

// refStuff is DotWriter's output for in, one octet at a time.
func refStuff(in []byte, bdat bool) []byte {
	var out []byte
	bol, cr := true, false
	for _, c := range in {
		if cr {
			cr = false
			out = append(out, '\r', '\n')
			bol = true
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\r':
			cr = true
			continue
		case '\n':
			out = append(out, '\r', '\n')
			bol = true
			continue
		}
		if bol && c == '.' && !bdat {
			out = append(out, '.')
		}
		bol = false
		out = append(out, c)
	}
	if cr || !bol {
		out = append(out, '\r', '\n')
	}
	if !bdat {
		out = append(out, '.', '\r', '\n')
	}
	return out
}

// writeChunked writes in to w in pieces whose sizes cycle through cuts.
func writeChunked(t testing.TB, w interface {
	Write([]byte) (int, error)
	Close() error
}, in []byte, cuts []byte) {
	for i := 0; len(in) > 0; i++ {
		n := len(in)
		if len(cuts) > 0 {
			n = min(n, int(cuts[i%len(cuts)])+1)
		}
		if k, err := w.Write(in[:n]); err != nil || k != n {
			t.Fatalf("Write: %d, %v", k, err)
		}
		in = in[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func checkWritersMatch(t testing.TB, in, cuts []byte) {
	var dot, crlf bytes.Buffer
	writeChunked(t, NewDotWriter(&dot), in, cuts)
	writeChunked(t, NewCRLFWriter(&crlf), in, cuts)
	if want := refStuff(in, false); !bytes.Equal(dot.Bytes(), want) {
		t.Errorf("DotWriter(%q, cuts %v) = %q, want %q", in, cuts, dot.Bytes(), want)
	}
	if want := refStuff(in, true); !bytes.Equal(crlf.Bytes(), want) {
		t.Errorf("CRLFWriter(%q, cuts %v) = %q, want %q", in, cuts, crlf.Bytes(), want)
	}
}

func TestWritersMatchOctetRules(t *testing.T) {
	long := bytes.Repeat([]byte("a.b\r\n.c\n\rd\r\r\n"), 5000) // past dotWriterChunk
	for _, in := range []string{
		"", ".", "\r", "\n", "\r\n", "\r\r", "\n\n", ".\r\n", "..\r\n.", "a\rb", "a\nb",
		"\r.", "\n.", "\r\n.\r\n", "x\r\n\r\n.y", "no end", "end\r", ".\r.\n.",
		string(long),
	} {
		for _, cuts := range [][]byte{nil, {0}, {1}, {2, 0, 5}, {255}} {
			checkWritersMatch(t, []byte(in), cuts)
		}
	}
}

func FuzzWritersMatchOctetRules(f *testing.F) {
	for _, s := range []string{"", ".\r\n", "a\rb\n.c", "\r\r\n\n..", "x\r"} {
		f.Add([]byte(s), []byte{0, 3})
	}
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		checkWritersMatch(t, in, cuts)
	})
}

// BenchmarkDotWriter100KB: the stuffing writer on a 100 KB CRLF message
// (lines of 74 octets), beside the octet-at-a-time rules it replaced.
func BenchmarkDotWriter100KB(b *testing.B) {
	msg := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"), 100<<10/74)
	b.Run("lines", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			w := NewDotWriter(io.Discard)
			w.Write(msg)
			w.Close()
		}
	})
	b.Run("octets", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			refStuff(msg, false)
		}
	})
}
