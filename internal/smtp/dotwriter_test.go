package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDotWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, ".\r\n"},
		{"empty write", []string{""}, ".\r\n"},
		{"one line", []string{"hello\r\n"}, "hello\r\n.\r\n"},
		{"no final CRLF", []string{"hello"}, "hello\r\n.\r\n"},
		{"stuffing", []string{".\r\n..\r\n.x\r\nx.\r\n"}, "..\r\n...\r\n..x\r\nx.\r\n.\r\n"},
		{"leading dot without CRLF", []string{"."}, "..\r\n.\r\n"},
		{"dot after split CRLF", []string{"a\r", "\n", ".b\r\n"}, "a\r\n..b\r\n.\r\n"},
		{"dot in own write", []string{"a\r\n", ".", "\r\n"}, "a\r\n..\r\n.\r\n"},
		{"bare LF becomes CRLF", []string{"a\nb\n.\n"}, "a\r\nb\r\n..\r\n.\r\n"},
		{"bare CR becomes CRLF", []string{"a\rb\r"}, "a\r\nb\r\n.\r\n"},
		{"CR CR LF", []string{"a\r\r\n"}, "a\r\n\r\n.\r\n"},
		{"smuggling attempt is neutralised", []string{"hi\n.\nMAIL FROM:<x@y>\r\n"}, "hi\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"},
		{"CR at end of write then text", []string{"a\r", "b"}, "a\r\nb\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewDotWriter(&buf)
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
			if err := w.Close(); err != nil || buf.String() != tt.want {
				t.Errorf("second Close wrote more or failed: %v", err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Errorf("Write after Close succeeded")
			}
		})
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

func TestDotWriterError(t *testing.T) {
	boom := errors.New("boom")
	w := NewDotWriter(failWriter{boom})
	if n, err := w.Write([]byte("abc\r\n")); !errors.Is(err, boom) || n != 0 {
		t.Errorf("Write = %d, %v; want 0, boom", n, err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want boom", err)
	}
}

// normalizeCRLF is what the DotWriter promises to send for in: bare CR and
// bare LF become CRLF, and a last line without an end gets CRLF.
func normalizeCRLF(in string) string {
	s := strings.ReplaceAll(in, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\n", "\r\n")
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

// TestDotRoundTrip writes random text, full of dots, CRs and LFs, through
// the DotWriter in random pieces and reads it back with the DotReader.
func TestDotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{".", "\r", "\n", "\r\n", "a", "..", "\r\n.\r\n", "\r\n.", ".\r\n", "x y", "\t", "é"} // no NUL: the reader refuses it
	for i := 0; i < 2000; i++ {
		var in strings.Builder
		for j := rng.IntN(40); j > 0; j-- {
			in.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		var wire bytes.Buffer
		w := NewDotWriter(&wire)
		data := in.String()
		for rest := data; rest != ""; {
			k := 1 + rng.IntN(len(rest))
			if _, err := w.Write([]byte(rest[:k])); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wire.WriteString("NEXT")
		br := bufio.NewReaderSize(&wire, 16)
		got, err := io.ReadAll(NewDotReader(br, 0, 0))
		if err != nil {
			t.Fatalf("%q: read back: %v (wire %q)", data, err, wire.String())
		}
		if want := normalizeCRLF(data); string(got) != want {
			t.Fatalf("%q: read back %q, want %q", data, got, want)
		}
		if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
			t.Fatalf("%q: left %q after the data", data, rest)
		}
	}
}
