package smtp

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func TestReplyFormat(t *testing.T) {
	tests := []struct {
		name     string
		r        Reply
		enhanced bool
		want     string
	}{
		{"single", R(250, EnhOK, "OK"), true, "250 2.0.0 OK\r\n"},
		{"no enhanced before EHLO", R(250, EnhOK, "OK"), false, "250 OK\r\n"},
		{"no enhanced code", R(220, "", "mx ESMTP"), true, "220 mx ESMTP\r\n"},
		{"multi", Reply{Code: 250, Lines: []string{"mx", "PIPELINING", "8BITMIME"}}, true, "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n"},
		{"multi enhanced", Reply{Code: 214, Enhanced: "2.0.0", Lines: []string{"a", "b"}}, true, "214-2.0.0 a\r\n214 2.0.0 b\r\n"},
		{"empty", Reply{Code: 354}, true, "354 \r\n"},
		{"CRLF in text cannot break framing", R(550, EnhBadMailbox, "bad\r\n250 ok"), true, "550 5.1.1 bad  250 ok\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			if err := tt.r.Write(w, tt.enhanced); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if got := buf.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorClass(t *testing.T) {
	cause := errors.New("disk full")
	e := Wrap(R(452, EnhMailboxFull.Temp(), "try later"), cause)
	if !e.Temporary() || e.Permanent() {
		t.Errorf("452 must be temporary")
	}
	if !errors.Is(e, cause) {
		t.Errorf("Wrap must keep the cause")
	}
	if got, want := e.Error(), "452 4.2.2 try later: disk full"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !E(550, EnhBadMailbox, "no").Permanent() {
		t.Errorf("550 must be permanent")
	}
}

func TestReplyOneLine(t *testing.T) {
	for _, tc := range []struct {
		r    Reply
		want string
	}{
		{R(250, "2.0.0", "OK"), "250 2.0.0 OK"},
		{Reply{Code: 220, Lines: []string{"mx.example ESMTP"}}, "220 mx.example ESMTP"},
		{Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"no such user", "try again"}}, "550 5.1.1 no such user try again"},
		{Reply{Code: 421}, "421"},
	} {
		if got := tc.r.OneLine(); got != tc.want {
			t.Errorf("%+v.OneLine() = %q, want %q", tc.r, got, tc.want)
		}
	}
}
