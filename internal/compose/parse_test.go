package compose

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestToCRLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\rb", "a\r\nb"},
		{"\n\r", "\r\n\r\n"},
		{"a\r\r\n", "a\r\n\r\n"},
		{"a\n\r\n", "a\r\n\r\n"},
	}
	for _, tt := range tests {
		if got := string(ToCRLF([]byte(tt.in))); got != tt.want {
			t.Errorf("ToCRLF(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadInput(t *testing.T) {
	tests := []struct {
		name, in string
		dotEnds  bool
		want     string
	}{
		{"LF to CRLF", "Subject: x\n\nbody\n", false, "Subject: x\r\n\r\nbody\r\n"},
		{"no final newline", "a\nb", false, "a\r\nb\r\n"},
		{"dot ends", "a\n.\nb\n", true, "a\r\n"},
		{"dot CRLF ends", "a\r\n.\r\nb\r\n", true, "a\r\n"},
		{"dot kept with -i", "a\n.\nb\n", false, "a\r\n.\r\nb\r\n"},
		{"dot dot is data", "a\n..\nb\n", true, "a\r\n..\r\nb\r\n"},
		{"dot space is data", "a\n. \n", true, "a\r\n. \r\n"},
		{"bare CR inside", "a\rb\n", false, "a\r\nb\r\n"},
		{"empty", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []func(string) any{
				func(s string) any { return strings.NewReader(s) },
				func(s string) any { return iotest.OneByteReader(strings.NewReader(s)) },
			} {
				got, err := ReadInput(r(tt.in).(interface{ Read([]byte) (int, error) }), tt.dotEnds, 1<<20)
				if err != nil || string(got) != tt.want {
					t.Errorf("ReadInput(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
			}
		})
	}
}

func TestReadInputLimit(t *testing.T) {
	if _, err := ReadInput(strings.NewReader(strings.Repeat("x\n", 100)), false, 100); !errors.Is(err, ErrTooBig) {
		t.Errorf("many lines: %v", err)
	}
	if _, err := ReadInput(strings.NewReader(strings.Repeat("x", 200000)), false, 100); !errors.Is(err, ErrTooBig) {
		t.Errorf("one long line: %v", err)
	}
	if got, err := ReadInput(strings.NewReader(strings.Repeat("abcdefgh\n", 10)), false, 100); err != nil || len(got) != 100 {
		t.Errorf("exactly at the limit: %d %v", len(got), err)
	}
}

func TestSplitJoin(t *testing.T) {
	tests := []struct {
		name, in   string
		fields     []string
		body, join string
	}{
		{"plain", "A: 1\r\nB: 2\r\n\r\nbody\r\n", []string{"A", "B"}, "body\r\n", ""},
		{"folded", "Subject: a\r\n  b\r\nTo: x@y\r\n\r\n", []string{"Subject", "To"}, "", ""},
		{"no header", "just text\r\n", nil, "just text\r\n", "\r\njust text\r\n"},
		{"no empty line", "A: 1\r\nbody line\r\n", []string{"A"}, "body line\r\n", "A: 1\r\n\r\nbody line\r\n"},
		{"header only", "A: 1\r\n", []string{"A"}, "", "A: 1\r\n\r\n"},
		{"continuation first", " x\r\nA: 1\r\n", nil, " x\r\nA: 1\r\n", "\r\n x\r\nA: 1\r\n"},
		{"space in name", "Bad Name: x\r\n\r\n", nil, "Bad Name: x\r\n\r\n", "\r\nBad Name: x\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := Split([]byte(tt.in))
			var names []string
			for _, f := range h.Fields {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.fields, ",") || string(body) != tt.body {
				t.Errorf("Split = %q, %q", names, body)
			}
			want := tt.join
			if want == "" {
				want = tt.in
			}
			if got := Join(h, body); string(got) != want {
				t.Errorf("Join = %q, want %q", got, want)
			}
		})
	}
}

func TestHeaderEdit(t *testing.T) {
	in := "To: A <a@x.example>, b@x.example\r\nCC: c@x.example\r\nBcc: d@x.example,\r\n e@x.example\r\n" +
		"Subject: s\r\nbcc: undisclosed:;\r\n\r\nbody\r\n"
	h, body := Split([]byte(in))
	if got := h.Fields[0].Value(); got != "A <a@x.example>, b@x.example" {
		t.Errorf("Value = %q", got)
	}
	addrs, err := h.Addresses("To", "Cc", "Bcc")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.Address)
	}
	if strings.Join(got, " ") != "a@x.example b@x.example c@x.example d@x.example e@x.example" {
		t.Errorf("Addresses = %v", got)
	}
	if n := h.Del("BCC"); n != 2 || h.Has("Bcc") {
		t.Errorf("Del removed %d", n)
	}
	h.Add(FormatField("Date", "Mon, 02 Mar 2026 10:00:00 +0000"))
	want := "To: A <a@x.example>, b@x.example\r\nCC: c@x.example\r\nSubject: s\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nbody\r\n"
	if out := Join(h, body); !bytes.Equal(out, []byte(want)) {
		t.Errorf("Join = %q", out)
	}
	h2, _ := Split([]byte("To: <broken\r\n\r\n"))
	if _, err := h2.Addresses("To"); err == nil {
		t.Error("broken To parsed")
	}
}
