package smtp

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadReply(t *testing.T) {
	longLine := "250 " + strings.Repeat("x", MaxReplyLineLen-4)
	tests := []struct {
		name string
		in   string
		want Reply
		err  error
		rest string
	}{
		{name: "single", in: "250 OK\r\n", want: Reply{Code: 250, Lines: []string{"OK"}}},
		{name: "greeting", in: "220 mx.example.org ESMTP ready\r\n", want: Reply{Code: 220, Lines: []string{"mx.example.org ESMTP ready"}}},
		{name: "ehlo", in: "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 SMTPUTF8\r\n",
			want: Reply{Code: 250, Lines: []string{"mx.example.org", "PIPELINING", "SIZE 10240000", "SMTPUTF8"}}},
		{name: "enhanced", in: "250 2.1.0 Sender OK\r\n", want: Reply{Code: 250, Enhanced: "2.1.0", Lines: []string{"Sender OK"}}},
		{name: "enhanced multi", in: "550-5.7.1 Relaying denied\r\n550 5.7.1 see https://example.org\r\n",
			want: Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"Relaying denied", "see https://example.org"}}},
		{name: "enhanced only", in: "250 2.0.0\r\n", want: Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{""}}},
		{name: "enhanced three digit parts", in: "554 5.123.456 odd\r\n", want: Reply{Code: 554, Enhanced: "5.123.456", Lines: []string{"odd"}}},
		{name: "enhanced class mismatch kept", in: "250 5.1.1 odd\r\n", want: Reply{Code: 250, Lines: []string{"5.1.1 odd"}}},
		{name: "enhanced on some lines kept", in: "250-2.0.0 a\r\n250 b\r\n", want: Reply{Code: 250, Lines: []string{"2.0.0 a", "b"}}},
		{name: "different enhanced kept", in: "451-4.3.0 a\r\n451 4.4.1 b\r\n", want: Reply{Code: 451, Lines: []string{"4.3.0 a", "4.4.1 b"}}},
		{name: "not enhanced: version", in: "220 2.0.0.1 server\r\n", want: Reply{Code: 220, Lines: []string{"2.0.0.1 server"}}},
		{name: "not enhanced: four digits", in: "250 2.0.1234 x\r\n", want: Reply{Code: 250, Lines: []string{"2.0.1234 x"}}},
		{name: "not enhanced: glued", in: "250 2.0.0ok\r\n", want: Reply{Code: 250, Lines: []string{"2.0.0ok"}}},
		{name: "code only", in: "354\r\n", want: Reply{Code: 354, Lines: []string{""}}},
		{name: "empty continuation", in: "250-\r\n250 ok\r\n", want: Reply{Code: 250, Lines: []string{"", "ok"}}},
		{name: "bare LF tolerated", in: "250-a\n250 b\n", want: Reply{Code: 250, Lines: []string{"a", "b"}}},
		{name: "pipelined replies stay", in: "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n", want: Reply{Code: 250, Enhanced: "2.1.0", Lines: []string{"ok"}}, rest: "250 2.1.5 ok\r\n354 go\r\n"},
		{name: "max line", in: longLine + "\r\n", want: Reply{Code: 250, Lines: []string{longLine[4:]}}},
		{name: "line too long", in: longLine + "x\r\n", err: ErrBadReply},
		{name: "codes differ", in: "250-a\r\n251 b\r\n", err: ErrBadReply},
		{name: "bad code", in: "abc\r\n", err: ErrBadReply},
		{name: "code out of range", in: "600 x\r\n", err: ErrBadReply},
		{name: "code 1xx", in: "150 x\r\n", err: ErrBadReply},
		{name: "second digit", in: "260 x\r\n", err: ErrBadReply},
		{name: "short", in: "25\r\n", err: ErrBadReply},
		{name: "bad separator", in: "250_x\r\n", err: ErrBadReply},
		{name: "empty line", in: "\r\n", err: ErrBadReply},
		{name: "EOF at once", in: "", err: io.EOF},
		{name: "EOF mid line", in: "250 o", err: io.ErrUnexpectedEOF},
		{name: "EOF mid reply", in: "250-a\r\n", err: io.ErrUnexpectedEOF},
		{name: "too many lines", in: strings.Repeat("250-x\r\n", MaxReplyLines) + "250 x\r\n", err: ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				var src io.Reader = strings.NewReader(tt.in)
				if one {
					src = iotest.OneByteReader(src)
				}
				br := bufio.NewReader(src)
				got, err := ReadReply(br)
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("ReadReply = %+v, %v; want %v", got, err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("ReadReply: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("ReadReply = %#v, want %#v", got, tt.want)
				}
				if rest, _ := io.ReadAll(br); string(rest) != tt.rest {
					t.Errorf("left %q, want %q", rest, tt.rest)
				}
			}
		})
	}
}

// TestReplyRoundTrip formats replies with Reply.Write and reads them back.
func TestReplyRoundTrip(t *testing.T) {
	for _, r := range []Reply{
		R(250, EnhOK, "OK"),
		R(220, "", "mx ESMTP"),
		{Code: 250, Lines: []string{"mx", "PIPELINING", "8BITMIME"}},
		{Code: 550, Enhanced: EnhBadMailbox, Lines: []string{"no such user", "really"}},
		{Code: 421, Enhanced: "4.3.0", Lines: []string{""}},
	} {
		var b strings.Builder
		w := bufio.NewWriter(&b)
		if err := r.Write(w, true); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		got, err := ReadReply(bufio.NewReader(strings.NewReader(b.String())))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%q read back as %#v, %v; want %#v", b.String(), got, err, r)
		}
	}
}
