package server

import (
	"bytes"
	"smtpkit/internal/smtp"
	"strings"
	"testing"
	"time"
)

func TestHeaderFixer(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	const mid = "Message-ID: <ID.1795946400000000000@mx.example.com>\r\n"
	const date = "Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
	tests := []struct {
		name, in, want string
	}{
		{"adds both", "Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n" + mid + date + "\r\nbody\r\n"},
		{"keeps existing", "Message-Id: <a@b>\r\nDATE: x\r\n\r\nbody\r\n", "Message-Id: <a@b>\r\nDATE: x\r\n\r\nbody\r\n"},
		{"adds date only", "Message-ID: <a@b>\r\n\r\nb\r\n", "Message-ID: <a@b>\r\n" + date + "\r\nb\r\n"},
		{"folded line is not a field", "Subject: x\r\n Date: no\r\n\r\n", "Subject: x\r\n Date: no\r\n" + mid + date + "\r\n"},
		{"no body separator", "Subject: x\r\n", "Subject: x\r\n" + mid + date},
		{"no header", "\r\nbody\r\n", mid + date + "\r\nbody\r\n"},
		{"header field named in body only", "Subject: x\r\n\r\nDate: in body\r\n", "Subject: x\r\n" + mid + date + "\r\nDate: in body\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 1 << 20} {
				var out bytes.Buffer
				h := newHeaderFixer(&out, "mx.example.com", "ID", now)
				for in := tt.in; in != ""; {
					n := min(chunk, len(in))
					h.Write([]byte(in[:n]))
					in = in[n:]
				}
				if err := h.Close(); err != nil {
					t.Fatal(err)
				}
				if out.String() != tt.want {
					t.Errorf("chunk %d:\ngot  %q\nwant %q", chunk, out.String(), tt.want)
				}
			}
		})
	}
}

func TestHeaderFixerLongHeaderPassesThrough(t *testing.T) {
	var out bytes.Buffer
	h := newHeaderFixer(&out, "h", "ID", time.Now())
	in := "X: " + strings.Repeat("a", maxFixupHeader+10) + "\r\n\r\nbody"
	h.Write([]byte(in))
	h.Close()
	if out.String() != in {
		t.Errorf("long header block changed")
	}
}

func TestHeaderLimiter(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int64
		wantErr bool
	}{
		{"small header", "Subject: x\r\n\r\n" + strings.Repeat("b", 5000), 1000, false},
		{"no header", "\r\n" + strings.Repeat("b", 5000), 1000, false},
		{"header too large", "X: " + strings.Repeat("a", 2000) + "\r\n\r\nbody", 1000, true},
		{"CR CR LF does not end the header", "A: b\r\r\n" + strings.Repeat("a", 2000), 1000, true},
		{"exactly at the limit", "A: " + strings.Repeat("a", 991) + "\r\n\r\n", 1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 7, 1 << 20} {
				var out bytes.Buffer
				h := &headerLimiter{next: nopCloser{&out}, max: tt.max}
				var err error
				for in := tt.in; in != "" && err == nil; {
					n := min(chunk, len(in))
					_, err = h.Write([]byte(in[:n]))
					in = in[n:]
				}
				if (err != nil) != tt.wantErr {
					t.Errorf("chunk %d: err = %v, wantErr %v", chunk, err, tt.wantErr)
				}
				if err == nil && out.String() != tt.in {
					t.Errorf("chunk %d: output changed", chunk)
				}
			}
		})
	}
}

func TestTextChecker(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"crlf text", "a\r\nb\r\n", nil},
		{"bare LF", "a\nb\r\n", smtp.ErrBareLF},
		{"bare CR", "a\rb\r\n", smtp.ErrBareCR},
		{"CR at the very end", "a\r", smtp.ErrBareCR},
		{"NUL", "a\r\n\x00.\r\n", smtp.ErrNUL},
		{"NUL in a line", "a\x00b\r\n", smtp.ErrNUL},
		{"line of 998", strings.Repeat("x", 998) + "\r\n", nil},
		{"line of 999", strings.Repeat("x", 999) + "\r\n", smtp.ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 1 << 20} {
				var out bytes.Buffer
				c := &textChecker{next: nopCloser{&out}, maxLine: 1000}
				var err error
				for in := tt.in; in != "" && err == nil; {
					n := min(chunk, len(in))
					_, err = c.Write([]byte(in[:n]))
					in = in[n:]
				}
				if err == nil {
					err = c.Close()
				}
				if err != tt.want {
					t.Errorf("chunk %d: err = %v, want %v", chunk, err, tt.want)
				}
			}
		})
	}
}
