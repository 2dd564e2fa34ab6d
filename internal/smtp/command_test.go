package smtp

import (
	"errors"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		verb    string
		arg     string
		wantErr error // nil: any *Error 500 5.5.2 when bad is set
		bad     bool
	}{
		{line: "MAIL FROM:<a@b>", verb: "MAIL", arg: "FROM:<a@b>"},
		{line: "mail from:<a@b> SIZE=10", verb: "MAIL", arg: "from:<a@b> SIZE=10"},
		{line: "QUIT", verb: "QUIT"},
		{line: "DATA ", verb: "DATA"},
		{line: "EHLO  two.spaces", verb: "EHLO", arg: " two.spaces"},
		{line: "StartTLS", verb: "STARTTLS"},
		{line: "BDAT 100 LAST", verb: "BDAT", arg: "100 LAST"},
		{line: "HELO tab\there", verb: "HELO", arg: "tab\there"},
		{line: "RCPT TO:<jörg@bücher.de>", verb: "RCPT", arg: "TO:<jörg@bücher.de>"},
		{line: "X1234567890ABCDE", verb: "X1234567890ABCDE"},
		{line: "xyzzy now", verb: "XYZZY", arg: "now"},
		{line: "noop", verb: "NOOP"},
		{line: "", bad: true},
		{line: " MAIL FROM:<a@b>", bad: true},
		{line: "X1234567890ABCDEF", bad: true},
		{line: "MA-IL", bad: true},
		{line: "MAIL\tFROM:<a@b>", bad: true},
		{line: "MÄIL", bad: true},
		{line: "MAIL FROM:<a@b>\x00", bad: true},
		{line: "MAIL FROM:<a\x1b@b>", bad: true},
		{line: "NOOP \x7f", bad: true},
		{line: "\x00", bad: true},
		{line: "MAIL FROM:<a@b>\r", wantErr: ErrBareCRLF, bad: true},
		{line: "DATA\n.\n", wantErr: ErrBareCRLF, bad: true},
		{line: "RCPT TO:<a@b>\r\nRSET", wantErr: ErrBareCRLF, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			c, err := ParseCommand([]byte(tt.line), nil)
			if tt.bad {
				var se *Error
				if !errors.As(err, &se) || se.Reply.Code != 500 || se.Reply.Enhanced != "5.5.2" {
					t.Fatalf("ParseCommand(%q) = %+v, %v; want 500 5.5.2", tt.line, c, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr == ErrBareCRLF && !IsBareCRLF(err) {
					t.Errorf("IsBareCRLF(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCommand(%q): %v", tt.line, err)
			}
			if c.Verb != tt.verb || c.Arg != tt.arg {
				t.Errorf("ParseCommand(%q) = %q %q, want %q %q", tt.line, c.Verb, c.Arg, tt.verb, tt.arg)
			}
		})
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"example.org":        "example.org",
		"EXAMPLE.Org":        "example.org",
		"BÜCHER.DE":          "bÜcher.de",
		"[IPv6:2001:DB8::1]": "[ipv6:2001:db8::1]",
	} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
}

// IsBareCRLF reports whether err is ErrBareCRLF, ErrBareLF or ErrBareCR:
// the peer broke CRLF framing.
func IsBareCRLF(err error) bool {
	return errors.Is(err, ErrBareCRLF) || errors.Is(err, ErrBareLF) || errors.Is(err, ErrBareCR)
}
