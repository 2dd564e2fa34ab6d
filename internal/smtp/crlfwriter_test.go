package smtp

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCRLFWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, ""},
		{"one line", []string{"hello\r\n"}, "hello\r\n"},
		{"no final CRLF", []string{"hello"}, "hello\r\n"},
		{"dots are not stuffed", []string{".\r\n..\r\n.x\r\n"}, ".\r\n..\r\n.x\r\n"},
		{"bare LF becomes CRLF", []string{"a\nb\n"}, "a\r\nb\r\n"},
		{"bare CR becomes CRLF", []string{"a\rb\r"}, "a\r\nb\r\n"},
		{"CRLF split across writes", []string{"a\r", "\n", "b"}, "a\r\nb\r\n"},
		{"CR CR LF", []string{"a\r\r\n"}, "a\r\n\r\n"},
		{"NUL and 8-bit pass", []string{"\x00\xff\r\n"}, "\x00\xff\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewCRLFWriter(&buf)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Errorf("Write after Close succeeded")
			}
		})
	}
}

// TestCRLFWriterPieces: the output does not depend on how the input is cut.
func TestCRLFWriterPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{".", "\r", "\n", "\r\n", "a", "\x00", "é"}
	for i := 0; i < 1000; i++ {
		var in strings.Builder
		for j := rng.IntN(40); j > 0; j-- {
			in.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		data := in.String()
		var out bytes.Buffer
		w := NewCRLFWriter(&out)
		for rest := data; rest != ""; {
			k := 1 + rng.IntN(len(rest))
			w.Write([]byte(rest[:k]))
			rest = rest[k:]
		}
		w.Close()
		if want := normalizeCRLF(data); out.String() != want {
			t.Fatalf("%q: wrote %q, want %q", data, out.String(), want)
		}
	}
}
